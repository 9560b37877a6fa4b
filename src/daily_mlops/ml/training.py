"""Training of the :class:`~daily_mlops.ml.network.TabTransformer`: contrastive pretraining, fine-tuning, inference.

Sources
-------
- NT-Xent loss and the two-view recipe: Chen, Kornblith, Norouzi and Hinton,
  "A Simple Framework for Contrastive Learning of Visual Representations"
  (SimCLR), 2020, arXiv:2002.05709.
- Random feature masking as the tabular augmentation: Bahri et al., "SCARF",
  2021, arXiv:2106.15147, and Somepalli et al., "SAINT", 2021, arXiv:2106.01342
  (here masked features take a learned ``[MASK]`` token).
- Balanced class weights: scikit-learn ``compute_class_weight("balanced")``,
  ``n_samples / (n_classes * bincount(y))``.
- AdamW: Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019.

All randomness of a run (weight init aside, which happens when the model is
built: call :func:`seed_everything` first) comes from ``seed``: a
``torch.Generator`` drives shuffling and masks, and fine-tuning dropout draws
from the global torch RNG seeded inside a forked RNG state, so the caller's
global RNG is left untouched. Same seed on CPU gives identical
losses and weights.

Device: every function takes ``device`` (``None``: wherever the model's
parameters are, the CPU for a new model). A given device moves the model there
(in place) and the batches with it; shuffling and masks are still drawn on the
CPU, so a CPU run is the same with ``device="cpu"`` as without it.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch import Tensor

from daily_mlops.ml.network import TabTransformer

__all__ = [
    "seed_everything",
    "nt_xent_loss",
    "pretrain_contrastive",
    "finetune",
    "predict_proba",
]

#: Signature of the optional per-epoch progress callback: ``(epoch, mean_loss)``, epoch counted from 1.
EpochCallback = Callable[[int, float], None]

_WEIGHT_DECAY = 1e-2  # torch.optim.AdamW default
_MAX_GRAD_NORM = 1.0


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch, and ask torch for deterministic kernels.

    Call it before building a model so weight initialisation is reproducible.

    Parameters
    ----------
    seed : int
        Non-negative seed (the project's default is ``Settings.seed`` = 42).

    Raises
    ------
    ValueError
        When ``seed`` is negative.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # That mode also fills each new tensor with NaN / max-int as a trap for reads of uninitialised
    # memory; no kernel here reads it (same results, checked), and the fills cost 2-4 % of a step.
    torch.utils.deterministic.fill_uninitialized_memory = False


def nt_xent_loss(z1: Tensor, z2: Tensor, *, temperature: float) -> Tensor:
    """Normalised temperature-scaled cross-entropy (NT-Xent) between two views.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; the other
    ``2 * batch - 2`` projections in the batch are its negatives. Source:
    SimCLR, Chen et al. 2020, eq. (1), averaged over all ``2 * batch`` anchors.

    Parameters
    ----------
    z1, z2 : Tensor of shape (batch, dim)
        Projections of the two augmented views (need not be normalised).
    temperature : float
        Softmax temperature ``tau > 0`` (project default 0.5).

    Returns
    -------
    Tensor
        Scalar loss, ``>= 0``.

    Raises
    ------
    ValueError
        When the shapes differ, are not 2-D, ``batch < 2`` or ``temperature <= 0``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both have shape (batch, dim), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    batch = z1.shape[0]
    if batch < 2:
        raise ValueError(f"NT-Xent needs at least 2 rows for negatives, got {batch}")
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2 * batch, dim)
    similarity = z @ z.T / temperature  # (2 * batch, 2 * batch)
    self_pairs = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_pairs, float("-inf"))
    index = torch.arange(batch, device=z.device)
    targets = torch.cat([index + batch, index])  # (2 * batch,) partner of each anchor
    return F.cross_entropy(similarity, targets)


def _place(model: TabTransformer, device: torch.device | str | None) -> torch.device:
    """Move ``model`` to ``device`` (``None``: leave it) and return the device its parameters are on."""
    if device is not None:
        model.to(device)
    return model.mask_token.device


