"""The day-run trigger: a thin subclass of the standard provider's TriggerDagRunOperator.

:class:`DayRunTrigger` creates a downstream DAG's run for this logical date
unless one exists (under any run id), with run id ``day__<date>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunLink, TriggerDagRunOperator
from airflow.sdk.exceptions import AirflowSkipException

from daily_mlops.orchestration.naming import announce_logical_date
from daily_mlops.orchestration.operators import logical_date_of

__all__ = ["DayRunTrigger"]


class _DayRunLink(TriggerDagRunLink):
    """The provider's "Triggered DAG" link, empty when the task created no run.

    Airflow computes extra links when a task finishes; the provider's link
    reads the ``trigger_run_id`` XCom, which a skipped trigger never pushed,
    and the task SDK logs that 404 as an error.
    """

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if getattr(operator, "existing_run", False):
            return ""
        return super().get_link(operator, ti_key=ti_key)


class DayRunTrigger(TriggerDagRunOperator):
    """Trigger ``trigger_dag_id`` for this run's logical date, once; forward the day's params as its conf.

    Parameters
    ----------
    forward_params : sequence of str
        Params of this run copied into the triggered run's conf (the params that DAG declares).
    **kwargs
        As ``TriggerDagRunOperator``.

    Notes
    -----
    ``skip_when_already_exists`` only sees a run with the same run id; a run
    at the same logical date under another id (the schedule of an older
    setup, the UI, REST) would make the metadata database refuse the new run
    (``dag_id, logical_date`` is unique). So :meth:`execute` counts the runs
    at this logical date first and skips when there is one.
    """

    operator_extra_links = [_DayRunLink()]

    def __init__(self, *, forward_params: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.forward_params = tuple(forward_params)
        self.existing_run = False

    def execute(self, context: Any) -> None:
        announce_logical_date(context)
        logical_date = logical_date_of(context, f"there is no date to trigger {self.trigger_dag_id} for")
        existing = context["ti"].get_dr_count(dag_id=self.trigger_dag_id, logical_dates=[logical_date])
        if existing:
            self.existing_run = True
            raise AirflowSkipException(
                f"{self.trigger_dag_id} already has a run for logical date {logical_date.isoformat()}; nothing to "
                f"trigger (to run it again, clear that run in the UI)"
            )
        params = context["params"]
        self.conf = {**(self.conf or {}), **{name: params[name] for name in self.forward_params if name in params}}
        self.log.info("triggering %s run %s for logical date %s with conf %s", self.trigger_dag_id,
                      self.trigger_run_id, logical_date.isoformat(), self.conf)
        super().execute(context)
