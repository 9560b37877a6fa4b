"""The tasks of ``model_deployment_pipeline``, and the one way to deploy and load a deployed model.

:func:`deploy_version` is the single deployment mechanism (the DAG's
``deploy_model`` task calls it): it reads the version's verified artifacts
through the registry, writes them with
:func:`daily_mlops.storage.deployment_dir.write_deployment`, moves registry
statuses and records a ``deployment_events`` document.
:func:`load_deployed` is the serving side (``daily-mlops predict``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop._common import with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database

    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings
    from daily_mlops.storage.registry import ModelRegistry

__all__ = [
    "deploy_model", "deploy_version", "load_deployed", "model_ready", "notify_deployment_complete", "record_rejection",
]


@with_database
def model_ready(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any] | None:
    """The day's approved version when it exists and its artifacts are intact, else ``None``.

    Returns
    -------
    dict or None
        ``model_version``, ``sha256`` (of the weights), ``status``, and the evaluation that approved it:
        ``f1`` and ``f1_threshold`` (shown to a reviewer when approval is required).

    Raises
    ------
    MLOpsError
        When the day's approved version has since been rejected or retired.
    IntegrityError
        When the approved version's artifact is missing or its sha256 differs
        (the sensor fails instead of waiting).
    """
    from daily_mlops.storage.events import passed_evaluation
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    day = logical_day(logical_date)
    event = passed_evaluation(db, day)
    if event is None:
        return None
    registry = ModelRegistry(db)
    doc = registry.get(MODEL_NAME, event["approved_version"])
    if doc["status"] not in ("approved", "deployed"):
        raise MLOpsError(
            f"{MODEL_NAME} version {doc['model_version']} was approved for {day} but is now {doc['status']!r}; "
            "rerun model_evaluation_pipeline for that logical date"
        )
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    return {"model_version": int(doc["model_version"]), "sha256": doc["sha256"]["weights"], "status": doc["status"],
            "f1": event.get("f1"), "f1_threshold": event.get("f1_threshold")}


def deploy_version(
    registry: "ModelRegistry", model_name: str, model_version: int, *, directory: Path, logical_date: dt.date,
) -> dict[str, Any]:
    """Deploy ``model_version`` to ``directory`` and record a ``deployment_events`` document; return it.

    Deploying the version already deployed there is a no-op, recorded with
    ``status: "already_deployed"``. The previously deployed version is retired.

    Raises
    ------
    MLOpsError
        When the version is neither approved nor deployed (e.g. candidate, rejected, retired).
    IntegrityError
        When an artifact is missing or its sha256 does not match; nothing is written.
    """
    from daily_mlops.ml.bundle import deployment_config
    from daily_mlops.storage.deployment_dir import WEIGHTS_FILE, deployed_version, write_deployment
    from daily_mlops.storage.events import record_deployment, utcnow
    from daily_mlops.storage.registry import PREPROCESSOR_NAME

    doc = registry.get(model_name, model_version)
    current = deployed_version(directory)
    event: dict[str, Any] = {
        "event_type": "model_deployed",
        "model_id": f"{model_name}:v{model_version}",
        "model_name": model_name,
        "model_version": int(model_version),
        "deployment_path": str(directory / WEIGHTS_FILE),
        "sha256": doc["sha256"]["weights"],
        "logical_date": logical_date.isoformat(),
        "previous_version": current,
    }
    if current == model_version and doc["status"] == "deployed":
        event.update(status="already_deployed", event_type="model_deployment_skipped", timestamp=utcnow())
    else:
        if doc["status"] not in ("approved", "deployed"):
            raise MLOpsError(
                f"{model_name} version {model_version} is {doc['status']!r}; only an approved version can be deployed"
            )
        weights = registry.load_artifact(doc, "weights")
        pre_doc = registry.get(PREPROCESSOR_NAME, doc["preprocessor_version"])
        preprocessor = registry.load_artifact(pre_doc, "preprocessor")
        write_deployment(directory, weights=weights, config=deployment_config(doc, pre_doc, preprocessor),
                         model_version=int(model_version))
        for old in registry.list(model_name):
            if old["status"] == "deployed" and old["model_version"] != model_version:
                registry.set_status(model_name, old["model_version"], "retired", reason=f"replaced by version {model_version}",
                                    logical_date=logical_date.isoformat())
        registry.set_status(model_name, model_version, "deployed", reason="deployed", logical_date=logical_date.isoformat())
        event.update(status="deployed", timestamp=utcnow())
    return record_deployment(registry.db, event)


def load_deployed(directory: Path) -> "ModelBundle":
    """Load the deployed model from ``directory`` (``current_model.pth`` + ``current_model.json``).

    Raises
    ------
    NotFoundError
        When no model is deployed there (run the deployment DAG, or ``daily-mlops demo``).
    IntegrityError
        When ``current_model.pth`` does not hash to the sha256 recorded in the JSON.
    UnsafeArtifactError
        When the weights file carries a pickled object.
    """
    import base64

    from daily_mlops.ml.bundle import assemble
    from daily_mlops.storage.deployment_dir import read_deployment

    config, weights, weights_path = read_deployment(directory)
    return assemble(
        architecture=config["architecture"], weights=weights,
        preprocessor=base64.b64decode(config["preprocessor"]),
        preprocessor_sha256=config["sha256"]["preprocessor"],
        decision_threshold=config["decision_threshold"], model_name=config["model_name"],
        model_version=int(config["model_version"]), source=str(weights_path),
    )


@with_database
def deploy_model(settings: "Settings", *, logical_date: LogicalDate, model_version: int,
                 db: "Database") -> dict[str, Any]:
    """Copy the approved version atomically to ``MLOPS_DEPLOYMENT_DIR`` and record it.

    Returns
    -------
    dict
        ``version``, ``status`` (``deployed`` or ``already_deployed``), ``deployment_path``, ``sha256``.
    """
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    event = deploy_version(ModelRegistry(db), MODEL_NAME, model_version, directory=settings.deployment_path,
                           logical_date=logical_day(logical_date))
    return {k: event[k] for k in ("model_version", "status", "deployment_path", "sha256")}


@with_database
def notify_deployment_complete(
    settings: "Settings", *, logical_date: LogicalDate, deployment: dict[str, Any], db: "Database"
) -> dict[str, Any]:
    """Write the ``deployment_complete`` notification; return its message."""
    from daily_mlops.storage.events import record_notification

    day = logical_day(logical_date)
    verb = "deployed" if deployment["status"] == "deployed" else "was already deployed"
    message = f"{day}: model version {deployment['model_version']} {verb} to {deployment['deployment_path']}"
    record_notification(db, "deployment_complete", logical_date=day, message=message, **deployment)
    return {"message": message}


@with_database
def record_rejection(
    settings: "Settings", *, logical_date: LogicalDate, model_version: int, reviewer: str | None,
    responded_at: dt.datetime | None = None, dag_id: str | None = None, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """A reviewer rejected deploying ``model_version``: record it, deploy nothing.

    Called by the deployment DAG's approval step. Writes one
    ``deployment_events`` document with ``status: "rejected_by_reviewer"``
    (:func:`daily_mlops.storage.events.record_rejected_deployment`); the
    deployed model, its directory and the registry statuses are left alone.

    Returns
    -------
    dict
        The ``deployment_events`` document.
    """
    from daily_mlops.storage.events import record_rejected_deployment
    from daily_mlops.storage.registry import MODEL_NAME

    return record_rejected_deployment(db, logical_date=logical_day(logical_date), model_name=MODEL_NAME,
                                      model_version=model_version, reviewer=reviewer, responded_at=responded_at,
                                      dag_id=dag_id, run_id=run_id)