def _as_tensors(
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


@contextmanager
def _intra_op_threads(num_threads: int) -> Iterator[None]:
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


def _check_fit_args(epochs: int, batch_size: int, learning_rate: float) -> None:
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")


def _batches(n_rows: int, batch_size: int, generator: torch.Generator, *, min_size: int = 1) -> Iterator[Tensor]:
    """Shuffled row indices in batches; a last batch smaller than ``min_size`` joins the previous one."""
    order = torch.randperm(n_rows, generator=generator)
    starts = list(range(0, n_rows, batch_size))
    if len(starts) > 1 and n_rows - starts[-1] < min_size:
        starts.pop()
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n_rows
        yield order[start:stop]


def pretrain_contrastive(
    model: TabTransformer,
    x_cat: np.ndarray,
    x_num: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    temperature: float,
    mask_probability: float,
    seed: int,
    on_epoch: EpochCallback | None = None,
    num_threads: int = 1,
    device: torch.device | str | None = None,
) -> list[float]:
    """Self-supervised contrastive pretraining of the encoder and projection head.

    Each row gets two views, each with every feature independently replaced by
    the ``[MASK]`` token with probability ``mask_probability`` (SCARF/SAINT-style
    masking); the NT-Xent loss (SimCLR, Chen et al. 2020) pulls the two views'
    projections together. The classification head is not trained. Dropout is
    off during pretraining, so masking is the only augmentation; on CPU this
    roughly halves the time of a step (sampling dropout masks costs more than
    the matrix products for a network this small). Optimiser: AdamW, gradient norm clipped to 1.

    Parameters
    ----------
    model : TabTransformer
        Trained in place; its train/eval mode is restored afterwards.
    x_cat : ndarray of int64, shape (n_rows, n_cat)
        Category codes, ``0`` = unknown.
    x_num : ndarray of float32, shape (n_rows, n_num)
        Scaled numeric features.
    epochs : int
        Passes over the rows (``0`` returns ``[]``).
    batch_size : int
        Rows per step (default 256 in ``Settings``); a trailing batch of one
        row is merged into the previous batch, as NT-Xent needs negatives.
    learning_rate : float
        AdamW learning rate.
    temperature : float
        NT-Xent temperature ``> 0``.
    mask_probability : float
        Fraction of features masked per view, in ``[0, 1)``.
    seed : int
        Seeds shuffling and masks.
    on_epoch : callable ``(epoch, loss) -> None``, optional
        Called after each epoch (``epoch`` from 1) with its mean loss.
    num_threads : int, default 1
        torch intra-op threads while training (restored afterwards). On a
        2-core machine one thread is ~20 % slower than two when idle, and tens
        of times faster when other processes compete for the cores.
    device : torch.device or str, optional
        Where to train (see the module docstring); ``None``: the model's device.

    Returns
    -------
    list of float
        Mean NT-Xent loss (row-weighted) of each epoch.

    Raises
    ------
    ValueError
        On mis-shaped inputs, fewer than 2 rows or an out-of-range argument.
    """
    _check_fit_args(epochs, batch_size, learning_rate)
    if not 0.0 <= mask_probability < 1.0:
        raise ValueError(f"mask_probability must be in [0, 1), got {mask_probability}")
    device = _place(model, device)
    cat, num = _as_tensors(model, x_cat, x_num, device)
    n_rows = cat.shape[0]
    if n_rows < 2:
        raise ValueError(f"contrastive pretraining needs at least 2 rows, got {n_rows}")
    head_ids = {id(p) for p in model.head.parameters()}
    parameters = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=_WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    was_training = model.training
    model.eval()  # no dropout: masking is the only augmentation (see the docstring); gradients stay on
    try:
        with _intra_op_threads(num_threads):
            for epoch in range(1, epochs + 1):
                total = 0.0
                for index in _batches(n_rows, batch_size, generator, min_size=2):
                    shape = (index.shape[0], model.n_features)
                    mask1 = (torch.rand(shape, generator=generator) < mask_probability).to(device)  # (b, n_features)
                    mask2 = (torch.rand(shape, generator=generator) < mask_probability).to(device)  # (b, n_features)
                    index = index.to(device)
                    both = torch.cat([index, index])  # the two views in one pass: (2 b,)
                    z = model.project(model.encode(cat[both], num[both], torch.cat([mask1, mask2])))  # (2 b, proj)
                    z1, z2 = z.chunk(2)  # (b, projection_dim) each
                    loss = nt_xent_loss(z1, z2, temperature=temperature)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(parameters, _MAX_GRAD_NORM)
                    optimizer.step()
                    total += float(loss.detach()) * index.shape[0]
                losses.append(total / n_rows)
                if on_epoch is not None:
                    on_epoch(epoch, losses[-1])
    finally:
        model.train(was_training)
    return losses


def finetune(
    model: TabTransformer,
    x_cat: np.ndarray,
    x_num: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    on_epoch: EpochCallback | None = None,
    num_threads: int = 1,
    device: torch.device | str | None = None,
) -> list[float]:
    """Supervised fine-tuning with class-balanced cross-entropy.

    Class weights are scikit-learn's ``compute_class_weight("balanced")``
    (``n_rows / (n_classes * count)``) over the classes present in ``y``; a
    class absent from ``y`` keeps weight 1. Optimiser: AdamW, gradient norm
    clipped to 1. All parameters (encoder, head) are trained.

    Parameters
    ----------
    model : TabTransformer
        Trained in place (dropout on); its train/eval mode is restored afterwards.
    x_cat : ndarray of int64, shape (n_rows, n_cat)
    x_num : ndarray of float32, shape (n_rows, n_num)
    y : ndarray of int64, shape (n_rows,)
        Class labels in ``[0, n_classes)``; 1 = positive (default).
    epochs : int
        Passes over the rows (``0`` returns ``[]``).
    batch_size : int
        Rows per step.
    learning_rate : float
        AdamW learning rate.
    seed : int
        Seeds shuffling and dropout.
    on_epoch : callable ``(epoch, loss) -> None``, optional
        Called after each epoch (``epoch`` from 1) with its mean loss.
    num_threads : int, default 1
        torch intra-op threads while training (restored afterwards). On a
        2-core machine one thread is ~20 % slower than two when idle, and tens
        of times faster when other processes compete for the cores.
    device : torch.device or str, optional
        Where to train (see the module docstring); ``None``: the model's device.

    Returns
    -------
    list of float
        Mean weighted cross-entropy (row-weighted over batches) of each epoch.

    Raises
    ------
    ValueError
        On mis-shaped inputs, no rows, labels outside ``[0, n_classes)`` or an
        out-of-range argument.
    """
    _check_fit_args(epochs, batch_size, learning_rate)
    device = _place(model, device)
    cat, num = _as_tensors(model, x_cat, x_num, device)
    y = np.asarray(y)
    n_rows = cat.shape[0]
    if y.shape != (n_rows,):
        raise ValueError(f"y must have shape ({n_rows},) to match x_cat/x_num, got {y.shape}")
    if n_rows == 0:
        raise ValueError("finetune needs at least one row, got 0")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= model.n_classes:
        raise ValueError(f"y must hold integer labels in [0, {model.n_classes}), got dtype {y.dtype} "
                         f"with range [{y.min()}, {y.max()}]")
    present = np.unique(y)
    weights = np.ones(model.n_classes, dtype=np.float32)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    criterion = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights).to(device))
    labels = torch.from_numpy(y.astype(np.int64)).to(device)  # (n,)

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=_WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    was_training = model.training
    forked = []  # the CPU RNG is always forked; on CUDA also the device's
    if device.type == "cuda":
        forked = [device.index if device.index is not None else torch.cuda.current_device()]
    with _intra_op_threads(num_threads), torch.random.fork_rng(devices=forked, device_type="cuda"):
        torch.manual_seed(seed)  # dropout draws from the (forked) global RNG
        model.train()
        try:
            for epoch in range(1, epochs + 1):
                total = 0.0
                for index in _batches(n_rows, batch_size, generator):
                    index = index.to(device)
                    logits = model(cat[index], num[index])  # (b, n_classes)
                    loss = criterion(logits, labels[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), _MAX_GRAD_NORM)
                    optimizer.step()
                    total += float(loss.detach()) * index.shape[0]
                losses.append(total / n_rows)
                if on_epoch is not None:
                    on_epoch(epoch, losses[-1])
        finally:
            model.train(was_training)
    return losses


