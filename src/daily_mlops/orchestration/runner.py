"""Run the three DAGs in order for a logical date with Airflow's own ``dag.test``.

``daily-mlops run`` and ``demo`` use this: a local Airflow home under
``MLOPS_HOME/airflow`` with a SQLite metadata database (``airflow db migrate``
on first use), the project's DAG folder, and ``AIRFLOW_CONN_MONGO_DEFAULT``
pointing at the MongoDB the CLI uses. ``dag.test`` runs every task in this
process, in dependency order, against that metadata database, so the
ExternalTaskSensors see the upstream DAG runs of the same logical date
(Airflow docs, "Testing DAGs with dag.test()").

``data_pipeline_dag``'s trigger tasks run too: they create queued runs of the
other two DAGs for the date (or are skipped when runs exist), which nothing
executes here; the next ``dag.test`` replaces each with the run it executes
(``dag.test`` deletes a DAG's run at the same logical date first), so a day
still ends with one run per DAG. A human approval step cannot be answered
here: ``MLOPS_REQUIRE_APPROVAL=true`` is refused (use ``daily-mlops airflow``).

The Airflow environment must be set before ``airflow`` is first imported:
call :func:`daily_mlops.orchestration.environment.configure_airflow` first.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.orchestration.dags import DAG_IDS, DATA_DAG_ID, EVALUATION_DAG_ID

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database

    from daily_mlops.settings import Settings

__all__ = ["DagRunOutcome", "DayOutcome", "load_dags", "run_day", "summarise_day"]



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
        """True when every DAG ran as designed: only ``send_alert`` may fail (an alert day).

        See :func:`daily_mlops.decisions.day_as_designed`; ``daily-mlops run`` exits 1 otherwise.
        """
        from daily_mlops.decisions import day_as_designed

        if len(self.runs) != len(DAG_IDS):
            return False
        return day_as_designed({r.dag_id: (r.state, r.failed_tasks) for r in self.runs}, DAG_IDS, EVALUATION_DAG_ID)


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
    ``f1_threshold``), as the trigger form would pass it; the data DAG run
    gets it too, as one click on ``data_pipeline_dag`` would.

    Raises
    ------
    ConfigError
        When ``MLOPS_REQUIRE_APPROVAL`` is true: ``dag.test`` would wait for a
        reviewer forever.
    """
    if settings.require_approval:
        raise ConfigError("MLOPS_REQUIRE_APPROVAL=true needs a reviewer in the Airflow UI, which `daily-mlops run` "
                          "does not have; unset it for `run`, or use `daily-mlops airflow`")
    dags = dags or load_dags(settings)
    logical = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    outcome = DayOutcome(logical_date=day)
    for dag_id in DAG_IDS:
        conf = evaluation_conf if dag_id in (DATA_DAG_ID, EVALUATION_DAG_ID) else None
        _quiet_airflow_loggers()
        dag_run = dags[dag_id].test(logical_date=logical, run_conf=conf or None)
        tasks = {ti.task_id: (str(ti.state) if ti.state is not None else None) for ti in dag_run.get_task_instances()}
        outcome.runs.append(DagRunOutcome(dag_id=dag_id, state=str(dag_run.state), tasks=tasks))
    outcome.summary = summarise_day(db, day)
    return outcome


def summarise_day(db: "Database", day: dt.date) -> dict[str, Any]:
    """What the loop recorded for ``day``: champion F1, attempts, best F1, alert or deployed version."""
    from daily_mlops.storage.alerts import open_alert
    from daily_mlops.storage.events import evaluations_of_day, latest_deployment, latest_evaluation_run

    evals = evaluations_of_day(db, day, run_id=latest_evaluation_run(db, day))
    alert = open_alert(db, day)
    deployed = latest_deployment(db, day)
    first = next((e for e in evals if e["attempt"] == 0), None)
    return {
        "logical_date": day.isoformat(),
        "f1_threshold": first["f1_threshold"] if first else None,
        "champion_version": first["model_version"] if first else None,
        "champion_f1": first["f1"] if first else None,
        "retrain_attempts": max((e["attempt"] for e in evals), default=0),
        "versions_tried": [e["model_version"] for e in evals],
        "best_f1": max((e["f1"] for e in evals), default=None),
        "alert": alert["message"] if alert else None,
        "deployed_version": deployed["model_version"] if deployed else None,
        "deployment_status": deployed["status"] if deployed else None,
    }


def _quiet_airflow_loggers() -> None:
    for name in ("airflow", "airflow.task", "airflow.models.dagrun", "airflow.processor"):
        logging.getLogger(name).setLevel(logging.WARNING)
