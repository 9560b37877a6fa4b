"""Stratified pretrain / finetune / test splits of a labelled batch (scikit-learn)."""

from __future__ import annotations

import math

import numpy as np

from daily_mlops.errors import ConfigError, SchemaError

__all__ = ["CALIBRATION_FRACTION", "calibration_split", "split_indices"]

#: Share of the fine-tune split held out to choose the decision threshold on (:func:`calibration_split`).
CALIBRATION_FRACTION = 0.20


def split_indices(
    y: np.ndarray, *, seed: int, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
) -> dict[str, np.ndarray]:
    """Split row indices into stratified pretrain / finetune / test parts.

    Two stratified ``sklearn.model_selection.train_test_split`` calls: first
    pretrain vs. the rest, then the rest into finetune and test.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Class labels to stratify on.
    seed : int
        ``random_state`` of both splits; the same seed gives the same split.
    fractions : tuple of 3 floats in (0, 1), default=(0.70, 0.15, 0.15)
        Fractions of rows for pretrain, finetune and test; must sum to 1.

    Returns
    -------
    dict of str to ndarray of int64
        ``{"pretrain", "finetune", "test"}``: sorted row indices, disjoint,
        together covering ``0..n_rows-1``.

    Raises
    ------
    ConfigError
        If ``fractions`` are not three positive numbers summing to 1.
    SchemaError
        If ``y`` is not one-dimensional, or a class has too few rows to be
        stratified into every part.
    """
    from sklearn.model_selection import train_test_split

    try:
        parts = [float(f) for f in fractions]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"split fractions {fractions!r} must be three numbers") from exc
    if len(parts) != 3 or any(not (0.0 < f < 1.0) for f in parts) or not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"split fractions {fractions!r} must be three numbers in (0, 1) summing to 1, e.g. (0.70, 0.15, 0.15)"
        )
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise SchemaError(f"labels must have shape (n_rows,), got {labels.shape}")
    indices = np.arange(labels.shape[0], dtype=np.int64)
    pretrain_f, finetune_f, test_f = parts
    try:
        pretrain, rest = train_test_split(
            indices, train_size=pretrain_f, random_state=seed, shuffle=True, stratify=labels
        )
        finetune, test = train_test_split(
            rest, test_size=test_f / (finetune_f + test_f), random_state=seed, shuffle=True, stratify=labels[rest]
        )
    except ValueError as exc:
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        raise SchemaError(
            f"cannot split {labels.shape[0]} rows with class counts {counts} into stratified parts "
            f"{tuple(parts)} ({exc}); use more rows per class"
        ) from exc
    return {
        "pretrain": np.sort(pretrain).astype(np.int64),
        "finetune": np.sort(finetune).astype(np.int64),
        "test": np.sort(test).astype(np.int64),
    }


def calibration_split(y: np.ndarray, *, seed: int, fraction: float = CALIBRATION_FRACTION) -> dict[str, np.ndarray]:
    """Hold a stratified calibration part out of a fine-tune split.

    The model is fine-tuned on ``fit`` and the probability cut-off
    (:func:`daily_mlops.ml.metrics.choose_decision_threshold`) is chosen on
    ``calibration``, rows the model was not fitted on: choosing it on the
    rows it was just fine-tuned on makes the cut-off, and the F1 it promises,
    optimistic. One stratified ``sklearn.model_selection.train_test_split``.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Class labels of the fine-tune split.
    seed : int
        ``random_state``; the same seed gives the same split.
    fraction : float in (0, 1), default 0.20
        Share of rows in the calibration part.

    Returns
    -------
    dict of str to ndarray of int64
        ``{"fit", "calibration"}``: sorted positions into ``y``, disjoint, together covering ``0..n_rows-1``.

    Raises
    ------
    ConfigError
        When ``fraction`` is not in (0, 1).
    SchemaError
        When a class has too few rows to be stratified into both parts.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"calibration fraction {fraction!r} must be in (0, 1), e.g. 0.20")
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise SchemaError(f"labels must have shape (n_rows,), got {labels.shape}")
    indices = np.arange(labels.shape[0], dtype=np.int64)
    try:
        fit, calibration = train_test_split(indices, test_size=float(fraction), random_state=seed, shuffle=True,
                                            stratify=labels)
    except ValueError as exc:
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        raise SchemaError(
            f"cannot hold a stratified {fraction:.0%} calibration part out of {labels.shape[0]} fine-tune rows "
            f"with class counts {counts} ({exc}); use more rows (MLOPS_DAILY_ROWS)"
        ) from exc
    return {"fit": np.sort(fit).astype(np.int64), "calibration": np.sort(calibration).astype(np.int64)}
