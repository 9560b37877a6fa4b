"""The tasks of ``model_deployment_pipeline``, and the one way to deploy and load a deployed model.

:func:`deploy_version` is the single deployment mechanism (the DAG's
``deploy_model`` task calls it): under the deployment directory's ``flock`` it
writes the version's verified artifacts to ``versions/<n>`` and switches the
``current`` symlink (:func:`daily_mlops.storage.deployment_dir.write_deployment`),
moves registry statuses and records a ``deployment_events`` document, so
concurrent deployments run one after another. A deployment killed after the
switch but before the registry write leaves the directory ahead of the
registry; its retry (same version) finds the version in place and completes the
registry and event writes.
:func:`load_deployed` is the serving side (``daily-mlops predict``): it reads
``current`` once and every file from that one version directory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop._common import log, with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = [
    "deploy_model", "deploy_version", "deployment_payload", "explain_skipped_deployment", "live_version",
    "load_deployed", "model_ready", "notify_deployment_complete", "record_rejection", "stays_deployed",
]


def live_version(db: Database, model_name: str | None = None) -> int | None:
    """The version the registry records as deployed (the one serving), or ``None`` before any deployment.

    ``model_name`` is the model family (default ``tabtransformer``, ``MLOPS_MODEL_NAME``'s default).
    """
    from daily_mlops.errors import NotFoundError
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    try:
        return int(ModelRegistry(db).latest(model_name or MODEL_NAME, statuses=("deployed",))["model_version"])
    except NotFoundError:
        return None


def stays_deployed(version: int | None) -> str:
    """``"the deployed model stays v5"``, or that no version is deployed yet (``version`` None)."""
    return f"the deployed model stays v{version}" if version is not None else "no model version is deployed yet"


@with_database
def explain_skipped_deployment(settings: Settings, *, logical_date: LogicalDate, db: Database) -> str:
    """Why the day's deployment run deploys nothing; logged at INFO and returned.

    Called when the deployment DAG's sensor skips (the day's evaluation
    approved no version), e.g. ``"evaluation for 2026-11-06 ended in an alert
    (MODEL_PERFORMANCE_FAILURE); the deployed model stays v5"``.
    """
    from daily_mlops.storage.alerts import open_alert

    day = logical_day(logical_date)
    alert = open_alert(db, day)
    why = (f"evaluation for {day} ended in an alert ({alert['alert_type']})" if alert
           else f"evaluation for {day} approved no model version")
    message = f"{why}; {stays_deployed(live_version(db, settings.model_name))}"
    log.info(message)
    return message


@with_database
def model_ready(settings: Settings, *, logical_date: LogicalDate, db: Database) -> dict[str, Any] | None:
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
    from daily_mlops.storage.registry import ModelRegistry

    name = settings.model_name
    day = logical_day(logical_date)
    event = passed_evaluation(db, day)
    if event is None:
        log.info("no model version approved for %s yet", day)
        return None
    registry = ModelRegistry(db)
    doc = registry.get(name, event["approved_version"])
    if doc["status"] not in ("approved", "deployed"):
        raise MLOpsError(
            f"{name} version {doc['model_version']} was approved for {day} but is now {doc['status']!r}; "
            "rerun model_evaluation_pipeline for that logical date"
        )
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    log.info("%s v%s approved for %s is ready: artifacts intact, weights sha256 %s", name,
             doc["model_version"], day, doc["sha256"]["weights"][:12])
    return {"model_version": int(doc["model_version"]), "sha256": doc["sha256"]["weights"], "status": doc["status"],
            "f1": event.get("f1"), "f1_threshold": event.get("f1_threshold")}


def _require_deployable(doc: dict[str, Any]) -> None:
    if doc["status"] not in ("approved", "deployed"):
        raise MLOpsError(
            f"{doc['model_name']} version {doc['model_version']} is {doc['status']!r}; "
            "only an approved version can be deployed"
        )


def deployment_payload(registry: ModelRegistry, doc: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The verified weights and the deployment JSON of ``doc``: the bytes a deployment writes.

    Also what infra validation stages and loads (:mod:`daily_mlops.loop.infra_validation`).

    Raises
    ------
    IntegrityError
        When an artifact is missing or its sha256 differs from the recorded one.
    """
    from daily_mlops.ml.bundle import deployment_config
    from daily_mlops.storage.registry import preprocessor_name

    weights = registry.load_artifact(doc, "weights")
    pre_doc = registry.get(preprocessor_name(doc["model_name"]), doc["preprocessor_version"])
    return weights, deployment_config(doc, pre_doc, registry.load_artifact(pre_doc, "preprocessor"))


