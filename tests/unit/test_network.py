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
    none_masked = torch.zeros(5, model.n_tokens, dtype=torch.bool)
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
