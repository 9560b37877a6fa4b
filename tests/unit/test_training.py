"""Tests of contrastive pretraining, fine-tuning and inference on a small learnable dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.training import finetune, nt_xent_loss, predict_proba, pretrain_contrastive, seed_everything

CARDINALITIES = [4, 3, 5]
N_NUMERIC = 3
FAST = dict(batch_size=64, learning_rate=3e-3)


def _dataset(n_rows: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose label is 1 when categorical column 0 is code 2 or numeric column 0 is large."""
    rng = np.random.default_rng(seed)
    x_cat = np.stack([rng.integers(0, c, n_rows) for c in CARDINALITIES], axis=1).astype(np.int64)
    x_num = rng.standard_normal((n_rows, N_NUMERIC)).astype(np.float32)
    y = ((x_cat[:, 0] == 2) | (x_num[:, 0] > 0.8)).astype(np.int64)
    return x_cat, x_num, y


def _model() -> TabTransformer:
    return TabTransformer(cardinalities=CARDINALITIES, n_numeric=N_NUMERIC, d_model=16, nhead=2,
                          num_layers=2, dim_feedforward=32, dropout=0.1, projection_dim=8)


def _run(seed: int) -> tuple[list[float], list[float], np.ndarray]:
    x_cat, x_num, y = _dataset()
    seed_everything(seed)
    model = _model()
    pre = pretrain_contrastive(model, x_cat, x_num, epochs=3, temperature=0.5, mask_probability=0.3,
                               seed=seed, **FAST)
    fine = finetune(model, x_cat, x_num, y, epochs=3, seed=seed, **FAST)
    return pre, fine, predict_proba(model, x_cat, x_num)


def test_pretraining_and_finetuning_lower_the_loss() -> None:
    """Both losses fall over epochs and the fine-tuned model separates the classes (ROC-AUC > 0.8)."""
    from sklearn.metrics import roc_auc_score

    pre, fine, prob = _run(seed=0)
    assert len(pre) == 3 and len(fine) == 3
    assert pre[-1] < pre[0]
    assert fine[-1] < fine[0]
    _, _, y = _dataset()
    assert roc_auc_score(y, prob) > 0.8


def test_same_seed_gives_identical_results() -> None:
    """Two runs with the same seed give the same losses and the same probabilities, bit for bit."""
    first, second = _run(seed=7), _run(seed=7)
    assert first[0] == second[0]
    assert first[1] == second[1]
    np.testing.assert_array_equal(first[2], second[2])


def test_different_seeds_differ() -> None:
    """Runs with different seeds give different probabilities."""
    assert not np.array_equal(_run(seed=1)[2], _run(seed=2)[2])