def _promote(registry: ModelRegistry, model_name: str, model_version: int, logical_date: str, reason: str) -> None:
    """Mark ``model_version`` deployed and retire every other deployed version."""
    for old in registry.list(model_name):
        if old["status"] == "deployed" and old["model_version"] != model_version:
            registry.set_status(model_name, old["model_version"], "retired",
                                reason=f"replaced by version {model_version}", logical_date=logical_date)
    registry.set_status(model_name, model_version, "deployed", reason=reason, logical_date=logical_date)


def deploy_version(
    registry: ModelRegistry, model_name: str, model_version: int, *, directory: Path, logical_date: dt.date,
    file_mode: int = 0o644, keep_versions: int = 5, force_replace: bool = False, reason: str = "deployed",
    event_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deploy ``model_version`` to ``directory`` and record a ``deployment_events`` document; return it.

    One deployer at a time: everything from reading the directory to the
    registry and event writes runs under the directory's ``flock``
    (:func:`daily_mlops.storage.deployment_dir.deployment_lock`), so the
    directory, the registry's ``deployed`` version and the latest event agree
    whichever of two concurrent deployments wins. The outcome is the event's
    ``status``:

    * ``deployed``: ``versions/<n>`` written (or reused), ``current`` switched to
      it, the previously deployed version retired;
    * ``already_deployed``: the version is in place and ``deployed`` already; no
      model file changes (its recorded logical date moves forward if this one is later);
    * ``superseded``: a deployment of another version for a later logical date
      is in place; it is kept (``version_in_place``), nothing is rolled back. If
      that version is still ``approved`` in the registry (its deployer was killed
      after the switch), it is marked ``deployed`` now.

    Every event carries ``version_in_place``, the version the directory holds afterwards.

    Parameters
    ----------
    file_mode : int
        Mode of the deployed files (directories get the matching execute bits), e.g. ``0o644``.
    keep_versions : int
        Version directories kept for rollback, the current one included (>= 1).
    force_replace : bool
        Used only by ``daily-mlops rollback`` (:func:`daily_mlops.loop.rollback.rollback`): never
        ``superseded``, the version replaces whatever is in place even when that was deployed for a
        later logical date. ``deployment.json`` then keeps the logical date of the deployment it
        replaces (``logical_date`` when none was recorded), so the DAG's position in time does not
        move: its next logical date deploys as usual, earlier ones stay superseded. The event
        records ``logical_date`` and ``from_version`` (the version replaced, read under the lock).
    reason : str
        The ``status_history`` reason of the move to ``deployed``.
    event_fields : dict, optional
        Extra fields of the ``deployment_events`` document (e.g. ``event_type``, ``reason``, ``user``).

    Raises
    ------
    MLOpsError
        When the version is neither approved nor deployed (e.g. candidate, rejected, retired).
    IntegrityError
        When an artifact is missing or its sha256 does not match; nothing is written.
    OSError
        When writing fails (e.g. ENOSPC); temporary files are removed, the previous version stays served.
    """
    from daily_mlops.storage import deployment_dir as ddir
    from daily_mlops.storage.events import record_deployment, utcnow

    day = logical_date.isoformat()
    doc = registry.get(model_name, model_version)
    _require_deployable(doc)  # checked before anything is written, and again under the lock
    payload = None
    if ddir.deployed_version(directory) != model_version:  # a lock-free peek: verify artifacts before writing
        payload = deployment_payload(registry, doc)
    with ddir.deployment_lock(directory, file_mode=file_mode) as leftovers:
        if leftovers:
            log.warning("removed leftovers of an interrupted deployment in %s: %s", directory, ", ".join(leftovers))
        doc = registry.get(model_name, model_version)
        current = ddir.deployed_version(directory)
        record = ddir.deployment_record(directory)
        event: dict[str, Any] = {
            "event_type": "model_deployed",
            "model_id": f"{model_name}:v{model_version}",
            "model_name": model_name,
            "model_version": int(model_version),
            "deployment_path": str(directory / ddir.WEIGHTS_FILE),
            "sha256": doc["sha256"]["weights"],
            "logical_date": day,
            "previous_version": current,
        }
        in_place_day = record["logical_date"] if record and record.get("model_version") == current else None
        if force_replace:
            event.update(from_version=current, to_version=int(model_version))
        event.update(event_fields or {})
        if current == model_version and doc["status"] == "deployed" and record is not None:
            if in_place_day is None or in_place_day < day:
                ddir.write_record(directory, model_version, day, file_mode=file_mode)
            event.update(status="already_deployed", event_type="model_deployment_skipped", version_in_place=current)
        elif (not force_replace and current is not None and current != model_version and in_place_day is not None
              and in_place_day > day):
            in_place = next((d for d in registry.list(model_name) if d["model_version"] == current), None)
            if in_place is not None and in_place["status"] == "approved":  # its deployer died before the registry write
                _promote(registry, model_name, current, in_place_day, reason=f"found deployed in {directory}")
            event.update(status="superseded", event_type="model_deployment_skipped", version_in_place=current,
                         superseded_by={"model_version": current, "logical_date": in_place_day})
        else:
            _require_deployable(doc)
            weights, config = payload or deployment_payload(registry, doc)
            record_day = (in_place_day or day) if force_replace else day
            pruned = ddir.write_deployment(directory, weights=weights, config=config, model_version=int(model_version),
                                           logical_date=record_day, file_mode=file_mode, keep_versions=keep_versions)
            if pruned:
                log.info("pruned version directories %s of %s (keeping %d)", pruned, directory, keep_versions)
            _promote(registry, model_name, model_version, day, reason=reason)
            event.update(status="deployed", version_in_place=int(model_version))
        event["timestamp"] = utcnow()
        return record_deployment(registry.db, event)


def load_deployed(directory: Path) -> ModelBundle:
    """Load the deployed model from ``directory`` (``current_model.pth`` + ``current_model.json``).

    Both files are read from the version directory ``directory/current``
    pointed to when it was read (or from the earlier flat layout), so the
    bundle is always one whole version, even during a deployment.

    Raises
    ------
    NotFoundError, IntegrityError
        As :func:`~daily_mlops.storage.deployment_dir.read_deployment` raises them: nothing deployed
        there, or weights that do not hash to the recorded sha256.
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
        model_version=int(config["model_version"]), source=str(weights_path), calibration=config.get("calibration"),
    )


