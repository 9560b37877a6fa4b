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
still ends with one run per DAG. Days run one after the other here, so
``data_pipeline_dag``'s ``wait_for_previous_day`` finds the previous date
finished at its first poke; a previous date left unfinished in this Airflow
home (an interrupted run) is refused before anything runs
(:func:`require_previous_day_finished`), as ``dag.test`` would otherwise wait
on it until the sensor's timeout. A human approval step cannot be answered
here: ``MLOPS_REQUIRE_APPROVAL=true`` is refused (use ``daily-mlops airflow``).

The Airflow environment must be set before ``airflow`` is first imported:
call :func:`daily_mlops.orchestration.environment.configure_airflow` first.

A :class:`RunObserver` passed to :func:`run_day` hears each DAG run and each
task start and end: an Airflow listener (``on_task_instance_running`` /
``_success`` / ``_failed`` / ``_skipped``, which the task runner calls inside
``dag.test`` too; Airflow docs, "Listeners") forwards the task events. The
console's live progress (:mod:`daily_mlops.orchestration.progress`) is one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.orchestration.dags import DAG_IDS, DATA_DAG_ID, EVALUATION_DAG_ID

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database

__all__ = ["DagRunOutcome", "DayOutcome", "RunObserver", "day_story", "load_dags", "require_previous_day_finished",
           "run_day", "summarise_day"]

log = logging.getLogger(__name__)
#: The data DAG's data-quality gate task: its failure stops the day by design (a broken batch).
QUALITY_TASK = "check_data_quality"
#: The downstream DAGs' sensors, which fail when the gate stopped the day.
SENSOR_TASKS = frozenset({"wait_for_data", "wait_for_evaluation"})


@dataclass
class DagRunOutcome:
    """One DAG run: its final state and each task's state."""

    dag_id: str
    state: str
    tasks: dict[str, str | None]

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.tasks.items() if s in ("failed", "upstream_failed"))

    def tasks_in(self, state: str) -> list[str]:
        """The task ids whose final state is ``state`` (e.g. ``"failed"`` without ``"upstream_failed"``)."""
        return sorted(t for t, s in self.tasks.items() if s == state)


@dataclass
class DayOutcome:
    """The three DAG runs of one logical date and what the loop recorded for it."""

    logical_date: dt.date
    runs: list[DagRunOutcome] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def stopped_by_gate(self) -> bool:
        """True when the data-quality gate stopped the day: it recorded a failed verdict, and :data:`QUALITY_TASK`
        is the data run's only failed task.

        The verdict is ``processing_metadata.quality.status == "failed"`` of the day (``quality_status`` of
        :attr:`summary`, from :func:`summarise_day`). A gate task that failed without recording one (it
        crashed) is an unexpected failure, not this outcome. Then the downstream DAG runs fail
        at their sensors only (:data:`SENSOR_TASKS`; the rest is ``upstream_failed``): the batch was judged
        broken, no model was judged on it.
        """
        if self.summary.get("quality_status") != "failed":
            return False
        data = next((r for r in self.runs if r.dag_id == DATA_DAG_ID), None)
        if data is None or data.tasks_in("failed") != [QUALITY_TASK] or len(self.runs) != len(DAG_IDS):
            return False
        return all(set(r.tasks_in("failed")) <= SENSOR_TASKS for r in self.runs if r.dag_id != DATA_DAG_ID)

    @property
    def as_designed(self) -> bool:
        """True when every DAG ran as designed: only ``send_alert`` may fail (an alert day), or the gate stopped the
        day with a recorded verdict (:attr:`stopped_by_gate`).

        See :func:`daily_mlops.decisions.day_as_designed` and :attr:`stopped_by_gate`; ``daily-mlops run``
        exits 1 otherwise.
        """
        from daily_mlops.decisions import day_as_designed

        if len(self.runs) != len(DAG_IDS):
            return False
        if self.stopped_by_gate:
            return True
        return day_as_designed({r.dag_id: (r.state, r.failed_tasks) for r in self.runs}, DAG_IDS, EVALUATION_DAG_ID)


class RunObserver:
    """Hears what :func:`run_day` runs; every method does nothing unless overridden.

    Task events come from the Airflow task runner (through a listener), in
    this process and thread, between :meth:`dag_started` and :meth:`dag_finished`.
    Tasks that never run (skipped by a branch or a trigger rule) send no event.
    """

    def day_started(self, day: dt.date, conf: dict[str, Any] | None) -> None:
        """Before the first DAG run of ``day`` (``conf`` is the evaluation run's conf)."""

    def dag_started(self, dag_id: str) -> None:
        """Before ``dag.test`` of ``dag_id``."""

    def task_started(self, dag_id: str, task_id: str, try_number: int) -> None:
        """A task instance started running (``try_number`` from 1)."""

    def task_finished(self, dag_id: str, task_id: str, state: str, error: BaseException | str | None) -> None:
        """A task instance ended ``success``, ``failed`` or ``skipped`` (``error`` set when failed)."""

    def dag_finished(self, run: DagRunOutcome) -> None:
        """After ``dag.test`` of ``run.dag_id`` returned."""

    def day_finished(self, outcome: DayOutcome) -> None:
        """After the day's three DAG runs and their summary."""


