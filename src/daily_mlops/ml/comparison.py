"""Paired comparisons of two models on the same rows, with their noise: a bootstrap interval of the difference.

Two candidates (a challenger and its champion) scored on the same rows are
compared *paired*: each bootstrap resample draws row indices once and scores
both models on those rows, so the interval reflects the noise of the
difference, which is much smaller than the noise of either score when the
models agree on most rows. ``scipy.stats.bootstrap(..., paired=True)``
(Efron & Tibshirani, 1993, "An Introduction to the Bootstrap", ch. 14:
the BCa interval), vectorised over resamples. Pure: arrays in, plain numbers out.

Metrics: ``f1`` (positive class, from labels predicted at each model's own
decision threshold) and ``roc_auc`` (from scores, Mann-Whitney U form:
``(sum of positive ranks - n1 (n1 + 1) / 2) / (n1 n0)``, ties averaged, as
``sklearn.metrics.roc_auc_score``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_METHOD", "CONFIDENCE_LEVEL", "N_RESAMPLES", "paired_difference"]

#: Resamples of every paired bootstrap (Efron & Tibshirani suggest 1,000 or more for BCa intervals).
N_RESAMPLES = 1000
#: Two-sided confidence level of every interval.
CONFIDENCE_LEVEL = 0.95
#: What the records name as the method.
BOOTSTRAP_METHOD = "paired bootstrap over rows (scipy.stats.bootstrap, BCa)"


def _f1(y: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    tp = np.sum(y * pred, axis=axis)
    fp = np.sum((1 - y) * pred, axis=axis)
    fn = np.sum(y * (1 - pred), axis=axis)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp), dtype=np.float64), where=denominator > 0)


def _roc_auc(y: np.ndarray, score: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import rankdata

    ranks = rankdata(score, axis=axis)
    n1 = np.sum(y, axis=axis)
    n0 = np.shape(y)[axis] - n1
    u = np.sum(ranks * y, axis=axis) - n1 * (n1 + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return u / (n1 * n0)


_METRICS = {"f1": _f1, "roc_auc": _roc_auc}


def paired_difference(
    y_true: Any, challenger: Any, champion: Any, *, metric: str, seed: int, n_resamples: int = N_RESAMPLES,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> dict[str, Any]:
    """``metric(challenger) - metric(champion)`` on the same rows, with a paired bootstrap interval.

    Parameters
    ----------
    y_true : array-like of int of shape (n_rows,)
        Labels 0/1.
    challenger, champion : array-like of shape (n_rows,)
        For ``metric="f1"``: each model's predicted labels (0/1, at its own
        decision threshold). For ``"roc_auc"``: each model's scores.
    metric : {"f1", "roc_auc"}
    seed : int
        ``random_state`` of the resampling (the same seed gives the same interval).
    n_resamples : int, default :data:`N_RESAMPLES`
    confidence_level : float, default :data:`CONFIDENCE_LEVEL`

    Returns
    -------
    dict
        ``metric``, ``challenger`` and ``champion`` (the two scores), ``delta``
        (their difference), ``interval`` ``[low, high]``, ``confidence_level``,
        ``method`` (:data:`BOOTSTRAP_METHOD`; ``percentile`` when every resample
        gives the same difference, e.g. two models that rank every row alike,
        where BCa is undefined), ``n_resamples``, ``n_rows``. Plain Python numbers.

    Raises
    ------
    ValueError
        For an unknown ``metric``, arrays of different lengths, or fewer than
        two rows (or, for ``roc_auc``, a single class).
    """
    from scipy.stats import bootstrap

    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {sorted(_METRICS)}")
    y = np.asarray(y_true, dtype=np.float64)
    a = np.asarray(challenger, dtype=np.float64)
    b = np.asarray(champion, dtype=np.float64)
    if not (y.ndim == a.ndim == b.ndim == 1 and y.shape == a.shape == b.shape):
        raise ValueError(f"y_true, challenger and champion must be 1-D of one length, got {y.shape}, {a.shape}, "
                         f"{b.shape}")
    if y.shape[0] < 2 or (metric == "roc_auc" and np.unique(y).size < 2):
        raise ValueError(f"a paired {metric} comparison needs at least two rows and both classes; got "
                         f"{y.shape[0]} rows")
    score = _METRICS[metric]

    def statistic(yy: np.ndarray, aa: np.ndarray, bb: np.ndarray, axis: int = -1) -> np.ndarray:
        return score(yy, aa, axis) - score(yy, bb, axis)

    delta = float(statistic(y, a, b))
    result = {"metric": metric, "challenger": float(score(y, a)), "champion": float(score(y, b)), "delta": delta,
              "confidence_level": float(confidence_level), "n_resamples": int(n_resamples), "n_rows": int(y.shape[0])}
    if np.array_equal(a, b) or (metric == "roc_auc" and np.array_equal(np.argsort(a, kind="stable"),
                                                                         np.argsort(b, kind="stable"))):
        return {**result, "interval": [delta, delta], "method": "identical on every row (no resampling needed)"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled below
        res = bootstrap((y, a, b), statistic, paired=True, vectorized=True, n_resamples=int(n_resamples),
                        confidence_level=float(confidence_level), method="BCa", random_state=int(seed),
                        batch=250)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        method = BOOTSTRAP_METHOD
        if not (np.isfinite(low) and np.isfinite(high)):
            res = bootstrap((y, a, b), statistic, paired=True, vectorized=True, n_resamples=int(n_resamples),
                            confidence_level=float(confidence_level), method="percentile",
                            random_state=int(seed), batch=250)
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
            method = "paired bootstrap over rows (scipy.stats.bootstrap, percentile)"
    return {**result, "interval": [low, high], "method": method}
