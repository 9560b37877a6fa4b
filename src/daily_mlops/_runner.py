"""Run the three DAGs in order for a logical date with Airflow's own ``dag.test``.

``daily-mlops run`` and ``demo`` use this: a local Airflow home under
``MLOPS_HOME/airflow`` with a SQLite metadata database (``airflow db migrate``
on first use), the project's DAG folder, and ``AIRFLOW_CONN_MONGO_DEFAULT``
pointing at the MongoDB the CLI uses. ``dag.test`` runs every task in this
process, in dependency order, against that metadata database, so the
ExternalTaskSensors see the upstream DAG runs of the same logical date
(Airflow docs, "Testing DAGs with dag.test()").

The Airflow environment must be set before ``airflow`` is first imported:
call :func:`configure_airflow` first.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daily_mlops._mongo import airflow_conn_uri
from daily_mlops.errors import MLOpsError

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

    from daily_mlops.settings import Settings

__all__ = ["DagRunOutcome", "DayOutcome", "airflow_environment", "configure_airflow", "load_dags", "run_day", "summarise_day"]

DAG_IDS = ("data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline")


def airflow_environment(settings: "Settings", mongo_uri: str) -> dict[str, str]:
    """Environment variables for a local Airflow running this project's DAGs against ``mongo_uri``."""
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW_CONN_MONGO_DEFAULT": airflow_conn_uri(mongo_uri),
        "MLOPS_HOME": str(settings.home),
        "MLOPS_MONGO_DB": settings.mongo_db,
        "MLOPS_MONGO_CONN_ID": "mongo_default",
        # dag.test runs tasks in this process: a failure should surface now, not after minutes of backoff.
        "MLOPS_TASK_RETRIES": "0",
    }


def configure_airflow(settings: "Settings", mongo_uri: str, *, quiet: bool = True) -> dict[str, str]:
    """Export the local Airflow environment and create its metadata database on first use.

    Raises
    ------
    MLOpsError
        When ``airflow db migrate`` fails (its output is included).
    """
    env = airflow_environment(settings, mongo_uri)
    os.environ.update(env)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    if quiet:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    if not (settings.airflow_home / "airflow.db").exists():
        airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
        done = subprocess.run([airflow, "db", "migrate"], env={**os.environ}, capture_output=True, text=True)
        if done.returncode != 0:
            raise MLOpsError(f"`airflow db migrate` failed in {settings.airflow_home}:\n{done.stdout}\n{done.stderr}")
    return env


@dataclass
class DagRunOutcome:
    """One DAG run: its final state and each task's state."""

    dag_id: str
    state: str
    tasks: dict[str, str | None]

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.tasks.items() if s in ("failed", "upstream_failed"))


@dataclass
class DayOutcome:
    """The three DAG runs of one logical date and what the loop recorded for it."""

    logical_date: dt.date
    runs: list[DagRunOutcome] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def as_designed(self) -> bool:
        """True when every DAG ran as designed: only ``send_alert`` may fail (an alert day)."""
        for run in self.runs:
            allowed = {"send_alert"} if run.dag_id == "model_evaluation_pipeline" else set()
            if set(run.failed_tasks) - allowed:
                return False
            if run.state == "failed" and not set(run.failed_tasks) & allowed:
                return False
            if run.state not in ("success", "failed"):
                return False
        return len(self.runs) == len(DAG_IDS)


def load_dags(settings: "Settings") -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(settings.dags_folder))
    if bag.import_errors:
        raise MLOpsError(f"DAG import errors in {settings.dags_folder}: {bag.import_errors}")
    missing = [d for d in DAG_IDS if d not in bag.dags]
    if missing:
        raise MLOpsError(f"DAGs {missing} not found in {settings.dags_folder}; set MLOPS_DAGS_FOLDER")
    return {d: bag.dags[d] for d in DAG_IDS}


def run_day(
    settings: "Settings", db: "Database", day: dt.date, *, evaluation_conf: dict[str, Any] | None = None,
    dags: dict[str, Any] | None = None,
) -> DayOutcome:
    """Run the data, evaluation and deployment DAGs for ``day`` with ``dag.test``; summarise from MongoDB.

    ``evaluation_conf`` is the evaluation DAG run's conf (params such as
    ``f1_threshold``), as the trigger form would pass it.
    """
    dags = dags or load_dags(settings)
    logical = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    outcome = DayOutcome(logical_date=day)
    for dag_id in DAG_IDS:
        conf = evaluation_conf if dag_id == "model_evaluation_pipeline" else None
        _quiet_airflow_loggers()
        dag_run = dags[dag_id].test(logical_date=logical, run_conf=conf or None)
        tasks = {ti.task_id: (str(ti.state) if ti.state is not None else None) for ti in dag_run.get_task_instances()}
        outcome.runs.append(DagRunOutcome(dag_id=dag_id, state=str(dag_run.state), tasks=tasks))
    outcome.summary = summarise_day(db, day)
    return outcome


def summarise_day(db: "Database", day: dt.date) -> dict[str, Any]:
    """What the loop recorded for ``day``: champion F1, attempts, best F1, alert or deployed version."""
    iso = day.isoformat()
    latest = db["performance_metrics"].find_one({"logical_date": iso, "attempt": 0}, sort=[("timestamp", -1)])
    query = {"logical_date": iso, "run_id": latest.get("run_id")} if latest else {"logical_date": iso}
    evals = list(db["performance_metrics"].find(query, {"_id": 0}).sort("attempt", 1))
    alert = db["alerts"].find_one({"logical_date": iso, "status": "open"}, {"_id": 0})
    deployed = db["deployment_events"].find_one({"logical_date": iso}, {"_id": 0}, sort=[("timestamp", -1)])
    first = next((e for e in evals if e["attempt"] == 0), None)
    return {
        "logical_date": iso,
        "f1_threshold": first["f1_threshold"] if first else None,
        "champion_version": first["model_version"] if first else None,
        "champion_f1": first["f1"] if first else None,
        "attempts": max((e["attempt"] for e in evals), default=0),
        "versions_tried": [e["model_version"] for e in evals],
        "best_f1": max((e["f1"] for e in evals), default=None),
        "alert": alert["message"] if alert else None,
        "deployed_version": deployed["version"] if deployed else None,
        "deployment_status": deployed["status"] if deployed else None,
    }


def _quiet_airflow_loggers() -> None:
    for name in ("airflow", "airflow.task", "airflow.models.dagrun", "airflow.processor"):
        logging.getLogger(name).setLevel(logging.WARNING)
