"""model_deployment_pipeline: deploy the day's approved model version, after a reviewer's approval if required."""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, TriggerRule, dag, task

from daily_mlops.orchestration.dags import (
    DATA_DAG_ID,
    DEPLOYMENT_DAG_ID,
    EVALUATION_DAG_ID,
    START_DATE,
    TAGS,
    TRIGGERED_SCHEDULE,
    approval_step,
    day_params,
    default_args,
    logs_logical_date,
    upstream_sensor,
)
from daily_mlops.orchestration.notifiers import log_skipped_deployment
from daily_mlops.settings.parse_time import parse_time_settings

SETTINGS = parse_time_settings()

DOC_MD = f"""
### model_deployment_pipeline
Triggered by `{DATA_DAG_ID}` for its logical date (run id `day__<date>`); triggered alone for a date
without an evaluation run, it fails at once and says to trigger `{DATA_DAG_ID}` instead.

1. **wait_for_evaluation** waits for the same logical date's `send_evaluation_results` in
   `{EVALUATION_DAG_ID}`. When evaluation ended in an alert that task is skipped, so this
   sensor (and the rest of the run) is skipped instead of waiting, and its log says which version
   stays deployed; it fails on a failed upstream and times out after 6 hours.
2. **wait_for_model_ready** waits until the approved version is in the registry with an intact sha256.
3. **validate_infra** loads the version as `daily-mlops serve` will, in a fresh process, scores the
   real holdout (the scores must equal those recorded at evaluation) and times single-row predictions;
   it refuses the version (fails, records `refused_by_infra_validation`, deploys nothing) when loading,
   the schema or the scores fail or the p95 latency exceeds `MLOPS_MAX_PREDICT_P95_MS`.
4. **approve_deployment** (only with param `require_approval`, default `MLOPS_REQUIRE_APPROVAL`): a
   reviewer approves or rejects the version under *Required actions*. Reject records a
   `deployment_events` document with status `rejected_by_reviewer` and deploys nothing; no answer
   within `MLOPS_APPROVAL_TIMEOUT_HOURS` fails the step. Without the param it is skipped.
5. **deploy_model** copies it atomically to `MLOPS_DEPLOYMENT_DIR` (`current_model.pth`,
   `current_model.json`, `VERSION`), marks it deployed and records a `deployment_events` document.
   Redeploying the deployed version is a recorded no-op.
6. **notify_deployment_complete** writes a `notifications` document.
"""

DOCS = {
    "wait_for_evaluation": f"""
**Waits** for `{EVALUATION_DAG_ID}.send_evaluation_results` at this logical date (poke every 30 s,
reschedule mode, timeout 6 h); skipped when that task was skipped (an alert day), fails when it failed or when
no `{EVALUATION_DAG_ID}` run exists for the date. **XCom**: none.
""",
    "wait_for_model_ready": """
**Reads** the day's `evaluation_passed` event and the registry; done when the approved version's artifacts
verify (a sha256 mismatch fails it). **Writes** nothing.
**XCom**: `model_version`, `sha256` (weights), `status`, `f1`, `f1_threshold`.
""",
    "validate_infra": """
**Loads** the approved version from the bytes `deploy_model` would write, staged in a temporary deployment
directory, in a fresh process with serve's loader; scores the family's real holdout through
`predict_proba` (schema check included) and times 50 single-row calls. **Writes** `infra_validation` on the
version (p95 latency in ms, artifact size in bytes, canary scores); on a refusal also a `deployment_events`
document (`refused_by_infra_validation`), and fails without retry, so nothing is deployed.
**XCom**: `model_version`, `status`, `check`, `reason`, `p95_ms`, `artifact_bytes`, `roc_auc`, `f1`.
""",
    "approve_deployment": """
**Asks** a reviewer (Required actions) to approve the version in `wait_for_model_ready`'s XCom; skipped when
param `require_approval` is false. **Writes** on Reject a `deployment_events` document
(`rejected_by_reviewer`) and skips `deploy_model`. **XCom**: `chosen_options`, `responded_by_user`,
`responded_at`.
""",
    "deploy_model": """
**Reads** the approved version's artifacts (sha256 checked) and the preprocessor.
**Writes** `current_model.pth`, `current_model.json` and `VERSION` in `MLOPS_DEPLOYMENT_DIR` (atomically),
registry statuses (deployed; the previous one retired) and a `deployment_events` document.
**XCom**: `model_version`, `status` (`deployed` or `already_deployed`), `deployment_path`, `sha256`.
""",
    "notify_deployment_complete": """
**Reads** `deploy_model`'s XCom. **Writes** a `deployment_complete` document in `notifications`.
**XCom**: `message`.
""",
}


@dag(
    dag_id=DEPLOYMENT_DAG_ID, schedule=TRIGGERED_SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "deployment"], doc_md=DOC_MD,
    description="Deploys the day's approved model version (after a reviewer's approval when required).",
    params=day_params(SETTINGS, ("require_approval",)),
)
def model_deployment_pipeline():
    wait_for_evaluation = upstream_sensor("wait_for_evaluation", external_dag_id=EVALUATION_DAG_ID,
                                          external_task_id="send_evaluation_results",
                                          doc_md=DOCS["wait_for_evaluation"],
                                          on_skipped_callback=log_skipped_deployment)

    @task.sensor(poke_interval=30, timeout=30 * 60, mode="reschedule", doc_md=DOCS["wait_for_model_ready"])
    @logs_logical_date
    def wait_for_model_ready(**context) -> PokeReturnValue:
        from daily_mlops.loop.deployment import model_ready
        from daily_mlops.settings import load_settings

        ready = model_ready(load_settings(), logical_date=context["logical_date"])
        return PokeReturnValue(is_done=ready is not None, xcom_value=ready)

    # retries=0: a refusal is a verdict on the version's files; clear the task to check again.
    @task(doc_md=DOCS["validate_infra"], retries=0)
    @logs_logical_date
    def validate_infra(ready: dict, **context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from daily_mlops.loop.infra_validation import validate_infra
        from daily_mlops.settings import load_settings

        result = validate_infra(load_settings(), logical_date=context["logical_date"],
                                model_version=ready["model_version"])
        if result["status"] == "refused":
            raise AirflowFailException(result["reason"])
        return result

    approve_deployment = approval_step(SETTINGS, ready_task_id="wait_for_model_ready",
                                       doc_md=DOCS["approve_deployment"])

    # none_failed_min_one_success: runs when approve_deployment is skipped because approval is off;
    # a Reject skips this task itself, and an alert day skips everything upstream.
    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, doc_md=DOCS["deploy_model"])
    @logs_logical_date
    def deploy_model(ready: dict, **context) -> dict:
        from daily_mlops.loop.deployment import deploy_model
        from daily_mlops.settings import load_settings

        return deploy_model(load_settings(), logical_date=context["logical_date"], model_version=ready["model_version"])

    @task(doc_md=DOCS["notify_deployment_complete"])
    @logs_logical_date
    def notify_deployment_complete(deployment: dict, **context) -> dict:
        from daily_mlops.loop.deployment import notify_deployment_complete
        from daily_mlops.settings import load_settings

        return notify_deployment_complete(load_settings(), logical_date=context["logical_date"],
                                          deployment=deployment)

    ready = wait_for_model_ready()
    validated = validate_infra(ready)
    wait_for_evaluation >> ready >> validated >> approve_deployment
    deployed = deploy_model(ready)
    [validated, approve_deployment] >> deployed
    notify_deployment_complete(deployed)


model_deployment_pipeline()