def predict_proba(
    model: TabTransformer, x_cat: np.ndarray, x_num: np.ndarray, *, batch_size: int = 1024, num_threads: int = 1,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Probability of the positive class (1) for each row.

    Runs in eval mode (no dropout) under ``torch.no_grad``; the model's
    previous train/eval mode is restored afterwards.

    Parameters
    ----------
    model : TabTransformer
    x_cat : ndarray of int64, shape (n_rows, n_cat)
    x_num : ndarray of float32, shape (n_rows, n_num)
    batch_size : int, default 1024
        Rows per forward pass (memory only; results do not depend on it).
    num_threads : int, default 1
        torch intra-op threads during inference (restored afterwards).
    device : torch.device or str, optional
        Where to run (see the module docstring); ``None``: the model's device.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        ``softmax(logits)[:, 1]``, in ``[0, 1]``.

    Raises
    ------
    ValueError
        On mis-shaped inputs or ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cat, num = _as_tensors(model, x_cat, x_num, _place(model, device))
    n_rows = cat.shape[0]
    was_training = model.training
    model.eval()
    try:
        chunks = []
        with torch.no_grad(), _intra_op_threads(num_threads):
            for start in range(0, n_rows, batch_size):
                logits = model(cat[start : start + batch_size], num[start : start + batch_size])  # (b, n_classes)
                chunks.append(torch.softmax(logits, dim=-1)[:, 1])  # (b,)
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(chunks).cpu().numpy().astype(np.float64)  # (n_rows,)
