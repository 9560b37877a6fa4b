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
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch import Tensor

from daily_mlops.ml._fitting import EarlyStopping
from daily_mlops.ml._fitting import as_tensors as _as_tensors
from daily_mlops.ml._fitting import batches as _batches
from daily_mlops.ml._fitting import check_fit_args as _check_fit_args
from daily_mlops.ml._fitting import intra_op_threads as _intra_op_threads
from daily_mlops.ml._fitting import place as _place
from daily_mlops.ml._fitting import weighted_loss as _weighted_loss
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
    # torch sets this attribute on a module subclass; its stubs do not declare it
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


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
                    total += _step(optimizer, loss, parameters) * index.shape[0]
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
    validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    patience: int = 2,
    on_validation: EpochCallback | None = None,
) -> list[float]:
    """Supervised fine-tuning with class-balanced cross-entropy, optionally early-stopped on validation rows.

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
    on_epoch, num_threads, device
        As in :func:`pretrain_contrastive`.
    validation : (x_cat, x_num, y), optional
        Held-out rows (shapes as above, not among the training rows). After each epoch their
        class-weighted cross-entropy (eval mode, the training rows' class weights) is measured;
        training stops after ``patience`` epochs without a new minimum and the model gets the
        best epoch's weights back (:class:`~daily_mlops.ml._fitting.EarlyStopping`). Measuring
        draws no random number, so the epochs that run are bit-for-bit those of a run without it.
    patience : int, default 2
        Epochs without a lower validation loss before stopping (only with ``validation``).
    on_validation : callable ``(epoch, loss) -> None``, optional
        Called after each epoch with the validation loss (only with ``validation``).

    Returns
    -------
    list of float
        Mean weighted cross-entropy (row-weighted over batches) of each epoch that ran
        (fewer than ``epochs`` when early stopping ended training).

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
    class_weight = torch.from_numpy(weights).to(device)
    criterion = torch.nn.CrossEntropyLoss(weight=class_weight)
    labels = torch.from_numpy(y.astype(np.int64)).to(device)  # (n,)
    held_out = _validation_tensors(model, validation, device)
    stopper = EarlyStopping(patience=patience) if held_out is not None else None

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
                    total += _step(optimizer, loss, model.parameters()) * index.shape[0]
                losses.append(total / n_rows)
                if on_epoch is not None:
                    on_epoch(epoch, losses[-1])
                if stopper is not None and held_out is not None:
                    val_loss = _weighted_loss(model, *held_out, class_weight)
                    if on_validation is not None:
                        on_validation(epoch, val_loss)
                    if stopper.update(model, epoch, val_loss):
                        break
            if stopper is not None:
                stopper.restore(model)
        finally:
            model.train(was_training)
    return losses


def _step(optimizer: torch.optim.Optimizer, loss: Tensor, parameters: Iterable[Tensor]) -> float:
    """One optimiser step on the scalar ``loss`` (backward, gradient norm clipped to 1); returns ``loss`` as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, _MAX_GRAD_NORM)
    optimizer.step()
    return float(loss.detach())


def _validation_tensors(
    model: TabTransformer, validation, device: torch.device
) -> tuple[Tensor, Tensor, Tensor] | None:
    """``finetune``'s validation rows as tensors on ``device`` (checked like the training rows), or ``None``."""
    if validation is None:
        return None
    v_cat, v_num, v_y = validation
    cat, num = _as_tensors(model, v_cat, v_num, device)
    v_y = np.asarray(v_y)
    if v_y.shape != (cat.shape[0],) or cat.shape[0] == 0:
        raise ValueError(f"validation y must have shape ({cat.shape[0]},) with at least one row, got {v_y.shape}")
    if not np.issubdtype(v_y.dtype, np.integer) or v_y.min() < 0 or v_y.max() >= model.n_classes:
        raise ValueError(f"validation y must hold integer labels in [0, {model.n_classes})")
    return cat, num, torch.from_numpy(v_y.astype(np.int64)).to(device)


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
