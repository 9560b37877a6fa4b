"""Tests of the TabTransformer network (shapes, edge cases, config round trip)."""

from __future__ import annotations

import json

import pytest
import torch

from daily_mlops.ml.network import TabTransformer

CARDINALITIES = [3, 5, 2]
N_NUMERIC = 4


def _small(**overrides) -> TabTransformer:
    kwargs = dict(cardinalities=CARDINALITIES, n_numeric=N_NUMERIC, d_model=16, nhead=2, num_layers=2,
                  dim_feedforward=32, dropout=0.1, projection_dim=8)
    kwargs.update(overrides)
    return TabTransformer(**kwargs)


def _inputs(batch: int, cardinalities=CARDINALITIES, n_numeric=N_NUMERIC) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    columns = [torch.randint(0, c, (batch, 1), generator=generator) for c in cardinalities]
    x_cat = torch.cat(columns, dim=1) if columns else torch.zeros(batch, 0, dtype=torch.long)
    x_num = torch.randn(batch, n_numeric, generator=generator)
    return x_cat, x_num


def test_output_shapes() -> None:
    """forward gives (batch, n_classes), encode (batch, d_model), project (batch, projection_dim)."""
    torch.manual_seed(0)
    model = _small()
    x_cat, x_num = _inputs(7)
    assert model(x_cat, x_num).shape == (7, 2)
    h = model.encode(x_cat, x_num)
    assert h.shape == (7, 16)
    assert model.project(h).shape == (7, 8)
    assert model.n_tokens == len(CARDINALITIES) + N_NUMERIC


def test_mask_replaces_tokens_and_changes_representation() -> None:
    """A mask of all False equals no mask; masking a feature changes the representation."""
    torch.manual_seed(0)
    model = _small().eval()
    x_cat, x_num = _inputs(5)
    none_masked = torch.zeros(5, model.n_features, dtype=torch.bool)
    one_masked = none_masked.clone()
    one_masked[:, 0] = True
    with torch.no_grad():
        plain = model.encode(x_cat, x_num)
        assert torch.allclose(model.encode(x_cat, x_num, none_masked), plain)
        assert not torch.allclose(model.encode(x_cat, x_num, one_masked), plain)


def test_no_categorical_columns() -> None:
    """A model with only numeric features (n_cat = 0) runs and has an empty offsets buffer."""
    torch.manual_seed(0)
    model = _small(cardinalities=[])
    x_cat, x_num = _inputs(4, cardinalities=[])
    assert x_cat.shape == (4, 0)
    assert model(x_cat, x_num).shape == (4, 2)
    assert model.category_offsets.shape == (0,)


def test_no_numeric_columns() -> None:
    """A model with only categorical features (n_num = 0) runs."""
    torch.manual_seed(0)
    model = _small(n_numeric=0)
    x_cat, x_num = _inputs(4, n_numeric=0)
    assert x_num.shape == (4, 0)
    assert model(x_cat, x_num).shape == (4, 2)


def test_no_features_at_all_is_refused() -> None:
    """Zero categorical and zero numeric columns raise ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        TabTransformer(cardinalities=[], n_numeric=0)


def test_d_model_must_divide_by_heads() -> None:
    """d_model not divisible by nhead raises ValueError naming both."""
    with pytest.raises(ValueError, match="d_model=30.*nhead=4"):
        TabTransformer(cardinalities=[2], n_numeric=1, d_model=30, nhead=4)


def test_categorical_offsets_map_columns_to_disjoint_rows() -> None:
    """Offsets are the cumulative cardinalities, so column j's code 0 is table row offsets[j]."""
    model = _small()
    assert model.category_offsets.tolist() == [0, 3, 8]
    assert model.category_embedding.num_embeddings == sum(CARDINALITIES)


