"""Read-only queries behind ``daily-mlops report``, ``daily-mlops models card`` and ``daily-mlops explain``.

Everything the report, the model card and a day's story show is read here,
in a few queries, and handed on as plain documents (no ``_id``); the figures
and the Markdown are built from them by :mod:`daily_mlops.reporting`, the
story by :mod:`daily_mlops.loop.explain`, which never touch MongoDB.
Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry, preprocessor_name, synthesizer_name

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = ["load_day_records", "load_model_card_data", "load_report_data", "recent_batch_checks", "report_days"]

#: Registry fields never needed by a report (GridFS references, per-artifact bookkeeping).
_NO_ARTIFACTS = {"_id": 0, "artifacts": 0}
#: processing_metadata fields a report does not show (the raw file reference).
_NO_RAW_FILE = {"_id": 0, "raw_file": 0}
#: The fields of a preprocessor or synthesizer version a model card names.
_SUMMARY = {"_id": 0, "model_name": 1, "model_version": 1, "sha256": 1, "created_at": 1, "trained_on": 1,
            "hyperparameters": 1, "n_reference_rows": 1, "fit_seed": 1, "reference_format": 1}
#: processing_metadata fields a day's story tells: the batch, the gate's verdict, drift in brief, fidelity.
_BATCH_STORY = {"_id": 0, "batch_id": 1, "logical_date": 1, "n_rows": 1, "status": 1, "drift_mode": 1,
                "quality.status": 1, "quality.message": 1, "quality.worst": 1, "quality.failures": 1,
                "drift.score": 1, "drift.min": 1, "drift.worst": 1, "drift.param": 1, "drift.positive_rate": 1,
                "drift.reference_positive_rate": 1, "fidelity": 1}
#: Registry fields a day's story tells of a version: what it is and why its status moved.
_VERSION_STORY = {"_id": 0, "model_name": 1, "model_version": 1, "status": 1, "status_history": 1, "lineage_kind": 1,
                  "parent_version": 1, "logical_date": 1, "attempt": 1}
#: deployment_events statuses that change or confirm the version in place (a reviewer's rejection does not).
_IN_PLACE_STATUSES = ["deployed", "already_deployed", "superseded"]


def report_days(db: Database, *, days: int | None) -> list[str]:
    """The last ``days`` logical dates the loop ran (``YYYY-MM-DD``, oldest first).

    A logical date counts when it has a daily batch (``processing_metadata``)
    or an evaluation (``performance_metrics``). ``days=None`` returns all of them.
    """
    seen = set(db["processing_metadata"].distinct("logical_date"))
    seen |= set(db["performance_metrics"].distinct("logical_date"))
    ordered = sorted(str(day) for day in seen if day)
    return ordered[-days:] if days else ordered


def load_report_data(db: Database, *, days: int | None, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """Everything :func:`daily_mlops.reporting.build_report_html` needs, for the last ``days`` logical dates.

    Returns
    -------
    dict
        ``days`` (logical dates, oldest first); ``evaluations``
        (``performance_metrics`` of those days, by date then attempt);
        ``passed`` (the day-level ``evaluation_passed`` events); ``alerts``;
        ``deployments`` (every ``deployment_events`` document up to the last
        day, oldest first: earlier ones tell which version was in place when
        the window starts); ``processing`` (``processing_metadata`` without the
        raw file reference); ``versions`` (every registry document of
        ``model_name`` without artifact references, oldest first) and
        ``current`` (the deployed version, else the champion; ``None`` before
        ``daily-mlops bootstrap``).
    """
    from daily_mlops.errors import NotFoundError

    window = report_days(db, days=days)
    in_window = {"logical_date": {"$in": window}}
    deployments: list[dict[str, Any]] = []
    if window:
        deployments = list(db["deployment_events"].find({"logical_date": {"$lte": window[-1]}}, {"_id": 0})
                           .sort([("timestamp", 1)]))
    try:
        current = ModelRegistry(db).champion(model_name)
        current.pop("artifacts", None)
    except NotFoundError:
        current = None
    return {
        "days": window,
        "evaluations": list(db["performance_metrics"].find({**in_window, "model_name": model_name}, {"_id": 0})
                            .sort([("logical_date", 1), ("attempt", 1)])),
        "passed": list(db["evaluation_events"].find(
            {**in_window, "event_type": "evaluation_passed", "model_version": None}, {"_id": 0})),
        "alerts": list(db["alerts"].find(in_window, {"_id": 0}).sort([("logical_date", 1)])),
        "deployments": deployments,
        "processing": list(db["processing_metadata"].find(in_window, _NO_RAW_FILE).sort([("logical_date", 1)])),
        "versions": list(db["model_metadata"].find({"model_name": model_name}, _NO_ARTIFACTS)
                         .sort([("model_version", 1)])),
        "current": current,
    }


def load_model_card_data(db: Database, model_version: int, *, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """The documents a model card of ``model_version`` is written from.

    Returns
    -------
    dict
        ``model`` (its registry document without artifact references);
        ``lineage`` (registry documents of its ancestors, root first);
        ``preprocessor`` and ``synthesizer`` (their registry documents, or
        ``None``); ``batches`` (``processing_metadata`` of every batch it was
        trained or evaluated on, by batch id); ``training_events`` (its
        pretraining / fine-tuning / retraining runs); ``evaluations`` (its
        ``performance_metrics``, by logical date) and ``deployments`` (its
        ``deployment_events``, oldest first).

    Raises
    ------
    NotFoundError
        When ``model_version`` is not in the registry (the message lists the versions that are).
    """
    registry = ModelRegistry(db)
    model = registry.get(model_name, model_version)
    model.pop("artifacts", None)
    lineage = list(db["model_metadata"].find(
        {"model_name": model_name, "model_version": {"$in": [int(v) for v in model.get("lineage", [])]}},
        _NO_ARTIFACTS).sort([("model_version", 1)]))

    def registered(name: str, version: Any) -> dict[str, Any] | None:
        if version is None:
            return None
        return db["model_metadata"].find_one({"model_name": name, "model_version": int(version)}, _SUMMARY)

    batch_ids = list(dict.fromkeys([*model.get("trained_on", []), *model.get("evaluated_on", [])]))
    key = {"model_name": model_name, "model_version": int(model_version)}
    return {
        "model": model,
        "lineage": lineage,
        "preprocessor": registered(preprocessor_name(model_name), model.get("preprocessor_version")),
        "synthesizer": registered(synthesizer_name(model_name), model.get("synthesizer_version")),
        "batches": {doc["batch_id"]: doc for doc in db["processing_metadata"].find(
            {"batch_id": {"$in": batch_ids}}, _NO_RAW_FILE)},
        "training_events": list(db["training_events"].find(key, {"_id": 0}).sort([("timestamp", 1)])),
        "evaluations": list(db["performance_metrics"].find(key, {"_id": 0}).sort([("logical_date", 1)])),
        "deployments": list(db["deployment_events"].find(key, {"_id": 0})
                            .sort([("timestamp", 1)])),
    }


def recent_batch_checks(db: Database, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest daily batches' gate and drift figures, newest logical date first.

    Each is a ``processing_metadata`` document reduced to ``logical_date``,
    ``status``, ``drift_mode``, ``quality`` (status, message, worst), ``drift``
    and ``fidelity.evaluation_gap`` (when recorded).
    """
    fields = {"_id": 0, "logical_date": 1, "status": 1, "drift_mode": 1, "quality.status": 1, "quality.message": 1,
              "quality.worst": 1, "drift": 1, "fidelity.evaluation_gap": 1}
    return list(db["processing_metadata"].find({}, fields).sort("logical_date", -1).limit(int(limit)))


