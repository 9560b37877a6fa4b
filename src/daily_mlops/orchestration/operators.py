"""The project's sensors: the upstream-run sensor and the previous-day sensor.

:class:`UpstreamRunSensor` (a thin subclass of the standard provider's
ExternalTaskSensor) fails at once, naming the DAG to trigger, when no
upstream DAG run exists for the logical date, then waits like
``ExternalTaskSensor``. :class:`PreviousDaySensor` holds a day back until the
previous logical date's three DAG runs have finished. The other operators live in
:mod:`~daily_mlops.orchestration.triggers` (``DayRunTrigger``) and
:mod:`~daily_mlops.orchestration.approval` (``DeploymentApproval``), so each
DAG file imports only the provider operators it uses.

Each logs the logical date first (:func:`daily_mlops.orchestration.naming.announce_logical_date`).
Airflow 3 tasks cannot query the metadata database: the DAG-run lookups use
the task SDK's ``RuntimeTaskInstance.get_dr_count`` (the execution API), as
the provider's own ExternalTaskSensor does on Airflow 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from daily_mlops.orchestration.naming import announce_logical_date, missing_upstream_message

__all__ = ["PreviousDaySensor", "UpstreamRunSensor", "logical_date_of"]


def logical_date_of(context: Any, what: str) -> Any:
    """The run's logical date; fails the task naming the fix when the run has none."""
    logical_date = context.get("logical_date")
    if logical_date is None:
        from daily_mlops.orchestration.naming import DATA_DAG_ID

        raise AirflowFailException(
            f"DAG run {context.get('run_id')} has no logical date, so {what}; trigger {DATA_DAG_ID} with a "
            "logical date (the trigger form's Logical date, or logical_date in the REST body)"
        )
    return logical_date


class UpstreamRunSensor(ExternalTaskSensor):
    """An ExternalTaskSensor that first requires the upstream DAG run of the same logical date to exist.

    Airflow 3's ``check_existence`` does not check that the upstream run exists, so a DAG
    triggered alone would poke until :data:`~daily_mlops.orchestration.dags.SENSOR_TIMEOUT`.
    Each poke first counts ``external_dag_id``'s runs at this logical date
    (``ti.get_dr_count``); none fails the task at once, without retries,
    with :func:`~daily_mlops.orchestration.naming.missing_upstream_message`.
    """

    def execute(self, context: Any) -> None:
        announce_logical_date(context)
        super().execute(context)

    def poke(self, context: Any) -> bool:
        logical_date = logical_date_of(context, f"there is no {self.external_dag_id} run to wait for")
        if context["ti"].get_dr_count(dag_id=self.external_dag_id, logical_dates=[logical_date]) == 0:
            raise AirflowFailException(missing_upstream_message(self.dag_id, self.external_dag_id, logical_date))
        return super().poke(context)


class PreviousDaySensor(BaseSensorOperator):
    """Wait until the previous logical date's DAG runs have all finished: the day's champion is what it deployed.

    Each poke asks the execution API for this DAG's previous run (``ti.get_previous_dagrun``: the latest
    run with an earlier logical date, any run type: scheduled, manual, backfill) and counts the runs of
    ``downstream_dag_ids`` at its logical date, finished and not
    (``ti.get_dr_count``); :func:`daily_mlops.decisions.previous_day_pending` decides. No earlier run: done
    at once. Built by :func:`daily_mlops.orchestration.dags.previous_day_sensor` with ``depends_on_past``,
    so the previous run's own wait must have succeeded too: by induction every earlier day has finished.
    A previous run still queued behind this one can never start (``max_active_runs=1``): the sensor fails at
    once with :func:`daily_mlops.decisions.previous_day_deadlock`'s message instead of waiting for its timeout.

    Parameters
    ----------
    downstream_dag_ids : sequence of str
        The DAGs whose runs the previous day's data run created (evaluation, deployment).
    **kwargs
        As ``BaseSensorOperator`` (``poke_interval``, ``timeout``, ``mode``, ``depends_on_past``).
    """

    def __init__(self, *, downstream_dag_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.downstream_dag_ids = tuple(downstream_dag_ids)

    def execute(self, context: Any) -> Any:
        announce_logical_date(context)
        return super().execute(context)

    def poke(self, context: Any) -> bool:
        from daily_mlops.decisions import FINISHED_RUN_STATES, previous_day_deadlock, previous_day_pending

        ti = context["ti"]
        previous = ti.get_previous_dagrun()
        if previous is None or previous.logical_date is None:
            self.log.info("no %s run before this logical date: nothing to wait for", self.dag_id)
            return True
        when = previous.logical_date
        counts = {dag_id: (ti.get_dr_count(dag_id=dag_id, logical_dates=[when]),
                           ti.get_dr_count(dag_id=dag_id, logical_dates=[when], states=list(FINISHED_RUN_STATES)))
                  for dag_id in self.downstream_dag_ids}
        state = getattr(previous.state, "value", previous.state)
        this_run = context["dag_run"]
        deadlock = previous_day_deadlock(previous.run_id, str(state),
                                         str(getattr(previous.run_type, "value", previous.run_type)),
                                         str(getattr(this_run.run_type, "value", this_run.run_type)))
        if deadlock is not None:
            raise AirflowFailException(deadlock)
        pending = previous_day_pending(str(state), counts)
        if pending:
            self.log.info("waiting for the previous logical date %s (run %s): %s", when.isoformat(),
                          previous.run_id, "; ".join(pending))
            return False
        self.log.info("the previous logical date %s has finished (run %s %s; runs at that date, finished/all: %s)",
                      when.isoformat(), previous.run_id, state,
                      ", ".join(f"{d} {f}/{n}" for d, (n, f) in counts.items()))
        return True
