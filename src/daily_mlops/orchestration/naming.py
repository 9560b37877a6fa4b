"""The names the three DAGs share, and the logical-date log line of their tasks: standard library only.

The DAG ids, the day's run ids (:func:`day_run_id`), the task ids other modules look for, the message of a
run started without its upstream (:func:`missing_upstream_message`), and :func:`announce_logical_date` /
:func:`logs_logical_date`, the first line of every task log. :mod:`daily_mlops.orchestration.dags` (the
DAG-building helpers) and the project's operators, triggers and approval step all import them from here, so
none of those modules imports another to learn a name.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = [
    "APPROVAL_TASK_ID",
    "DAG_IDS",
    "DATA_DAG_ID",
    "DAY_RUN_PREFIX",
    "DEPLOYMENT_DAG_ID",
    "EVALUATION_DAG_ID",
    "PREVIOUS_DAY_TASK",
    "announce_logical_date",
    "day_run_id",
    "logs_logical_date",
    "missing_upstream_message",
]

DATA_DAG_ID = "data_pipeline_dag"
EVALUATION_DAG_ID = "model_evaluation_pipeline"
DEPLOYMENT_DAG_ID = "model_deployment_pipeline"
#: The DAGs of one day, in the order they run.
DAG_IDS = (DATA_DAG_ID, EVALUATION_DAG_ID, DEPLOYMENT_DAG_ID)

#: Task id of ``data_pipeline_dag``'s first task: it waits for the previous logical date
#: (:func:`daily_mlops.orchestration.dags.previous_day_sensor`).
PREVIOUS_DAY_TASK = "wait_for_previous_day"
#: Task id of the deployment DAG's human approval step.
APPROVAL_TASK_ID = "approve_deployment"

#: Prefix of the run ids this project creates (:func:`day_run_id`).
DAY_RUN_PREFIX = "day__"


log = logging.getLogger("daily_mlops.orchestration")
F = TypeVar("F", bound=Callable[..., Any])


def day_run_id(logical_date: dt.datetime) -> str:
    """The readable run id of a day's DAG runs: ``day__2026-11-06`` (``day__<ISO time>`` off midnight UTC).

    Used by ``data_pipeline_dag``'s trigger tasks for the runs they create,
    and by the REST examples and tests for the runs they trigger, so the
    three runs of a day share one id in the UI.

    Parameters
    ----------
    logical_date : datetime.datetime
        The run's logical date (timezone-aware; naive is read as UTC).
    """
    value = logical_date if logical_date.tzinfo is not None else logical_date.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    if value.time() == dt.time(0, 0):
        return f"{DAY_RUN_PREFIX}{value.date().isoformat()}"
    return f"{DAY_RUN_PREFIX}{value.replace(tzinfo=None).isoformat()}Z"


def missing_upstream_message(dag_id: str, upstream_dag_id: str, logical_date: Any) -> str:
    """Why a run started alone fails at once, and which DAG to trigger instead."""
    when = logical_date.isoformat() if hasattr(logical_date, "isoformat") else str(logical_date)
    return (
        f"{dag_id} found no {upstream_dag_id} run for logical date {when}: this DAG does not run on its own. "
        f"Trigger {DATA_DAG_ID} for logical date {when} instead; it creates the runs of "
        f"{EVALUATION_DAG_ID} and {DEPLOYMENT_DAG_ID} for that date itself."
    )


def announce_logical_date(context: Mapping[str, Any]) -> None:
    """Log the run's logical date (and run, task, try) as the task body's first line.

    Called first by every task of the three DAGs (:func:`logs_logical_date`
    for ``@task`` functions, ``execute`` of the project's operators), so the
    logical date is the first line of each task log after Airflow's
    collapsed "pre task execution" group.
    """
    ti = context.get("ti")
    logical_date = context.get("logical_date")
    where = (f"{getattr(ti, 'dag_id', '?')} run {context.get('run_id')} task {getattr(ti, 'task_id', '?')} "
             f"try {getattr(ti, 'try_number', '?')}")
    if logical_date is None:
        log.warning("no logical date (%s): trigger %s with a logical date", where, DATA_DAG_ID)
    else:
        log.info("logical date %s (%s)", logical_date.isoformat(), where)


def logs_logical_date(fn: F) -> F:
    """Decorate a task function so its first log line is the logical date (:func:`announce_logical_date`).

    Put it under ``@task``: the signature is kept (``functools.wraps``), so
    Airflow still passes the same context keys.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from airflow.sdk import get_current_context

        announce_logical_date(get_current_context())
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