def _task_listener(observer: RunObserver) -> Any:
    """An Airflow listener object that forwards task instance events to ``observer``."""
    from airflow.listeners import hookimpl

    def ids(ti: Any) -> tuple[str, str]:
        return str(ti.dag_id), str(ti.task_id)

    class TaskEvents:
        @hookimpl
        def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
            observer.task_started(*ids(task_instance), int(getattr(task_instance, "try_number", 1) or 1))

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            observer.task_finished(*ids(task_instance), "success", None)

        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            observer.task_finished(*ids(task_instance), "failed", error)

        @hookimpl
        def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
            observer.task_finished(*ids(task_instance), "skipped", None)

    return TaskEvents()


@contextlib.contextmanager
def _listening(observer: RunObserver | None) -> Iterator[None]:
    """Register a task listener for ``observer`` with the task runner's listener manager while the block runs."""
    if observer is None:
        yield
        return
    from airflow.sdk.listener import get_listener_manager

    manager = get_listener_manager()
    listener = _task_listener(observer)
    manager.add_listener(listener)
    try:
        yield
    finally:
        manager.pm.unregister(listener)


def load_dags(settings: Settings) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(settings.dags_folder))
    if bag.import_errors:
        raise MLOpsError(f"DAG import errors in {settings.dags_folder}: {bag.import_errors}")
    missing = [d for d in DAG_IDS if d not in bag.dags]
    if missing:
        raise MLOpsError(f"DAGs {missing} not found in {settings.dags_folder}; set MLOPS_DAGS_FOLDER")
    return {d: bag.dags[d] for d in DAG_IDS}


def run_day(
    settings: Settings, db: Database, day: dt.date, *, evaluation_conf: dict[str, Any] | None = None,
    dags: dict[str, Any] | None = None, observer: RunObserver | None = None,
) -> DayOutcome:
    """Run the data, evaluation and deployment DAGs for ``day`` with ``dag.test``; summarise from MongoDB.

    ``evaluation_conf`` is the evaluation DAG run's conf (params such as
    ``f1_threshold``), as the trigger form would pass it; the data DAG run
    gets it too, as one click on ``data_pipeline_dag`` would. ``observer``
    hears each DAG run and task (:class:`RunObserver`). The day's outcome is
    logged at INFO (e.g. that an alert day keeps the deployed version).

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
    logical = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    require_previous_day_finished(logical)
    outcome = DayOutcome(logical_date=day)
    observer = observer or RunObserver()
    observer.day_started(day, evaluation_conf)
    with _listening(observer):
        for dag_id in DAG_IDS:
            conf = _conf_for(dag_id, evaluation_conf)
            observer.dag_started(dag_id)
            dag_run = dags[dag_id].test(logical_date=logical, run_conf=conf or None)
            tasks = {ti.task_id: (str(ti.state) if ti.state is not None else None)
                     for ti in dag_run.get_task_instances()}
            outcome.runs.append(DagRunOutcome(dag_id=dag_id, state=str(dag_run.state), tasks=tasks))
            observer.dag_finished(outcome.runs[-1])
    outcome.summary = summarise_day(db, day, model_name=settings.model_name)
    log.info("%s", day_story(outcome.summary))
    observer.day_finished(outcome)
    return outcome


def require_previous_day_finished(logical_date: dt.datetime) -> None:
    """Refuse to run ``logical_date`` when the previous logical date's DAG runs did not finish in this Airflow home.

    Reads the metadata database the way ``wait_for_previous_day`` asks the execution API
    (:func:`daily_mlops.decisions.previous_day_pending` decides for both), adding the previous run's own
    ``wait_for_previous_day`` state, which ``depends_on_past`` requires to be ``success``. Nothing but
    ``daily-mlops run`` executes runs here, so an unfinished one was interrupted and would hold the
    day's sensor (or ``dag.test``'s loop) until its timeout.

    Raises
    ------
    MLOpsError
        Naming the previous logical date, what did not finish, and the command that runs it again.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from daily_mlops.decisions import FINISHED_RUN_STATES, previous_day_pending
    from daily_mlops.orchestration.dags import PREVIOUS_DAY_TASK

    with create_session() as session:
        previous = session.scalar(select(DagRun).where(DagRun.dag_id == DATA_DAG_ID, DagRun.logical_date < logical_date)
                                  .order_by(DagRun.logical_date.desc()).limit(1))
        if previous is None:
            return
        when, run_id, state = previous.logical_date, previous.run_id, str(previous.state)
        waited = session.scalar(select(TaskInstance.state).where(
            TaskInstance.dag_id == DATA_DAG_ID, TaskInstance.run_id == run_id,
            TaskInstance.task_id == PREVIOUS_DAY_TASK))
        counts = {}
        for dag_id in DAG_IDS[1:]:
            states = [str(s) for s in session.scalars(select(DagRun.state).where(DagRun.dag_id == dag_id,
                                                                                  DagRun.logical_date == when))]
            counts[dag_id] = (len(states), sum(s in FINISHED_RUN_STATES for s in states))
    pending = previous_day_pending(state, counts, wait_task_state=str(waited) if waited is not None else None)
    if pending:
        raise MLOpsError(
            f"the previous logical date {when.date().isoformat()} did not finish in this Airflow home "
            f"({'; '.join(pending)}): an earlier `daily-mlops run` was interrupted, and a day starts only after the "
            f"day before (it deploys this day's champion). Run that date again first: daily-mlops run --date "
            f"{when.date().isoformat()}"
        )


