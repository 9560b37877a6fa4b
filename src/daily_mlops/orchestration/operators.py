"""The project's three Airflow operators: thin subclasses of the standard provider's.

* :class:`UpstreamRunSensor` (``ExternalTaskSensor``): fails at once, naming
  the DAG to trigger, when no upstream DAG run exists for the logical date.
* :class:`DayRunTrigger` (``TriggerDagRunOperator``): creates a downstream
  DAG's run for this logical date unless one exists (under any run id).
* :class:`DeploymentApproval` (HITL ``ApprovalOperator``): skipped unless the
  run's param ``require_approval`` is true; records a reviewer's rejection.

Each logs the logical date first (:func:`daily_mlops.orchestration.dags.announce_logical_date`).
Airflow 3 tasks cannot query the metadata database: the DAG-run lookups use
the task SDK's ``RuntimeTaskInstance.get_dr_count`` (the execution API), as
the provider's own ExternalTaskSensor does on Airflow 3.

Imported only by the factories of :mod:`daily_mlops.orchestration.dags`, i.e.
when a DAG file is parsed (no airflow import happens before that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunLink, TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from daily_mlops.orchestration.dags import announce_logical_date, missing_upstream_message

__all__ = ["DayRunTrigger", "DeploymentApproval", "UpstreamRunSensor"]


def _logical_date(context: Any, what: str) -> Any:
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

    Airflow 3's ``check_existence`` does nothing (STACK_NOTES), so a DAG
    triggered alone would poke until :data:`~daily_mlops.orchestration.dags.SENSOR_TIMEOUT`.
    Each poke first counts ``external_dag_id``'s runs at this logical date
    (``ti.get_dr_count``); none fails the task at once, without retries,
    with :func:`~daily_mlops.orchestration.dags.missing_upstream_message`.
    """

    def execute(self, context: Any) -> None:
        announce_logical_date(context)
        super().execute(context)

    def poke(self, context: Any) -> bool:
        logical_date = _logical_date(context, f"there is no {self.external_dag_id} run to wait for")
        if context["ti"].get_dr_count(dag_id=self.external_dag_id, logical_dates=[logical_date]) == 0:
            raise AirflowFailException(missing_upstream_message(self.dag_id, self.external_dag_id, logical_date))
        return super().poke(context)


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
        logical_date = _logical_date(context, f"there is no date to trigger {self.trigger_dag_id} for")
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


class DeploymentApproval(ApprovalOperator):
    """Ask a reviewer to approve the day's model version before ``deploy_model``; off unless ``require_approval``.

    * param ``require_approval`` false: skipped at once; ``deploy_model``
      (trigger rule ``none_failed_min_one_success``) deploys as without this step;
    * **Approve**: downstream runs;
    * **Reject**: ``ApprovalOperator`` skips ``deploy_model``; this records a
      ``deployment_events`` document with status ``rejected_by_reviewer``
      (:func:`daily_mlops.loop.deployment.record_rejection`);
    * no answer within ``response_timeout``: fails (no retry), deploying nothing.

    Parameters
    ----------
    ready_task_id : str
        The task whose XCom holds the version to approve (``model_version``).
    **kwargs
        As ``ApprovalOperator`` (``subject``, ``body``, ``response_timeout``...).
    """

    def __init__(self, *, ready_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready_task_id = ready_task_id

    def execute(self, context: Any) -> Any:
        announce_logical_date(context)
        if not context["params"].get("require_approval"):
            raise AirflowSkipException("param require_approval is false: deploy_model runs without a reviewer")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        announce_logical_date(context)
        ready = context["ti"].xcom_pull(task_ids=self.ready_task_id) or {}
        version = ready.get("model_version")
        if "error" not in event and list(event.get("chosen_options") or []) == [self.REJECT]:
            # Before super(): on Reject, ApprovalOperator skips deploy_model by raising (task SDK), so nothing
            # after that call would run.
            from daily_mlops.loop.deployment import record_rejection
            from daily_mlops.settings import load_settings

            user = event.get("responded_by_user") or {}
            reviewer = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user)
            record_rejection(load_settings(), logical_date=context["logical_date"], model_version=int(version),
                             reviewer=reviewer, responded_at=event.get("responded_at"), dag_id=self.dag_id,
                             run_id=context.get("run_id"))
            self.log.info("model version %s rejected by %s: recorded, nothing deployed", version, reviewer)
        try:
            return super().execute_complete(context, event)
        except HITLTimeoutError:
            hours = self.response_timeout.total_seconds() / 3600 if self.response_timeout else 0
            raise AirflowFailException(
                f"no reviewer answered within {hours:g} h (MLOPS_APPROVAL_TIMEOUT_HOURS): model version {version} "
                "was not deployed; clear this task to ask again"
            ) from None