def test_config_round_trip_gives_identical_output() -> None:
    """from_config(config) has the same parameter count and, with the weights loaded, the same logits."""
    torch.manual_seed(0)
    model = _small().eval()
    config = json.loads(json.dumps(model.config))  # JSON-able
    clone = TabTransformer.from_config(config)
    assert clone.n_parameters == model.n_parameters
    assert clone.config == model.config
    clone.load_state_dict(model.state_dict(), strict=True)
    clone.eval()
    x_cat, x_num = _inputs(6)
    with torch.no_grad():
        assert torch.equal(clone(x_cat, x_num), model(x_cat, x_num))


def test_from_config_rejects_unknown_keys() -> None:
    """A config with a missing or extra key raises ValueError naming it."""
    config = _small().config
    config["surprise"] = 1
    del config["nhead"]
    with pytest.raises(ValueError, match=r"missing \['nhead'\].*unknown \['surprise'\]"):
        TabTransformer.from_config(config)


def test_wrong_categorical_width_has_a_clear_message() -> None:
    """x_cat with the wrong number of columns fails the shape assert with the expected shape."""
    model = _small()
    x_cat, x_num = _inputs(3)
    with pytest.raises(AssertionError, match=r"x_cat must have shape \(batch, 3\).*got \(3, 2\)"):
        model(x_cat[:, :2], x_num)


def test_wrong_numeric_width_has_a_clear_message() -> None:
    """x_num with the wrong number of columns fails the shape assert with the expected shape."""
    model = _small()
    x_cat, x_num = _inputs(3)
    with pytest.raises(AssertionError, match=r"x_num must have shape \(batch, 4\).*got \(3, 5\)"):
        model(x_cat, torch.cat([x_num, x_num[:, :1]], dim=1))


def test_out_of_range_category_code_is_refused() -> None:
    """A code >= its column's cardinality raises ValueError naming the column, not a silent lookup."""
    model = _small()
    x_cat, x_num = _inputs(3)
    x_cat[1, 2] = 2  # column 2 has cardinality 2
    with pytest.raises(ValueError, match="categorical column 2 holds code 2"):
        model(x_cat, x_num)


# --------------------------------------------------------------------------- "tab" layout, encoder, dropout


def test_tab_architecture_shapes() -> None:
    """'tab': only categorical columns are tokens; encode gives n_cat * d_model + n_num features per row."""
    torch.manual_seed(0)
    model = _small(architecture="tab")
    x_cat, x_num = _inputs(7)
    assert model.n_tokens == len(CARDINALITIES) and model.n_features == len(CARDINALITIES) + N_NUMERIC
    assert model.representation_dim == len(CARDINALITIES) * 16 + N_NUMERIC
    h = model.encode(x_cat, x_num)
    assert h.shape == (7, model.representation_dim)
    assert model(x_cat, x_num).shape == (7, 2)
    assert model.project(h).shape == (7, 8)
    assert not hasattr(model, "numeric_weight")


def test_tab_mask_covers_categorical_and_numeric_features() -> None:
    """'tab': an all-False mask equals no mask; masking a numeric feature changes only the numeric part."""
    torch.manual_seed(0)
    model = _small(architecture="tab").eval()
    with torch.no_grad():
        model.numeric_mask.fill_(5.0)
    x_cat, x_num = _inputs(5)
    mask = torch.zeros(5, model.n_features, dtype=torch.bool)
    numeric_masked = mask.clone()
    numeric_masked[:, -1] = True
    with torch.no_grad():
        plain = model.encode(x_cat, x_num)
        assert torch.equal(model.encode(x_cat, x_num, mask), plain)
        masked = model.encode(x_cat, x_num, numeric_masked)
    n_flat = len(CARDINALITIES) * 16
    assert torch.equal(masked[:, :n_flat], plain[:, :n_flat])
    assert not torch.allclose(masked[:, n_flat:], plain[:, n_flat:])


@pytest.mark.parametrize("architecture", ["ft", "tab"])
def test_either_kind_of_column_may_be_absent(architecture: str) -> None:
    """Both layouts run with only numeric or only categorical columns."""
    torch.manual_seed(0)
    numeric_only = _small(cardinalities=[], architecture=architecture)
    assert numeric_only(*_inputs(4, cardinalities=[])).shape == (4, 2)
    categorical_only = _small(n_numeric=0, architecture=architecture)
    assert categorical_only(*_inputs(4, n_numeric=0)).shape == (4, 2)