def load_day_records(db: Database, logical_date: dt.date, *, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """What the DAGs recorded for one logical date, for :func:`daily_mlops.loop.explain.explain_day`.

    Returns
    -------
    dict
        ``logical_date`` (``YYYY-MM-DD``); ``batch`` (its ``processing_metadata``
        reduced to the batch, the gate's verdict, drift in brief and fidelity, or
        ``None``); ``run_id`` and ``evaluations`` (the ``performance_metrics`` of
        the day's newest evaluation DAG run of ``model_name``, by attempt);
        ``passed`` (the day-level ``evaluation_passed`` event, or ``None``);
        ``alert`` (the open alert, or ``None``); ``deployments`` (the day's
        ``deployment_events``: DAG deployments, rollbacks, a reviewer's
        rejection; oldest first); ``in_place`` (the newest deployment event of
        this date or an earlier one that changed or confirmed the version in
        place, or ``None``) and ``versions`` (registry documents of the versions
        evaluated or deployed that day, by version, reduced to status, status
        history and lineage).
    """
    from daily_mlops.storage.alerts import open_alert
    from daily_mlops.storage.events import evaluations_of_day, latest_evaluation_run, passed_evaluation

    day = logical_date.isoformat()
    run_id = latest_evaluation_run(db, logical_date)
    evaluations = [e for e in evaluations_of_day(db, logical_date, run_id=run_id) if e.get("model_name") == model_name]
    family = {"model_name": model_name}
    deployments = list(db["deployment_events"].find({"logical_date": day, **family}, {"_id": 0})
                       .sort([("timestamp", 1)]))
    in_place = db["deployment_events"].find_one(
        {"logical_date": {"$lte": day}, "status": {"$in": _IN_PLACE_STATUSES}, **family}, {"_id": 0},
        sort=[("logical_date", -1), ("timestamp", -1)])
    numbers = sorted({int(d["model_version"]) for d in [*evaluations, *deployments]
                      if d.get("model_version") is not None})
    versions = list(db["model_metadata"].find({**family, "model_version": {"$in": numbers}}, _VERSION_STORY)
                    .sort([("model_version", 1)]))
    return {
        "logical_date": day,
        "batch": db["processing_metadata"].find_one({"logical_date": day}, _BATCH_STORY),
        "run_id": run_id,
        "evaluations": evaluations,
        "passed": passed_evaluation(db, logical_date),
        "alert": open_alert(db, logical_date),
        "deployments": deployments,
        "in_place": in_place,
        "versions": versions,
    }