def test_nt_xent_prefers_identical_views() -> None:
    """NT-Xent of two identical views is lower than of two unrelated random views."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(32, 8, generator=generator)
    other = torch.randn(32, 8, generator=generator)
    same = nt_xent_loss(z, z.clone(), temperature=0.5)
    unrelated = nt_xent_loss(z, other, temperature=0.5)
    assert same.item() < unrelated.item()
    assert same.item() >= 0.0


def test_nt_xent_rejects_bad_arguments() -> None:
    """Mismatched shapes, a single row or a non-positive temperature raise ValueError."""
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="shape"):
        nt_xent_loss(z, z[:, :2], temperature=0.5)
    with pytest.raises(ValueError, match="at least 2 rows"):
        nt_xent_loss(z[:1], z[:1], temperature=0.5)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, temperature=0.0)


def test_on_epoch_callback_receives_each_epoch_loss() -> None:
    """on_epoch is called once per epoch, numbered from 1, with the returned mean loss."""
    x_cat, x_num, y = _dataset(128)
    seed_everything(0)
    model = _model()
    seen: list[tuple[int, float]] = []
    losses = finetune(model, x_cat, x_num, y, epochs=2, seed=0, on_epoch=lambda e, loss: seen.append((e, loss)), **FAST)
    assert seen == list(enumerate(losses, start=1))


def test_training_leaves_caller_rng_and_mode_alone() -> None:
    """Training and prediction restore the model's mode and torch's thread count, and keep the global RNG."""
    x_cat, x_num, y = _dataset(128)
    seed_everything(0)
    model = _model().eval()
    state = torch.get_rng_state()
    threads = torch.get_num_threads()
    finetune(model, x_cat, x_num, y, epochs=1, seed=0, **FAST)
    pretrain_contrastive(model, x_cat, x_num, epochs=1, temperature=0.5, mask_probability=0.2, seed=0, **FAST)
    assert not model.training
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    model.train()
    prob = predict_proba(model, x_cat, x_num, batch_size=50)
    assert model.training
    assert prob.shape == (128,) and prob.dtype == np.float64
    assert ((prob >= 0) & (prob <= 1)).all()


def test_predict_proba_does_not_depend_on_batch_size() -> None:
    """Probabilities are the same (to float tolerance) whatever the inference batch size."""
    x_cat, x_num, _ = _dataset(100)
    seed_everything(0)
    model = _model()
    np.testing.assert_allclose(predict_proba(model, x_cat, x_num, batch_size=7),
                               predict_proba(model, x_cat, x_num, batch_size=1000), rtol=1e-5, atol=1e-6)


def test_numeric_only_and_categorical_only_data_train() -> None:
    """finetune and predict_proba work when there are no categorical or no numeric columns."""
    x_cat, x_num, y = _dataset(64)
    seed_everything(0)
    numeric_only = TabTransformer(cardinalities=[], n_numeric=N_NUMERIC, d_model=8, nhead=2, num_layers=1)
    finetune(numeric_only, x_cat[:, :0], x_num, y, epochs=1, seed=0, **FAST)
    assert predict_proba(numeric_only, x_cat[:, :0], x_num).shape == (64,)
    categorical_only = TabTransformer(cardinalities=CARDINALITIES, n_numeric=0, d_model=8, nhead=2, num_layers=1)
    pretrain_contrastive(categorical_only, x_cat, x_num[:, :0], epochs=1, temperature=0.5, mask_probability=0.2,
                         seed=0, **FAST)
    assert predict_proba(categorical_only, x_cat, x_num[:, :0]).shape == (64,)


def test_finetune_rejects_bad_labels() -> None:
    """Labels outside [0, n_classes) or of the wrong length raise ValueError."""
    x_cat, x_num, y = _dataset(32)
    model = _model()
    with pytest.raises(ValueError, match="labels in"):
        finetune(model, x_cat, x_num, y + 1, epochs=1, seed=0, **FAST)
    with pytest.raises(ValueError, match="shape"):
        finetune(model, x_cat, x_num, y[:-1], epochs=1, seed=0, **FAST)


# --------------------------------------------------------------------------- device


def _one_epoch(architecture: str, **device) -> tuple[list[float], list[float], dict, np.ndarray]:
    """Pretrain and fine-tune one epoch on 48 rows (dropout in the encoder and head on), optionally with device=."""
    x_cat, x_num, y = _dataset(48)
    seed_everything(3)
    model = TabTransformer(cardinalities=CARDINALITIES, n_numeric=N_NUMERIC, d_model=8, nhead=2, num_layers=1,
                           dim_feedforward=16, dropout=0.3, encoder_dropout=0.2, projection_dim=4,
                           architecture=architecture)
    pre = pretrain_contrastive(model, x_cat, x_num, epochs=1, batch_size=16, learning_rate=1e-3, temperature=0.5,
                               mask_probability=0.3, seed=3, **device)
    fine = finetune(model, x_cat, x_num, y, epochs=1, batch_size=16, learning_rate=1e-3, seed=3, **device)
    return pre, fine, model.state_dict(), predict_proba(model, x_cat, x_num, **device)


@pytest.mark.parametrize("architecture", ["ft", "tab"])
def test_device_cpu_is_bit_for_bit_the_code_path_without_a_device(architecture: str) -> None:
    """device="cpu" (what MLOPS_DEVICE=cpu or auto on a CPU machine gives) trains exactly as the call without
    a device: same losses, same state_dict tensors bit for bit, same probabilities."""
    import torch

    without = _one_epoch(architecture)
    with_cpu = _one_epoch(architecture, device="cpu")
    with_torch_device = _one_epoch(architecture, device=torch.device("cpu"))
    for other in (with_cpu, with_torch_device):
        assert other[0] == without[0] and other[1] == without[1]
        assert other[2].keys() == without[2].keys()
        for name, tensor in without[2].items():
            assert other[2][name].device.type == "cpu"
            assert torch.equal(other[2][name], tensor), name
        np.testing.assert_array_equal(other[3], without[3])


def test_resolve_device() -> None:
    """auto is cuda only when torch sees a GPU (cpu here otherwise); cuda without one, or a name that is
    not a device, raises ConfigError naming MLOPS_DEVICE."""
    import torch

    from daily_mlops.errors import ConfigError
    from daily_mlops.ml.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="MLOPS_DEVICE='gpu' is not a device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="MLOPS_DEVICE=cuda but torch .* sees 0 CUDA device"):
            resolve_device("cuda")


def test_tab_architecture_learns() -> None:
    """The 'tab' layout (numeric features after the transformer) pretrains, fine-tunes and separates the classes."""
    from sklearn.metrics import roc_auc_score

    x_cat, x_num, y = _dataset()
    seed_everything(0)
    model = TabTransformer(cardinalities=CARDINALITIES, n_numeric=N_NUMERIC, d_model=16, nhead=2, num_layers=2,
                           dim_feedforward=32, dropout=0.1, projection_dim=8, architecture="tab")
    pre = pretrain_contrastive(model, x_cat, x_num, epochs=2, temperature=0.5, mask_probability=0.3, seed=0, **FAST)
    fine = finetune(model, x_cat, x_num, y, epochs=3, seed=0, **FAST)
    assert pre[-1] < pre[0] and fine[-1] < fine[0]
    assert roc_auc_score(y, predict_proba(model, x_cat, x_num)) > 0.8
