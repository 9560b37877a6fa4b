"""Helpers of :mod:`daily_mlops.ml.training`'s loops: threads, argument checks, batches, early stopping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.ml.network import TabTransformer

__all__ = ["EarlyStopping", "as_tensors", "batches", "check_fit_args", "intra_op_threads", "place", "weighted_loss"]


@contextmanager
def intra_op_threads(num_threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)``, restoring the previous value.

    The network is small: on a 2-core machine one thread is about as fast as two when idle and
    tens of times faster when other processes (the scheduler, MongoDB, a parallel task) compete.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_fit_args(epochs: int, batch_size: int, learning_rate: float) -> None:
    """Raise ``ValueError`` naming the argument when an epoch count, batch size or learning rate is out of range."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")


def batches(n_rows: int, batch_size: int, generator: torch.Generator, *, min_size: int = 1) -> Iterator[Tensor]:
    """Shuffled row indices in batches; a last batch smaller than ``min_size`` joins the previous one."""
    order = torch.randperm(n_rows, generator=generator)
    starts = list(range(0, n_rows, batch_size))
    if len(starts) > 1 and n_rows - starts[-1] < min_size:
        starts.pop()
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n_rows
        yield order[start:stop]


class EarlyStopping:
    """Keep the weights of the epoch with the lowest validation loss; say when ``patience`` epochs did not improve.

    The usual early-stopping rule (Prechelt, "Early Stopping - But When?", 1998: stop after
    ``patience`` epochs without a new minimum of the validation error, return the best weights).
    An epoch improves when its loss is below the best so far by more than ``min_delta``.

    Parameters
    ----------
    patience : int
        Epochs without improvement before :meth:`update` returns ``True`` (``>= 1``).
    min_delta : float, default 0.0
        Smallest decrease of the loss that counts as an improvement (``>= 0``).
    """

    def __init__(self, *, patience: int, min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss_ = float("inf")
        self.best_epoch_ = 0
        self._best_state: dict[str, Tensor] | None = None

    def update(self, model: nn.Module, epoch: int, loss: float) -> bool:
        """Record epoch ``epoch``'s validation ``loss`` (copying the weights when it is the best); ``True``: stop."""
        if loss < self.best_loss_ - self.min_delta:
            self.best_loss_, self.best_epoch_ = loss, epoch
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.best_epoch_ >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing when no epoch was recorded)."""
        if self._best_state is not None:
            model.load_state_dict(self._best_state)


def place(model: TabTransformer, device: torch.device | str | None) -> torch.device:
    """Move ``model`` to ``device`` (``None``: leave it) and return the device its parameters are on."""
    if device is not None:
        model.to(device)
    return model.mask_token.device


def as_tensors(
    model: TabTransformer, x_cat: np.ndarray, x_num: np.ndarray, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Check the arrays against ``model`` and convert them to tensors (int64, float32) on ``device`` (CPU)."""
    x_cat = np.asarray(x_cat)
    x_num = np.asarray(x_num)
    if x_cat.ndim != 2 or x_cat.shape[1] != model.n_categorical:
        raise ValueError(
            f"x_cat must have shape (n_rows, {model.n_categorical}) to match the model, got {x_cat.shape}"
        )
    if x_num.ndim != 2 or x_num.shape[1] != model.n_numeric:
        raise ValueError(f"x_num must have shape (n_rows, {model.n_numeric}) to match the model, got {x_num.shape}")
    if x_cat.shape[0] != x_num.shape[0]:
        raise ValueError(f"x_cat has {x_cat.shape[0]} rows but x_num has {x_num.shape[0]}; pass the same rows")
    if x_cat.size and not np.issubdtype(x_cat.dtype, np.integer):
        raise ValueError(f"x_cat must hold integer category codes, got dtype {x_cat.dtype}")
    if x_num.size and not np.isfinite(x_num).all():
        raise ValueError("x_num holds NaN or infinite values; impute and scale numeric features first")
    cat = torch.from_numpy(np.ascontiguousarray(x_cat, dtype=np.int64))  # (n, n_cat)
    num = torch.from_numpy(np.ascontiguousarray(x_num, dtype=np.float32))  # (n, n_num)
    if device is not None and device.type != "cpu":
        cat, num = cat.to(device), num.to(device)
    return cat, num


def weighted_loss(model: TabTransformer, cat: Tensor, num: Tensor, y: Tensor, weight: Tensor,
                   batch_size: int = 1024) -> float:
    """Class-weighted mean cross-entropy of rows in eval mode (no dropout, no gradients), as ``CrossEntropyLoss``."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, cat.shape[0], batch_size):
            stop = start + batch_size
            total += float(F.cross_entropy(model(cat[start:stop], num[start:stop]), y[start:stop], weight=weight,
                                           reduction="sum"))
    model.train()
    return total / float(weight[y].sum())