@with_database
def deploy_model(settings: Settings, *, logical_date: LogicalDate, model_version: int,
                 db: Database) -> dict[str, Any]:
    """Copy the approved version atomically to ``MLOPS_DEPLOYMENT_DIR`` and record it.

    Returns
    -------
    dict
        ``model_version``, ``status`` (``deployed``, ``already_deployed`` or ``superseded``),
        ``deployment_path``, ``sha256``, ``version_in_place``.
    """
    from daily_mlops.storage.registry import ModelRegistry

    event = deploy_version(ModelRegistry(db), settings.model_name, model_version, directory=settings.deployment_path,
                           logical_date=logical_day(logical_date), file_mode=settings.deployment_file_permissions,
                           keep_versions=settings.deployment_keep_versions)
    if event["status"] == "deployed":
        previous = event["previous_version"]
        log.info("deployed v%s to %s (%s), sha256 %s", model_version, event["deployment_path"],
                 f"replaces v{previous}" if previous is not None else "first deployment", event["sha256"][:12])
    elif event["status"] == "superseded":
        log.info("v%s not deployed: v%s of a later logical date is already in place", model_version,
                 event.get("version_in_place"))
    else:
        log.info("v%s is already deployed at %s: nothing to do", model_version, event["deployment_path"])
    return {k: event[k] for k in ("model_version", "status", "deployment_path", "sha256", "version_in_place")}


@with_database
def notify_deployment_complete(
    settings: Settings, *, logical_date: LogicalDate, deployment: dict[str, Any], db: Database
) -> dict[str, Any]:
    """Write the ``deployment_complete`` notification; return its message."""
    from daily_mlops.storage.events import record_notification

    day = logical_day(logical_date)
    verb = {"deployed": "deployed to", "already_deployed": "was already deployed to"}.get(
        deployment["status"], f"not deployed: version {deployment.get('version_in_place')} of a later day is in")
    message = f"{day}: model version {deployment['model_version']} {verb} {deployment['deployment_path']}"
    record_notification(db, "deployment_complete", logical_date=day, message=message, **deployment)
    log.info("notified: %s", message)
    return {"message": message}


@with_database
def record_rejection(
    settings: Settings, *, logical_date: LogicalDate, model_version: int, reviewer: str | None,
    responded_at: dt.datetime | None = None, dag_id: str | None = None, run_id: str | None = None, db: Database,
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
