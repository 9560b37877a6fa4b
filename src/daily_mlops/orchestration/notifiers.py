"""Airflow notifiers of the loop: a record in MongoDB, and the user's own notifier resolved when it fires.

Both are attached to ``send_alert`` as ``on_failure_callback``; :func:`log_skipped_deployment` is
the deployment sensor's ``on_skipped_callback``. Neither notifier reads
settings nor imports a user's module at DAG parse time: the notifier named by
``MLOPS_ALERT_NOTIFIER`` is imported when the callback runs, so a typo there
fails the callback (logged by Airflow), not the DAG file.

Source: Airflow 3 "Creating a notifier" (``airflow.sdk.BaseNotifier``).
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.sdk import BaseNotifier

__all__ = [
    "ConfiguredAlertNotifier", "MongoNotificationNotifier", "alert_notifiers", "log_skipped_deployment",
    "resolve_notifier",
]

ALERT_MESSAGE = ("Model performance alert for {{ ds }}: every retraining attempt failed "
                 "(DAG run {{ run_id }}); see db.alerts")


class MongoNotificationNotifier(BaseNotifier):
    """Record the failure in the ``notifications`` collection (one document per logical date and kind)."""

    template_fields = ("message",)

    def __init__(self, *, kind: str = "model_performance_failure", message: str = "{{ ti.task_id }} failed") -> None:
        super().__init__()
        self.kind = kind
        self.message = message

    def notify(self, context: Any) -> None:
        from daily_mlops.settings import load_settings
        from daily_mlops.storage.events import record_notification
        from daily_mlops.storage.mongo import airflow_database

        settings = load_settings()
        day = context["logical_date"].date().isoformat() if context.get("logical_date") else "unknown"
        ti = context.get("ti")
        with airflow_database(settings) as db:
            record_notification(db, self.kind, logical_date=day, message=str(self.message),
                                dag_id=getattr(ti, "dag_id", None), run_id=getattr(ti, "run_id", None),
                                task_id=getattr(ti, "task_id", None), channel="mongodb")


def resolve_notifier(spec: str, kwargs: dict[str, Any]) -> Any:
    """Build the notifier ``spec`` (``'package.module:NotifierClass'``) with ``kwargs``.

    Raises
    ------
    ConfigError
        When ``spec`` is not an importable ``module:Class``.
    """
    from daily_mlops.errors import ConfigError

    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"MLOPS_ALERT_NOTIFIER={spec!r} cannot be imported ({exc}); use 'package.module:NotifierClass'"
        ) from exc
    return factory(**kwargs)


class ConfiguredAlertNotifier(BaseNotifier):
    """Call the notifier named by ``MLOPS_ALERT_NOTIFIER`` (with ``MLOPS_ALERT_NOTIFIER_KWARGS``), if any.

    The setting is read and the module imported when the callback fires.

    Raises
    ------
    ConfigError
        From :func:`resolve_notifier` when the setting names no importable notifier.
    """

    def notify(self, context: Any) -> None:
        from daily_mlops.settings import load_settings

        settings = load_settings()
        if settings.alert_notifier:
            resolve_notifier(settings.alert_notifier, settings.alert_notifier_kwargs)(context)


def alert_notifiers() -> list[BaseNotifier]:
    """The notifiers ``send_alert`` calls when it fails the run: MongoDB, then the configured one."""
    return [MongoNotificationNotifier(message=ALERT_MESSAGE), ConfiguredAlertNotifier()]


def log_skipped_deployment(context: Any) -> None:
    """``on_skipped_callback`` of the deployment DAG's sensor: log (INFO) why nothing is deployed that day.

    The message, e.g. "evaluation for 2026-11-06 ended in an alert (MODEL_PERFORMANCE_FAILURE); the
    deployed model stays v5", comes from
    :func:`daily_mlops.loop.deployment.explain_skipped_deployment`.
    """
    from daily_mlops.loop.deployment import explain_skipped_deployment
    from daily_mlops.settings import load_settings

    explain_skipped_deployment(load_settings(), logical_date=context["logical_date"])
