"""Stratified splits of a labelled daily batch, one part per role (scikit-learn).

Which rows do what (every logical date, and the bootstrap batch):

========== ======== ====================================================================
split      fraction role
========== ======== ====================================================================
pretrain   0.50     supervised fine-tuning (bootstrap and every retraining attempt, with ``finetune``:
                    :data:`FIT_SPLITS`); contrastive pretraining when it is on (``MLOPS_PRETRAIN_EPOCHS``)
finetune   0.15     supervised fine-tuning (bootstrap and every retraining attempt)
calibration 0.10    the decision threshold and the Platt calibrator of every candidate of
                    the day (one part per day, shared by every candidate, so the champion
                    and each challenger get a threshold chosen on the same rows)
validation 0.15     every decision: the F1 floor, the paired champion/challenger comparison,
                    the parent of the next attempt (rows nothing was fitted or calibrated on)
test       0.10     reporting only: the F1 and ROC-AUC the registry, ``status`` and the report
                    show; nothing is chosen on it, so it stays an unbiased estimate
========== ======== ====================================================================

The real holdout (30% of the reference rows, never synthesised from) is a sixth, separate set:
each candidate's real-row score and the non-inferiority guard.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from daily_mlops.errors import ConfigError, SchemaError

__all__ = ["FIT_SPLITS", "SPLIT_FRACTIONS", "split_indices"]

#: The day's parts and their share of the batch's rows (see the module docstring for each role).
SPLIT_FRACTIONS: dict[str, float] = {
    "pretrain": 0.50, "finetune": 0.15, "calibration": 0.10, "validation": 0.15, "test": 0.10,
}


#: The splits supervised fine-tuning trains on. Measured with ``scripts/training_ablation.py`` (docs/measurements.md,
#: "Training ablation"): fine-tuning version 1 for 3 epochs on pretrain + finetune (6,500 rows) instead of the
#: finetune split alone (1,500) raised ROC-AUC on an independent 15,000-row split by +0.019 (paired 95% intervals
#: above 0 on each of 3 days) and left the real holdout unchanged (+0.001).
FIT_SPLITS = ("pretrain", "finetune")


def _checked_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    try:
        parts = {str(name): float(f) for name, f in dict(fractions).items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"split fractions {fractions!r} must map split names to numbers") from exc
    if (len(parts) < 2 or any(not (0.0 < f < 1.0) for f in parts.values())
            or not math.isclose(sum(parts.values()), 1.0, abs_tol=1e-6)):
        raise ConfigError(f"split fractions {fractions!r} must be two or more numbers in (0, 1) summing to 1, "
                          f"e.g. {SPLIT_FRACTIONS}")
    return parts


def split_indices(
    y: np.ndarray, *, seed: int, fractions: Mapping[str, float] = SPLIT_FRACTIONS,
) -> dict[str, np.ndarray]:
    """Split row indices into stratified, disjoint parts (by default :data:`SPLIT_FRACTIONS`).

    Successive stratified ``sklearn.model_selection.train_test_split`` calls,
    each taking the next part off what is left, all with ``random_state=seed``.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Class labels to stratify on.
    seed : int
        ``random_state`` of every split; the same seed gives the same split.
    fractions : mapping of str to float in (0, 1), default :data:`SPLIT_FRACTIONS`
        Share of rows per part, in order; they must sum to 1.

    Returns
    -------
    dict of str to ndarray of int64
        One entry per part, in the order of ``fractions``: sorted row indices,
        disjoint, together covering ``0..n_rows-1``.

    Raises
    ------
    ConfigError
        If ``fractions`` are not two or more positive numbers summing to 1.
    SchemaError
        If ``y`` is not one-dimensional, or a class has too few rows to be
        stratified into every part (the fix: more rows, ``MLOPS_DAILY_ROWS``).
    """
    from sklearn.model_selection import train_test_split

    parts = _checked_fractions(fractions)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise SchemaError(f"labels must have shape (n_rows,), got {labels.shape}")
    rest = np.arange(labels.shape[0], dtype=np.int64)
    names = list(parts)
    left = 1.0
    out: dict[str, np.ndarray] = {}
    try:
        for name in names[:-1]:
            share = min(parts[name] / left, 1.0)
            taken, rest = train_test_split(rest, train_size=share, random_state=seed, shuffle=True,
                                           stratify=labels[rest])
            out[name] = np.sort(taken).astype(np.int64)
            left -= parts[name]
    except ValueError as exc:
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        raise SchemaError(
            f"cannot split {labels.shape[0]} rows with class counts {counts} into stratified parts "
            f"{parts} ({exc}); use more rows per class (MLOPS_DAILY_ROWS)"
        ) from exc
    out[names[-1]] = np.sort(rest).astype(np.int64)
    return out
