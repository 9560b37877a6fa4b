"""Event and metric records: ``performance_metrics``, ``training_events``,
``evaluation_events``, ``deployment_events`` and ``notifications``.

Every write is an upsert keyed by the logical date (and model version where
one applies), so a rerun of the same day converges to the same documents
(reruns converge). ``timestamp`` is when the record was last written (UTC);
keys never use it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = [
    "evaluations_of_day",
    "latest_evaluation_run",
    "last_deployment_of",
    "latest_deployment",
    "passed_evaluation",
    "recent_deployments",
    "recent_evaluations",
    "record_deployment",
    "record_refused_deployment",
    "record_evaluation_event",
    "record_notification",
    "record_performance",
    "record_rejected_deployment",
    "record_training_event",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (for ``timestamp`` fields only)."""
    return dt.datetime.now(dt.UTC)


def _upsert(db: Database, collection: str, key: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    doc = {**fields, **key, "timestamp": utcnow()}
    db[collection].replace_one(key, doc, upsert=True)
    return doc


def record_performance(
    db: Database, *, logical_date: dt.date, model_name: str, model_version: int, metrics: dict[str, Any],
    attempt: int, f1_threshold: float, batch_id: str, split: str = "test", run_id: str | None = None,
    passed: bool | None = None, **fields: Any,
) -> dict[str, Any]:
    """Upsert the evaluation of one model version on one day's ``split``.

    ``metrics`` are plain numbers from :func:`daily_mlops.ml.metrics.classification_metrics`;
    ``run_id`` is the Airflow DAG run that made the evaluation. ``passed`` defaults to
    ``f1 >= f1_threshold``; a challenger passes its champion comparison too (``fields``:
    ``floor``, ``champion``, ``f1_threshold_mode``, ... from the evaluation task).
    """
    return _upsert(
        db, "performance_metrics",
        {"logical_date": logical_date.isoformat(), "model_name": model_name, "model_version": int(model_version)},
        {
            **metrics, "attempt": int(attempt), "f1_threshold": float(f1_threshold),
            "passed": bool(metrics["f1"] >= f1_threshold) if passed is None else bool(passed), "batch_id": batch_id,
            "split": split, "run_id": run_id, **fields,
        },
    )


def record_evaluation_event(
    db: Database, event_type: str, *, logical_date: dt.date, model_version: int | None, **fields: Any
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
    db: Database, *, model_name: str, model_version: int, stage: str, **fields: Any
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
    db: Database, kind: str, *, logical_date: dt.date | str, message: str, **fields: Any
) -> dict[str, Any]:
    """Upsert a ``notifications`` document keyed by (logical date, kind).

    Kinds: ``evaluation_results``, ``deployment_complete``, ``model_performance_failure``.
    """
    day = logical_date if isinstance(logical_date, str) else logical_date.isoformat()
    return _upsert(db, "notifications", {"logical_date": day, "kind": kind}, {"message": message, **fields})


def record_deployment(db: Database, event: dict[str, Any]) -> dict[str, Any]:
    """Upsert a ``deployment_events`` document keyed by (logical date, version, status); return it."""
    key = {"logical_date": event["logical_date"], "model_version": event["model_version"], "status": event["status"]}
    doc = {**event, "timestamp": event.get("timestamp") or utcnow()}
    db["deployment_events"].replace_one(key, doc, upsert=True)
    doc.pop("_id", None)
    return doc


def record_rejected_deployment(
    db: Database, *, logical_date: dt.date, model_name: str, model_version: int, reviewer: str | None,
    responded_at: dt.datetime | None = None, dag_id: str | None = None, run_id: str | None = None,
) -> dict[str, Any]:
    """Record that a reviewer rejected deploying ``model_version`` for ``logical_date``; return the document.

    A ``deployment_events`` document with ``status: "rejected_by_reviewer"``
    (event type ``model_deployment_rejected``), upserted by
    :func:`record_deployment`'s key (logical date, version, status), so
    rejecting the same day's version again replaces it. Nothing else changes:
    the deployed model and the registry statuses stay as they are.
    """
    return record_deployment(db, {
        "event_type": "model_deployment_rejected",
        "status": "rejected_by_reviewer",
        "model_id": f"{model_name}:v{int(model_version)}",
        "model_name": model_name,
        "model_version": int(model_version),
        "logical_date": logical_date.isoformat(),
        "reviewer": reviewer,
        "responded_at": responded_at,
        "dag_id": dag_id,
        "run_id": run_id,
    })


def record_refused_deployment(
    db: Database, *, logical_date: dt.date, model_name: str, model_version: int, check: str, reason: str,
) -> dict[str, Any]:
    """Record that infra validation refused deploying ``model_version`` for ``logical_date``; return the document.

    A ``deployment_events`` document with ``status: "refused_by_infra_validation"``
    (event type ``model_deployment_refused``), ``check`` (``load``, ``scores`` or
    ``latency``) and ``reason`` (the task's message), upserted by
    :func:`record_deployment`'s key like :func:`record_rejected_deployment`.
    Nothing else changes: the deployed model and the registry statuses stay as they are.
    """
    return record_deployment(db, {
        "event_type": "model_deployment_refused",
        "status": "refused_by_infra_validation",
        "model_id": f"{model_name}:v{int(model_version)}",
        "model_name": model_name,
        "model_version": int(model_version),
        "logical_date": logical_date.isoformat(),
        "check": check,
        "reason": reason,
    })


def evaluations_of_day(db: Database, logical_date: dt.date, *, run_id: str | None = None) -> list[dict[str, Any]]:
    """``performance_metrics`` of ``logical_date`` (of one DAG run when ``run_id`` is given), by attempt."""
    query: dict[str, Any] = {"logical_date": logical_date.isoformat()}
    if run_id is not None:
        query["run_id"] = run_id
    return list(db["performance_metrics"].find(query, {"_id": 0}).sort("attempt", 1))


def latest_evaluation_run(db: Database, logical_date: dt.date) -> str | None:
    """The ``run_id`` of the newest champion evaluation (attempt 0) of ``logical_date``, or ``None``."""
    doc = db["performance_metrics"].find_one({"logical_date": logical_date.isoformat(), "attempt": 0},
                                            sort=[("timestamp", -1)])
    return doc.get("run_id") if doc else None


def passed_evaluation(db: Database, logical_date: dt.date) -> dict[str, Any] | None:
    """The day-level ``evaluation_passed`` event of ``logical_date`` (its approved version), or ``None``."""
    return db["evaluation_events"].find_one(
        {"logical_date": logical_date.isoformat(), "event_type": "evaluation_passed", "model_version": None},
        {"_id": 0},
    )


def latest_deployment(db: Database, logical_date: dt.date) -> dict[str, Any] | None:
    """The newest ``deployment_events`` document of ``logical_date``, or ``None``."""
    return db["deployment_events"].find_one({"logical_date": logical_date.isoformat()}, {"_id": 0},
                                            sort=[("timestamp", -1)])


def last_deployment_of(db: Database, model_name: str, model_version: int) -> dict[str, Any] | None:
    """The newest ``deployment_events`` document that put ``model_version`` of ``model_name`` in place, or ``None``.

    Of status ``deployed`` (a DAG deployment or a rollback); its ``previous_version`` is the version it replaced.
    """
    return db["deployment_events"].find_one(
        {"model_name": model_name, "model_version": int(model_version), "status": "deployed"}, {"_id": 0},
        sort=[("timestamp", -1)],
    )


def recent_evaluations(db: Database, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` latest ``performance_metrics`` documents (newest logical date, last attempt first)."""
    return list(db["performance_metrics"].find({}, {"_id": 0}).sort([("logical_date", -1), ("attempt", -1)])
                .limit(limit))


def recent_deployments(db: Database, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest ``deployment_events`` documents."""
    return list(db["deployment_events"].find({}, {"_id": 0}).sort("timestamp", -1).limit(limit))
