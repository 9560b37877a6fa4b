"""What the three DAG files share: DAG ids, schedule, default args, the sensor factory, parse-time settings.

Imported at DAG parse time, so it imports nothing heavy (no torch, sdv,
pandas, scikit-learn or the MongoDB driver) and validates no file: only the standard
library, pendulum and the settings model. A ``tests/dags`` test proves it and
``scripts/benchmark.py`` prints what each DAG file adds to a parse.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:  # pragma: no cover
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    from daily_mlops.settings import Settings

__all__ = [
    "DAG_IDS",
    "DATA_DAG_ID",
    "DEPLOYMENT_DAG_ID",
    "EVALUATION_DAG_ID",
    "MAX_ATTEMPTS",
    "SCHEDULE",
    "SENSOR_TIMEOUT",
    "START_DATE",
    "TAGS",
    "default_args",
    "parse_time_settings",
    "upstream_sensor",
]

DATA_DAG_ID = "data_pipeline_dag"
EVALUATION_DAG_ID = "model_evaluation_pipeline"
DEPLOYMENT_DAG_ID = "model_deployment_pipeline"
#: The DAGs of one day, in the order they run.
DAG_IDS = (DATA_DAG_ID, EVALUATION_DAG_ID, DEPLOYMENT_DAG_ID)

#: All three DAGs share schedule and start date so ExternalTaskSensor logical dates line up.
SCHEDULE = "@daily"
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
TAGS = ["daily-mlops"]
#: How long a sensor waits for the upstream DAG before failing (seconds).
SENSOR_TIMEOUT = 6 * 60 * 60
#: Retraining attempts unrolled as distinct tasks (Airflow DAGs cannot loop); the param can lower, not raise, it.
MAX_ATTEMPTS = 3


def parse_time_settings() -> "Settings":
    """The settings the DAG files read while parsing (param defaults, retries).

    Reads the YAML config and ``MLOPS_*`` variables like every other
    :class:`~daily_mlops.settings.Settings`, and checks no file: a missing
    ``MLOPS_REFERENCE_DATA`` fails the task that needs it, at run time, not
    the DAG file.

    Raises
    ------
    ConfigError
        When a value is invalid (names the ``MLOPS_*`` variable).
    """
    from daily_mlops.settings import load_settings

    return load_settings()


def default_args(settings: "Settings") -> dict[str, Any]:
    """Task defaults: ``MLOPS_TASK_RETRIES`` retries with exponential backoff from 1 to 10 minutes."""
    return {
        "owner": "daily-mlops",
        "retries": settings.task_retries,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


def upstream_sensor(
    task_id: str, *, external_dag_id: str, external_task_id: str, **kwargs: Any
) -> "ExternalTaskSensor":
    """The ExternalTaskSensor both downstream DAGs use to wait for the same logical date upstream.

    Succeeds on ``success``; is skipped when the upstream task was skipped;
    fails on ``failed`` / ``upstream_failed`` instead of poking on (Airflow 3
    keeps poking a failed upstream unless told, STACK_NOTES); times out after
    :data:`SENSOR_TIMEOUT` seconds; ``reschedule`` mode frees the worker slot
    between pokes. ``kwargs`` (e.g. ``on_skipped_callback``) go to the operator.
    """
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    return ExternalTaskSensor(
        task_id=task_id, external_dag_id=external_dag_id, external_task_id=external_task_id,
        allowed_states=["success"], failed_states=["failed", "upstream_failed"], skipped_states=["skipped"],
        timeout=SENSOR_TIMEOUT, poke_interval=60, mode="reschedule", **kwargs,
    )