def test_tab_config_round_trip_and_unknown_architecture() -> None:
    """A 'tab' config rebuilds the same network; an unknown architecture is refused with the choices."""
    torch.manual_seed(0)
    model = _small(architecture="tab", encoder_dropout=0.2).eval()
    clone = TabTransformer.from_config(json.loads(json.dumps(model.config)))
    clone.load_state_dict(model.state_dict(), strict=True)
    clone.eval()
    x_cat, x_num = _inputs(6)
    with torch.no_grad():
        assert torch.equal(clone(x_cat, x_num), model(x_cat, x_num))
    assert clone.config == model.config and clone.encoder_dropout == 0.2
    with pytest.raises(ValueError, match=r"architecture must be one of \['ft', 'tab', 'auto'\]"):
        _small(architecture="transformer")


def test_auto_architecture_follows_the_feature_count() -> None:
    """'auto' builds 'ft' below AUTO_TAB_MIN_FEATURES feature columns and 'tab' from there on, and stores the
    resolved name, so the stored config rebuilds the same network."""
    from daily_mlops.ml.network import AUTO_TAB_MIN_FEATURES, resolve_architecture

    assert resolve_architecture("auto", AUTO_TAB_MIN_FEATURES - 1) == "ft"
    assert resolve_architecture("auto", AUTO_TAB_MIN_FEATURES) == "tab"
    assert resolve_architecture("tab", 3) == "tab" and resolve_architecture("ft", 500) == "ft"
    narrow = TabTransformer(cardinalities=[3] * 13, n_numeric=7, architecture="auto")
    wide = TabTransformer(cardinalities=[3] * 20, n_numeric=AUTO_TAB_MIN_FEATURES - 20, architecture="auto")
    assert narrow.architecture == narrow.config["architecture"] == "ft"
    assert wide.architecture == wide.config["architecture"] == "tab"
    assert wide.n_tokens == 20


def test_config_stored_before_the_architecture_keys_rebuilds_the_old_network() -> None:
    """A config without 'architecture' and 'encoder_dropout' is the old network: numeric tokens, and
    its dropout inside the encoder too (the default); its state_dict loads strictly."""
    old = _small(dropout=0.25)
    config = old.config
    del config["architecture"], config["encoder_dropout"]
    rebuilt = TabTransformer.from_config(config)
    assert rebuilt.architecture == "ft" and rebuilt.encoder_dropout == 0.25 and rebuilt.dropout == 0.25
    rebuilt.load_state_dict(old.state_dict(), strict=True)


def test_fused_encoder_matches_torch_transformer_encoder() -> None:
    """The fused encoder path computes what nn.TransformerEncoder computes with the same weights (eval mode),
    so weights stored by the previous code give the same predictions."""
    torch.manual_seed(0)
    for model in (_small(num_layers=3).eval(), _small(cardinalities=[2] * 70, num_layers=2).eval()):
        tokens = torch.randn(9, model.n_tokens, 16)  # 7 tokens: two bmm; 74 tokens: scaled_dot_product_attention
        with torch.no_grad():
            fused = model._transform(tokens)
            reference = model.encoder(tokens)
        torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)


def test_fast_dropout_statistics_and_no_draws_when_off() -> None:
    """The CPU dropout zeroes about p of the elements and keeps the mean (inverted scaling); with p = 0 or
    in eval mode it returns its input and draws no random number."""
    from daily_mlops.ml._layers import dropout as _dropout

    x = torch.ones(200_000)
    torch.manual_seed(0)
    out = _dropout(x, 0.3, True)
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.01
    assert abs(float(out.mean()) - 1.0) < 0.02
    values = torch.unique(out).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7, rel=1e-4)
    state = torch.get_rng_state()
    assert _dropout(x, 0.0, True) is x and _dropout(x, 0.3, False) is x
    assert torch.equal(torch.get_rng_state(), state)
