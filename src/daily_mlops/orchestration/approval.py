"""The human approval step: a thin subclass of the standard provider's HITL ApprovalOperator.

:class:`DeploymentApproval` is skipped unless the run's param
``require_approval`` is true, and records a reviewer's rejection.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from daily_mlops.orchestration.naming import announce_logical_date

__all__ = ["DeploymentApproval"]


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
            record_rejection(load_settings(), logical_date=context["logical_date"],
                             model_version=int(ready["model_version"]), reviewer=reviewer,
                             responded_at=event.get("responded_at"), dag_id=self.dag_id, run_id=context.get("run_id"))
            self.log.info("model version %s rejected by %s: recorded, nothing deployed", version, reviewer)
        try:
            return super().execute_complete(context, event)
        except HITLTimeoutError:
            hours = self.response_timeout.total_seconds() / 3600 if self.response_timeout else 0
            raise AirflowFailException(
                f"no reviewer answered within {hours:g} h (MLOPS_APPROVAL_TIMEOUT_HOURS): model version {version} "
                "was not deployed; clear this task to ask again"
            ) from None