def _conf_for(dag_id: str, conf: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a day's conf a DAG run gets: the data run all of it, the evaluation run all but data-only params."""
    from daily_mlops.orchestration.dags import DAY_PARAMS

    if dag_id == DATA_DAG_ID:
        return conf
    if dag_id == EVALUATION_DAG_ID and conf:
        return {k: v for k, v in conf.items() if DAY_PARAMS.get(k) != DATA_DAG_ID}
    return None


def summarise_day(db: Database, day: dt.date, *, model_name: str | None = None) -> dict[str, Any]:
    """What the loop recorded for ``day``: champion F1, attempts, best F1, alert or deployed version.

    ``live_version`` is the version deployed after the day (the one that
    stays deployed on an alert day; None before any deployment) of the family
    ``model_name`` (default ``tabtransformer``).
    """
    from daily_mlops.decisions import chain_position
    from daily_mlops.loop.deployment import live_version
    from daily_mlops.loop.quality import day_quality
    from daily_mlops.storage.alerts import open_alert
    from daily_mlops.storage.events import evaluations_of_day, latest_deployment, latest_evaluation_run

    evals = evaluations_of_day(db, day, run_id=latest_evaluation_run(db, day))
    alert = open_alert(db, day)
    deployed = latest_deployment(db, day)
    first = next((e for e in evals if chain_position(e) == 0), None)
    approved = next((e for e in evals if deployed and int(e["model_version"]) == int(deployed["model_version"])), None)
    return {
        "logical_date": day.isoformat(),
        "f1_threshold": first["f1_threshold"] if first else None,
        "champion_version": first["model_version"] if first else None,
        "champion_f1": first["f1"] if first else None,
        "retrain_attempts": max((e["attempt"] for e in evals), default=0),
        "versions_tried": [e["model_version"] for e in evals],
        "best_f1": max((e["f1"] for e in evals), default=None),
        "alert": alert["message"] if alert else None,
        "alert_type": alert["alert_type"] if alert else None,
        "deployed_version": deployed["model_version"] if deployed else None,
        "deployment_status": deployed["status"] if deployed else None,
        "live_version": live_version(db, model_name),
        "evidence": _evidence(approved, first) if approved else None,
        **day_quality(db, day),
    }


def _evidence(approved: dict[str, Any], champion: dict[str, Any] | None) -> str:
    """Why the deployed version was approved, from its ``performance_metrics`` record: what it is, the deciding
    validation F1 and its paired interval, and the test and real-holdout figures that chose nothing."""
    stage = approved.get("stage") or "champion"
    parts = [f"{stage}" + (f" from v{approved['parent_version']}" if approved.get("parent_version") else ""),
             f"validation F1 {approved['f1']:.4f} >= floor {approved['f1_threshold']:.4f}"]
    versus = approved.get("champion")
    if versus:
        low, high = versus["interval"]
        parts.append(f"ΔF1 {versus['delta']:+.4f} [{low:+.4f}, {high:+.4f}] 95% vs v{versus['champion_version']}")
    test, real = approved.get("test") or {}, approved.get("reference") or {}
    if test.get("f1") is not None:
        parts.append(f"test F1 {test['f1']:.4f}")
    if real.get("roc_auc") is not None:
        text = f"real holdout F1 {real['f1']:.4f} ROC-AUC {real['roc_auc']:.4f}"
        old = (champion or {}).get("reference") or {}
        if champion and champion is not approved and old.get("roc_auc") is not None:
            text += f" (champion v{champion['model_version']}: F1 {old['f1']:.4f} ROC-AUC {old['roc_auc']:.4f})"
        parts.append(text)
    return "; ".join(parts)


def day_story(summary: dict[str, Any]) -> str:
    """One sentence on how a day ended, from its :func:`summarise_day` summary.

    E.g. ``"evaluation for 2026-11-06 ended in an alert (MODEL_PERFORMANCE_FAILURE); the deployed model
    stays v5"`` or ``"2026-11-05: v6 approved and deployed"``.
    """
    from daily_mlops.decisions import day_outcome_text
    from daily_mlops.loop.deployment import stays_deployed

    return day_outcome_text(summary, sentence=True, live=stays_deployed(summary.get("live_version")))
