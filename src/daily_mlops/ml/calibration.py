"""Probability calibration of a model version's scores: Platt scaling, the Brier score and the ECE.

The network trains with balanced class weights, so its softmax output ranks
rows well but is not a probability of default. Platt scaling (Platt, 1999,
"Probabilistic outputs for support vector machines"; scikit-learn's
``CalibratedClassifierCV(method="sigmoid")``) fits a one-feature logistic
regression on the logit of the score, on rows the network was not fitted on
(the day's ``calibration`` split, :mod:`daily_mlops.ml.splits`). It is strictly
increasing, so it keeps the order of the rows (ROC-AUC is unchanged) and the
F1-best cut-off on calibrated probabilities picks the same rows as on raw scores.

The fitted calibrator is two numbers, stored in the version's registry
document and in the deployment's JSON (never pickled): ``{"method": "platt",
"coef": a, "intercept": b, "n_rows": n}``; :func:`calibrate` applies
``sigmoid(a * logit(score) + b)``. Pure functions, arrays in, plain numbers out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ECE_BINS", "brier_score", "calibrate", "calibration_summary", "expected_calibration_error", "fit_platt"]

#: Bins of the expected calibration error (equal width on [0, 1]; Guo et al., 2017).
ECE_BINS = 10
#: Scores are clipped this far from 0 and 1 before the logit.
_EPS = 1e-6


def _logit(scores: Any) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def fit_platt(y_true: Any, scores: Any) -> dict[str, Any]:
    """Fit Platt scaling of ``scores`` to the labels ``y_true``.

    ``sklearn.linear_model.LogisticRegression`` (lbfgs, no regularisation: ``C=inf``) on the
    single feature ``logit(score)``.

    Parameters
    ----------
    y_true : array-like of int of shape (n_samples,)
        Labels 0/1 of rows the network was not fitted on.
    scores : array-like of float of shape (n_samples,)
        The network's positive-class scores in [0, 1] for those rows.

    Returns
    -------
    dict
        ``method`` (``"platt"``), ``coef``, ``intercept`` (floats), ``n_rows``.

    Raises
    ------
    ValueError
        When the shapes differ, or ``y_true`` holds one class only (nothing to calibrate against).
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y_true).astype(np.int64)
    x = _logit(scores)
    if y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"y_true and scores must be 1-D of one length, got {y.shape} and {x.shape}")
    if np.unique(y).size < 2:
        raise ValueError(f"Platt scaling needs both classes among the {y.shape[0]} calibration rows; "
                         "use more rows (MLOPS_DAILY_ROWS)")
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000).fit(x.reshape(-1, 1), y)
    return {"method": "platt", "coef": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0]),
            "n_rows": int(y.shape[0])}


def calibrate(calibration: dict[str, Any] | None, scores: Any) -> np.ndarray:
    """Calibrated probabilities, shape (n_samples,), float64 in [0, 1].

    ``scores`` are returned unchanged when ``calibration`` is None.

    Raises
    ------
    ValueError
        For a ``method`` other than ``"platt"`` (a record this code does not know).
    """
    raw = np.asarray(scores, dtype=np.float64)
    if not calibration:
        return raw
    if calibration.get("method") != "platt":
        raise ValueError(f"unknown calibration method {calibration.get('method')!r}; expected 'platt'")
    z = float(calibration["coef"]) * _logit(raw) + float(calibration["intercept"])
    return 1.0 / (1.0 + np.exp(-z))


def expected_calibration_error(y_true: Any, prob: Any, *, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: ``sum_b (n_b / n) * |mean(y)_b - mean(p)_b|`` over equal-width bins of ``prob``.

    Guo et al., 2017, "On calibration of modern neural networks", eq. 3, with
    ``n_bins`` bins on [0, 1] (the last bin includes 1). A fraction in [0, 1].
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"y_true and prob must be non-empty 1-D arrays of one length, got {y.shape} and {p.shape}")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=y, minlength=n_bins) - np.bincount(bins, weights=p, minlength=n_bins))
    return float(gap.sum() / y.shape[0]) if counts.sum() else 0.0


def brier_score(y_true: Any, prob: Any) -> float:
    """Mean squared error of the probabilities (``sklearn.metrics.brier_score_loss``), a float in [0, 1]."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(y_true).astype(np.int64), np.asarray(prob, dtype=np.float64)))


def calibration_summary(y_true: Any, scores: Any, calibration: dict[str, Any] | None) -> dict[str, float]:
    """Brier score (:func:`brier_score`) and ECE of ``scores`` before and after ``calibration``.

    Returns
    -------
    dict
        ``brier_before``, ``brier_after``, ``ece_before``, ``ece_after`` (floats), ``n_rows``.
    """
    y = np.asarray(y_true).astype(np.int64)
    raw = np.asarray(scores, dtype=np.float64)
    cal = calibrate(calibration, raw)
    return {"brier_before": brier_score(y, raw), "brier_after": brier_score(y, cal),
            "ece_before": expected_calibration_error(y, raw), "ece_after": expected_calibration_error(y, cal),
            "n_rows": int(y.shape[0])}
