"""Event and metric records: ``performance_metrics``, ``training_events``,
``evaluation_events`` and ``notifications``.

Every write is an upsert keyed by the logical date (and model version where
one applies), so a rerun of the same day converges to the same documents
(HOUSE_STYLE rule 5). ``timestamp`` is when the record was last written (UTC);
keys never use it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = ["record_evaluation_event", "record_notification", "record_performance", "record_training_event", "utcnow"]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (for ``timestamp`` fields only)."""
    return dt.datetime.now(dt.timezone.utc)


def _upsert(db: "Database", collection: str, key: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    doc = {**fields, **key, "timestamp": utcnow()}
    db[collection].replace_one(key, doc, upsert=True)
    return doc


def record_performance(
    db: "Database", *, logical_date: dt.date, model_name: str, model_version: int, metrics: dict[str, Any],
    attempt: int, f1_threshold: float, batch_id: str, split: str = "test", run_id: str | None = None,
) -> dict[str, Any]:
    """Upsert the evaluation of one model version on one day's ``split``.

    ``metrics`` are plain numbers from :func:`daily_mlops._metrics.classification_metrics`;
    ``run_id`` is the Airflow DAG run that made the evaluation.
    """
    return _upsert(
        db, "performance_metrics",
        {"logical_date": logical_date.isoformat(), "model_name": model_name, "model_version": int(model_version)},
        {
            **metrics, "attempt": int(attempt), "f1_threshold": float(f1_threshold),
            "passed": bool(metrics["f1"] >= f1_threshold), "batch_id": batch_id, "split": split,
            "run_id": run_id,
        },
    )


def record_evaluation_event(
    db: "Database", event_type: str, *, logical_date: dt.date, model_version: int | None, **fields: Any
) -> dict[str, Any]:
    """Upsert an ``evaluation_events`` document keyed by (logical date, event type, model version).

    Event types: ``model_evaluated``, ``evaluation_passed``, ``alert_raised``.
    """
    return _upsert(
        db, "evaluation_events",
        {"logical_date": logical_date.isoformat(), "event_type": event_type, "model_version": model_version},
        fields,
    )


def record_training_event(
    db: "Database", *, model_name: str, model_version: int, stage: str, **fields: Any
) -> dict[str, Any]:
    """Upsert a ``training_events`` document keyed by (model, version, stage).

    Stages: ``pretrain`` (contrastive), ``finetune`` (supervised), ``retrain``.
    """
    return _upsert(
        db, "training_events",
        {"model_name": model_name, "model_version": int(model_version), "stage": stage},
        {"event_type": f"{stage}_completed", **fields},
    )


def record_notification(
    db: "Database", kind: str, *, logical_date: dt.date | str, message: str, **fields: Any
) -> dict[str, Any]:
    """Upsert a ``notifications`` document keyed by (logical date, kind).

    Kinds: ``evaluation_results``, ``deployment_complete``, ``model_performance_failure``.
    """
    day = logical_date if isinstance(logical_date, str) else logical_date.isoformat()
    return _upsert(db, "notifications", {"logical_date": day, "kind": kind}, {"message": message, **fields})
