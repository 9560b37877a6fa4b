"""What the three DAG files share: schedule, start date, default args, notifiers.

Imported at DAG parse time, so it imports nothing heavy (no torch, sdv,
pandas, scikit-learn or pymongo): only the standard library, pendulum and
Airflow's task SDK.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseNotifier

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = [
    "DATA_DAG_ID",
    "DEPLOYMENT_DAG_ID",
    "EVALUATION_DAG_ID",
    "SCHEDULE",
    "SENSOR_TIMEOUT",
    "START_DATE",
    "TAGS",
    "MongoNotificationNotifier",
    "alert_notifiers",
    "default_args",
]

DATA_DAG_ID = "data_pipeline_dag"
EVALUATION_DAG_ID = "model_evaluation_pipeline"
DEPLOYMENT_DAG_ID = "model_deployment_pipeline"

#: All three DAGs share schedule and start date so ExternalTaskSensor logical dates line up.
SCHEDULE = "@daily"
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
TAGS = ["daily-mlops"]
#: How long a sensor waits for the upstream DAG before failing (seconds).
SENSOR_TIMEOUT = 6 * 60 * 60



def default_args(settings: "Settings") -> dict[str, Any]:
    """Task defaults: ``MLOPS_TASK_RETRIES`` retries with exponential backoff from 1 to 10 minutes."""
    return {
        "owner": "daily-mlops",
        "retries": settings.task_retries,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


class MongoNotificationNotifier(BaseNotifier):
    """Airflow notifier that records the failure in the ``notifications`` collection.

    Attached to ``send_alert``; runs after the task failed the DAG run.
    """

    template_fields = ("message",)

    def __init__(self, *, kind: str = "model_performance_failure", message: str = "{{ ti.task_id }} failed") -> None:
        super().__init__()
        self.kind = kind
        self.message = message

    def notify(self, context: Any) -> None:
        from daily_mlops._events import record_notification
        from daily_mlops._mongo import airflow_database
        from daily_mlops.settings import load_settings

        settings = load_settings()
        day = context["logical_date"].date().isoformat() if context.get("logical_date") else "unknown"
        ti = context.get("ti")
        with airflow_database(settings) as db:
            record_notification(db, self.kind, logical_date=day, message=str(self.message),
                                dag_id=getattr(ti, "dag_id", None), run_id=getattr(ti, "run_id", None),
                                task_id=getattr(ti, "task_id", None), channel="mongodb")


def alert_notifiers(settings: "Settings") -> list[BaseNotifier]:
    """The notifiers ``send_alert`` calls: MongoDB, plus ``MLOPS_ALERT_NOTIFIER`` when configured.

    Raises
    ------
    ConfigError
        When ``MLOPS_ALERT_NOTIFIER`` is not an importable ``module:Class``.
    """
    from daily_mlops.errors import ConfigError

    notifiers: list[BaseNotifier] = [
        MongoNotificationNotifier(message="Model performance alert for {{ ds }}: every retraining attempt failed "
                                          "(DAG run {{ run_id }}); see db.alerts")
    ]
    if settings.alert_notifier:
        module_name, _, attr = settings.alert_notifier.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"MLOPS_ALERT_NOTIFIER={settings.alert_notifier!r} cannot be imported ({exc}); "
                "use 'package.module:NotifierClass'"
            ) from exc
        notifiers.append(factory(**settings.alert_notifier_kwargs))
    return notifiers
