"""Tests of early stopping in ``finetune`` (``validation=``, ``patience=``) and of ``EarlyStopping`` itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daily_mlops.ml._fitting import EarlyStopping
from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.training import finetune, seed_everything

CARDINALITIES = [4, 3, 5]
N_NUMERIC = 3
FAST = dict(batch_size=64, learning_rate=3e-3)


def _dataset(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose label is 1 when categorical column 0 is code 2 or numeric column 0 is large, 20 % flipped."""
    rng = np.random.default_rng(seed)
    x_cat = np.stack([rng.integers(0, c, n_rows) for c in CARDINALITIES], axis=1).astype(np.int64)
    x_num = rng.standard_normal((n_rows, N_NUMERIC)).astype(np.float32)
    y = ((x_cat[:, 0] == 2) | (x_num[:, 0] > 0.8)).astype(np.int64)
    flip = rng.random(n_rows) < 0.2
    return x_cat, x_num, np.where(flip, 1 - y, y)


def _model() -> TabTransformer:
    seed_everything(0)
    return TabTransformer(cardinalities=CARDINALITIES, n_numeric=N_NUMERIC, d_model=16, nhead=2,
                          num_layers=2, dim_feedforward=32, dropout=0.1, projection_dim=8)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_validation_keeps_the_trajectory_and_returns_the_best_epochs_weights() -> None:
    """With validation rows and a patience that never triggers, the epochs are bit-for-bit those of a run
    without them, and the model ends with the weights of the epoch of lowest validation loss."""
    x_cat, x_num, y = _dataset(256, seed=0)
    v_cat, v_num, v_y = _dataset(64, seed=1)
    plain, states = _model(), []
    plain_losses = finetune(plain, x_cat, x_num, y, epochs=5, seed=3,
                            on_epoch=lambda e, loss: states.append(_state(plain)), **FAST)
    stopped, seen = _model(), []
    losses = finetune(stopped, x_cat, x_num, y, epochs=5, seed=3, validation=(v_cat, v_num, v_y), patience=10,
                      on_validation=lambda e, loss: seen.append((e, loss)), **FAST)
    assert losses == plain_losses
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5]
    best = int(np.argmin([loss for _, loss in seen]))
    for key, value in stopped.state_dict().items():
        assert torch.equal(value, states[best][key]), key


def test_training_stops_after_patience_epochs_without_improvement() -> None:
    """Training ends at the first epoch that is ``patience`` epochs past the best validation loss so far."""
    x_cat, x_num, y = _dataset(256, seed=0)
    v_cat, v_num, v_y = _dataset(64, seed=2)
    model, seen = _model(), []
    losses = finetune(model, x_cat, x_num, y, epochs=30, seed=0, validation=(v_cat, v_num, v_y), patience=1,
                      learning_rate=3e-2, batch_size=64, on_validation=lambda e, loss: seen.append(loss))
    expected, best = len(seen), 0
    for epoch, loss in enumerate(seen, start=1):
        if loss < seen[best]:
            best = epoch - 1
        if epoch - (best + 1) >= 1:
            expected = epoch
            break
    assert len(losses) == len(seen) == expected
    assert expected < 30  # at a learning rate this high it overfits the noisy labels and stops


def test_early_stopping_rule_and_restore() -> None:
    """update() says stop after ``patience`` epochs without a new minimum; restore() loads the best weights."""
    layer = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    decisions = []
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.97], start=1):
        with torch.no_grad():
            layer.weight.fill_(float(epoch))
        decisions.append(stopper.update(layer, epoch, loss))
    assert decisions == [False, False, False, True]
    assert stopper.best_epoch_ == 2 and stopper.best_loss_ == 0.9
    stopper.restore(layer)
    assert torch.equal(layer.weight, torch.full((1, 2), 2.0))
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_validation_rows_are_checked() -> None:
    """Validation rows with the wrong width or labels out of range raise ValueError naming the problem."""
    x_cat, x_num, y = _dataset(64, seed=0)
    with pytest.raises(ValueError, match="x_cat must have shape"):
        finetune(_model(), x_cat, x_num, y, epochs=1, seed=0, validation=(x_cat[:, :2], x_num, y), **FAST)
    with pytest.raises(ValueError, match="validation y"):
        finetune(_model(), x_cat, x_num, y, epochs=1, seed=0, validation=(x_cat, x_num, y + 2), **FAST)
