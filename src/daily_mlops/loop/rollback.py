"""``daily-mlops rollback``: put the previously deployed model version (or a chosen one) back in service.

A rollback is a deployment: it goes through :func:`daily_mlops.loop.deployment.deploy_version`
(the deployment directory's ``flock``, ``versions/<n>`` and the atomic switch of
``current``), with ``force_replace=True`` so that it wins over a deployment of a
later logical date instead of being ``superseded``. The registry moves with it:
a ``retired`` version becomes ``approved`` first (an allowed transition, recorded
in ``status_history`` with the reason), then ``deployed``; the version it
replaces is ``retired``. Since ``champion()`` is the deployed version, the next
day's evaluation scores the rolled-back version.

Without ``--to`` the target is the version deployed before the current one:
the ``previous_version`` of the ``deployment_events`` document that put the
current version in place, else (no such event, e.g. the first deployment
predates the events) the other version most recently moved to ``deployed`` in
the registry's ``status_history``. Two rollbacks in a row therefore go back and
forth between two versions, as ``kubectl rollout undo`` does.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import IntegrityError, MLOpsError, NotFoundError
from daily_mlops.loop._common import log

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["ROLLBACK_EVENT", "ROLLBACK_STATUSES", "current_user", "previous_version", "rollback"]

#: ``event_type`` of the ``deployment_events`` document a rollback records.
ROLLBACK_EVENT = "model_rolled_back"
#: Statuses a version may have to be rolled back to (``rejected`` too, with ``force``).
ROLLBACK_STATUSES = ("approved", "deployed", "retired")


def current_user() -> str:
    """Who runs the rollback: ``$USER``, else the login name, else ``"unknown"``."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "unknown"


def previous_version(registry: ModelRegistry, model_name: str, current: int) -> int | None:
    """The version deployed before ``current``, or ``None`` when there was none.

    Read from the newest ``deployment_events`` document that deployed
    ``current`` (its ``previous_version``), else from the registry's
    ``status_history``: the other version whose latest move to ``deployed`` is
    the most recent.
    """
    from daily_mlops.storage.events import last_deployment_of

    event = last_deployment_of(registry.db, model_name, current)
    if event is not None and event.get("previous_version") not in (None, current):
        return int(event["previous_version"])
    latest: tuple[Any, int] | None = None
    for doc in registry.list(model_name):
        deployed_at = [e["at"] for e in doc.get("status_history", []) if e.get("status") == "deployed" and e.get("at")]
        if doc["model_version"] != current and deployed_at and (latest is None or max(deployed_at) > latest[0]):
            latest = (max(deployed_at), int(doc["model_version"]))
    return latest[1] if latest else None


def _last_reason(doc: dict[str, Any]) -> str:
    entries = [e for e in doc.get("status_history", []) if e.get("status") == doc["status"]]
    return (entries[-1].get("reason") if entries else None) or "no reason recorded"


def _check_target(registry: ModelRegistry, doc: dict[str, Any], *, force: bool) -> None:
    """Refuse a version that cannot be rolled back to; nothing is written (raises MLOpsError, IntegrityError)."""
    from daily_mlops.storage.registry import preprocessor_name

    name, version, status = doc["model_name"], doc["model_version"], doc["status"]
    if status == "rejected" and not force:
        raise MLOpsError(
            f"{name} version {version} is 'rejected' ({_last_reason(doc)}); refusing to roll back to a version "
            "that failed its evaluation. Pass --force to deploy it anyway, or choose another with --to VERSION"
        )
    if status not in (*ROLLBACK_STATUSES, "rejected"):
        raise MLOpsError(
            f"{name} version {version} is {status!r} (its evaluation never finished); only an approved, deployed "
            "or retired version can be rolled back to"
        )
    problems = registry.verify(doc)
    if "preprocessor_version" in doc:
        problems += registry.verify(registry.get(preprocessor_name(name), doc["preprocessor_version"]))
    if problems:
        raise IntegrityError(f"{name} version {version} cannot be rolled back to: {'; '.join(problems)}; "
                             "run `daily-mlops doctor`, or choose another version with --to VERSION")


def rollback(
    settings: Settings, *, db: Database, to_version: int | None = None, reason: str = "", force: bool = False,
    user: str | None = None, today: dt.date | None = None,
) -> dict[str, Any]:
    """Redeploy the previously deployed version of ``MLOPS_MODEL_NAME`` (or ``to_version``); return the event.

    Parameters
    ----------
    to_version : int, optional
        The version to deploy; default :func:`previous_version` of the one in place.
    reason : str
        Why; recorded in the event and in ``status_history`` (empty: ``"manual rollback"``).
    force : bool
        Allow a ``rejected`` version (it moves rejected -> approved -> deployed).
    user : str, optional
        Who (default :func:`current_user`, i.e. ``$USER``).
    today : date, optional
        The logical date recorded (default: today's date, UTC).

    Returns
    -------
    dict
        The ``deployment_events`` document: ``event_type`` ``model_rolled_back``, ``status`` ``deployed``,
        ``from_version``, ``to_version``, ``reason``, ``user``, ``logical_date``, ``deployment_path``, ``sha256``.

    Raises
    ------
    NotFoundError
        When nothing is deployed and no ``to_version`` is given, when no version was deployed before the
        current one, or when ``to_version`` is not in the registry.
    MLOpsError
        When the target is already deployed, is a candidate, or is rejected without ``force``; nothing is written.
    IntegrityError
        When the target's weights or preprocessor are missing or altered in GridFS; nothing is written.
    OSError
        When writing the deployment fails; the previous version stays served. A retired target may
        then be left ``approved`` (the champion stays the deployed version).
    """
    from daily_mlops.loop.deployment import deploy_version, live_version
    from daily_mlops.storage.deployment_dir import deployed_version
    from daily_mlops.storage.registry import ModelRegistry

    name, directory = settings.model_name, settings.deployment_path
    registry = ModelRegistry(db)
    on_disk = deployed_version(directory)
    current = on_disk if on_disk is not None else live_version(db, name)
    if to_version is None:
        if current is None:
            raise NotFoundError(f"no {name} version is deployed in {directory}; nothing to roll back "
                                "(choose a version with --to VERSION, see `daily-mlops models list`)")
        to_version = previous_version(registry, name, current)
        if to_version is None:
            raise NotFoundError(f"no {name} version was deployed before version {current}; choose one with "
                                "--to VERSION (see `daily-mlops models list`)")
    doc = registry.get(name, to_version)
    if current == doc["model_version"] and doc["status"] == "deployed":
        raise MLOpsError(f"{name} version {current} is already deployed in {directory}; nothing to roll back")
    _check_target(registry, doc, force=force)

    user = user or current_user()
    reason = reason.strip() or "manual rollback"
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    if doc["status"] in ("retired", "rejected"):
        forced = "forced " if doc["status"] == "rejected" else ""
        registry.set_status(name, doc["model_version"], "approved", logical_date=day,
                            reason=f"{forced}rollback by {user}: {reason}")
    event = deploy_version(
        registry, name, int(doc["model_version"]), directory=directory, logical_date=dt.date.fromisoformat(day),
        file_mode=settings.deployment_file_permissions, keep_versions=settings.deployment_keep_versions,
        force_replace=True, reason=f"rolled back from version {current} by {user}: {reason}",
        event_fields={"event_type": ROLLBACK_EVENT, "reason": reason, "user": user,
                      "forced": doc["status"] == "rejected"},
    )
    log.info("rolled back %s from v%s to v%s (%s, by %s): %s", name, event.get("from_version"), doc["model_version"],
             event["status"], user, reason)
    return event
