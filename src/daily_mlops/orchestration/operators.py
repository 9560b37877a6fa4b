"""The project's upstream-run sensor: a thin subclass of the standard provider's ExternalTaskSensor.

:class:`UpstreamRunSensor` fails at once, naming the DAG to trigger, when no
upstream DAG run exists for the logical date, then waits like
``ExternalTaskSensor``. The other operators live in
:mod:`~daily_mlops.orchestration.triggers` (``DayRunTrigger``) and
:mod:`~daily_mlops.orchestration.approval` (``DeploymentApproval``), so each
DAG file imports only the provider operators it uses.

Each logs the logical date first (:func:`daily_mlops.orchestration.dags.announce_logical_date`).
Airflow 3 tasks cannot query the metadata database: the DAG-run lookups use
the task SDK's ``RuntimeTaskInstance.get_dr_count`` (the execution API), as
the provider's own ExternalTaskSensor does on Airflow 3.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk.exceptions import AirflowFailException

from daily_mlops.orchestration.dags import announce_logical_date, missing_upstream_message

__all__ = ["UpstreamRunSensor", "logical_date_of"]


def logical_date_of(context: Any, what: str) -> Any:
    """The run's logical date; fails the task naming the fix when the run has none."""
    logical_date = context.get("logical_date")
    if logical_date is None:
        from daily_mlops.orchestration.dags import DATA_DAG_ID

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
    with :func:`~daily_mlops.orchestration.dags.missing_upstream_message`.
    """

    def execute(self, context: Any) -> None:
        announce_logical_date(context)
        super().execute(context)

    def poke(self, context: Any) -> bool:
        logical_date = logical_date_of(context, f"there is no {self.external_dag_id} run to wait for")
        if context["ti"].get_dr_count(dag_id=self.external_dag_id, logical_dates=[logical_date]) == 0:
            raise AirflowFailException(missing_upstream_message(self.dag_id, self.external_dag_id, logical_date))
        return super().poke(context)
