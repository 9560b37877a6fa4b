"""Alerts: the ``alerts`` collection.

One alert per (logical date, alert type); a rerun of the same day replaces it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops.storage.events import utcnow

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = ["MODEL_PERFORMANCE_FAILURE", "open_alert", "raise_performance_alert", "recent_alerts", "resolve_alerts"]

MODEL_PERFORMANCE_FAILURE = "MODEL_PERFORMANCE_FAILURE"


def raise_performance_alert(
    db: Database, *, logical_date: dt.date, f1_score: float, f1_threshold: float, retrain_attempts: int,
    model_versions_tried: list[int], dag_id: str | None = None, run_id: str | None = None,
    f1_threshold_note: str | None = None,
    drift: str | None = None, candidates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write (upsert) a ``MODEL_PERFORMANCE_FAILURE`` alert of severity ``CRITICAL``; return it.

    Parameters
    ----------
    f1_score : float
        Best F1 (positive class, in [0, 1]) reached by any version tried that day.
    retrain_attempts : int
        Fine-tuning attempts made (0 to 3); also stored as ``retry_attempts``, the original design's field name.
    f1_threshold_note : str, optional
        Where the threshold came from, shown after it (e.g. ``auto: bootstrap F1 0.4821 - f1_tolerance 0.05``).
    drift : str, optional
        One line on the day's drift (:func:`daily_mlops.loop.quality.day_drift_summary`), appended to
        the message and stored as ``drift``.
    candidates : list of dict, optional
        Per version tried: ``model_version``, ``lineage_kind``, ``f1`` (validation), ``champion_delta_interval``
        (paired 95% interval of the F1 gain over its baseline), ``real_roc_auc``, ``real_delta_interval``, ``passed``.
    """
    note = f" ({f1_threshold_note})" if f1_threshold_note else ""
    relation = (f"< {f1_threshold:.4f}{note}" if f1_score < f1_threshold else
                f"reached {f1_threshold:.4f}{note} but no candidate beat its baseline beyond the noise "
                f"(paired 95% interval above min_improvement) and passed the real-holdout guard")
    message = (
        f"Model performance below threshold on {logical_date.isoformat()}: best validation F1 {f1_score:.4f} {relation}"
        f" after {retrain_attempts} retraining attempt(s); versions tried "
        f"{', '.join(str(v) for v in model_versions_tried)}. The deployed model was left unchanged."
        + (f" Data: {drift}." if drift else "")
    )
    doc = {
        "alert_type": MODEL_PERFORMANCE_FAILURE,
        "severity": "CRITICAL",
        "f1_score": float(f1_score),
        "f1_threshold": float(f1_threshold),
        "f1_threshold_note": f1_threshold_note,
        "retrain_attempts": int(retrain_attempts),
        "retry_attempts": int(retrain_attempts),
        "candidates": list(candidates or []),
        "message": message,
        "timestamp": utcnow(),
        "logical_date": logical_date.isoformat(),
        "model_versions_tried": [int(v) for v in model_versions_tried],
        "dag_id": dag_id,
        "run_id": run_id,
        "status": "open",
        "drift": drift,
    }
    key = {"logical_date": doc["logical_date"], "alert_type": MODEL_PERFORMANCE_FAILURE}
    db["alerts"].replace_one(key, doc, upsert=True)
    doc.pop("_id", None)
    return doc


def resolve_alerts(db: Database, *, logical_date: dt.date, resolution: str) -> int:
    """Mark the open alerts of ``logical_date`` resolved (a rerun of that day passed); return how many.

    The alert documents are kept, with ``status: "resolved"``, ``resolution`` and ``resolved_at``.
    """
    result = db["alerts"].update_many(
        {"logical_date": logical_date.isoformat(), "status": "open"},
        {"$set": {"status": "resolved", "resolution": resolution, "resolved_at": utcnow()}},
    )
    return int(result.modified_count)


def open_alert(db: Database, logical_date: dt.date) -> dict[str, Any] | None:
    """The open alert of ``logical_date``, or ``None``."""
    return db["alerts"].find_one({"logical_date": logical_date.isoformat(), "status": "open"}, {"_id": 0})


def recent_alerts(db: Database, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest alerts, newest first."""
    return list(db["alerts"].find({}, {"_id": 0}).sort("timestamp", -1).limit(limit))
