"""Binary classification metrics: arrays in, plain Python numbers out.

Pure functions over NumPy arrays, computed with scikit-learn
(https://scikit-learn.org/stable/modules/model_evaluation.html). Every value
returned is a built-in ``float``/``int``/``list``/``None`` (never a NumPy
scalar), so the result goes into MongoDB, an XCom or JSON as is. The positive
class is label ``1`` (a defaulting borrower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

__all__ = ["classification_metrics", "choose_decision_threshold"]

#: Decision thresholds are kept strictly inside (0, 1).
_THRESHOLD_EPSILON = 1e-6


def _validate(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_true as int64, y_prob as float64)`` or raise ``ValueError``."""
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_true.ndim != 1 or y_prob.ndim != 1:
        raise ValueError(
            f"y_true and y_prob must be 1-D arrays, got shapes {y_true.shape} and {y_prob.shape}"
        )
    if y_true.shape[0] != y_prob.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} labels but y_prob has {y_prob.shape[0]} probabilities; "
            "pass one probability per label"
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_prob are empty; metrics need at least one sample")
    if not np.isin(y_true, (0, 1)).all():
        found = np.unique(y_true[~np.isin(y_true, (0, 1))])[:5].tolist()
        raise ValueError(f"y_true must hold binary labels 0/1 (1 = positive), found {found}")
    if not np.isfinite(y_prob).all() or (y_prob < 0).any() or (y_prob > 1).any():
        bad = y_prob[~(np.isfinite(y_prob) & (y_prob >= 0) & (y_prob <= 1))][:5].tolist()
        raise ValueError(
            f"y_prob must hold probabilities in [0, 1], found {bad}; pass softmax/sigmoid outputs, not logits"
        )
    return y_true.astype(np.int64), y_prob


def classification_metrics(y_true: Any, y_prob: Any, *, decision_threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC-AUC and the confusion matrix at a threshold.

    A row is predicted positive when ``y_prob >= decision_threshold``.

    Parameters
    ----------
    y_true : array-like of int of shape (n_samples,)
        True labels, 0 or 1 (1 = positive class).
    y_prob : array-like of float of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    decision_threshold : float, default 0.5
        Decision threshold in ``[0, 1]`` (see :func:`choose_decision_threshold`).

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1`` (positive class, 0.0
        when undefined, scikit-learn ``zero_division=0``), ``roc_auc`` (float,
        or ``None`` when ``y_true`` holds a single class), ``confusion_matrix``
        ``[[tn, fp], [fn, tp]]`` (ints, rows = truth), ``n_samples`` (int),
        ``positive_rate`` (fraction of true labels equal to 1),
        ``predicted_positive_rate`` (fraction predicted 1) and ``decision_threshold``.
        All values are plain Python types.

    Raises
    ------
    ValueError
        When the arrays are not 1-D, differ in length, are empty, ``y_true``
        is not 0/1, a probability is outside ``[0, 1]`` or NaN, or the
        threshold is outside ``[0, 1]``.
    """
    y_true, y_prob = _validate(y_true, y_prob)
    threshold = float(decision_threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"decision_threshold must be in [0, 1], got {threshold}")
    y_pred = (y_prob >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())
    roc_auc = float(roc_auc_score(y_true, y_prob)) if np.unique(y_true).size == 2 else None
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "roc_auc": roc_auc,
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n_samples": int(y_true.shape[0]),
        "positive_rate": float(y_true.mean()),
        "predicted_positive_rate": float(y_pred.mean()),
        "decision_threshold": threshold,
    }


def choose_decision_threshold(y_true: Any, y_prob: Any) -> float:
    """Probability cut-off that maximises F1 of the positive class.

    Candidates are the distinct scores of ``precision_recall_curve``
    (scikit-learn); the one with the highest F1 wins, ties going to the
    lowest threshold. Choose it on the fine-tuning (validation) split, never
    on the test split, or the reported F1 is optimistic.

    Parameters
    ----------
    y_true : array-like of int of shape (n_samples,)
        True labels, 0 or 1.
    y_prob : array-like of float of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.

    Returns
    -------
    float
        Threshold in the open interval ``(0, 1)`` (clipped by 1e-6 from the
        ends), for use as ``y_prob >= threshold``. ``0.5`` when ``y_true``
        holds a single class, where F1 cannot be traded off.

    Raises
    ------
    ValueError
        As :func:`classification_metrics` for invalid inputs.
    """
    y_true, y_prob = _validate(y_true, y_prob)
    if np.unique(y_true).size < 2:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y_true, y_prob, pos_label=1)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = float(thresholds[int(np.argmax(f1))])
    return float(min(max(best, _THRESHOLD_EPSILON), 1.0 - _THRESHOLD_EPSILON))
