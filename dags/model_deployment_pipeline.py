"""model_deployment_pipeline: deploy the day's approved model version."""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, dag, task

from daily_mlops.orchestration.dags import (
    DEPLOYMENT_DAG_ID, EVALUATION_DAG_ID, SCHEDULE, START_DATE, TAGS, default_args, parse_time_settings,
    upstream_sensor,
)
from daily_mlops.orchestration.notifiers import log_skipped_deployment

SETTINGS = parse_time_settings()

DOC_MD = """
### model_deployment_pipeline
1. **wait_for_evaluation** waits for the same logical date's `send_evaluation_results` in
   `model_evaluation_pipeline`. When evaluation ended in an alert that task is skipped, so this
   sensor (and the rest of the run) is skipped instead of waiting, and its log says which version
   stays deployed; it fails on a failed upstream and times out after 6 hours.
2. **wait_for_model_ready** waits until the approved version is in the registry with an intact sha256.
3. **deploy_model** copies it atomically to `MLOPS_DEPLOYMENT_DIR` (`current_model.pth`,
   `current_model.json`, `VERSION`), marks it deployed and records a `deployment_events` document.
   Redeploying the deployed version is a recorded no-op.
4. **notify_deployment_complete** writes a `notifications` document.
"""


@dag(
    dag_id=DEPLOYMENT_DAG_ID, schedule=SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "deployment"], doc_md=DOC_MD,
)
def model_deployment_pipeline():
    wait_for_evaluation = upstream_sensor("wait_for_evaluation", external_dag_id=EVALUATION_DAG_ID,
                                          external_task_id="send_evaluation_results",
                                          on_skipped_callback=log_skipped_deployment)

    @task.sensor(poke_interval=30, timeout=30 * 60, mode="reschedule")
    def wait_for_model_ready(**context) -> PokeReturnValue:
        from daily_mlops.loop.deployment import model_ready
        from daily_mlops.settings import load_settings

        ready = model_ready(load_settings(), logical_date=context["logical_date"])
        return PokeReturnValue(is_done=ready is not None, xcom_value=ready)

    @task
    def deploy_model(ready: dict, **context) -> dict:
        from daily_mlops.loop.deployment import deploy_model
        from daily_mlops.settings import load_settings

        return deploy_model(load_settings(), logical_date=context["logical_date"], model_version=ready["model_version"])

    @task
    def notify_deployment_complete(deployment: dict, **context) -> dict:
        from daily_mlops.loop.deployment import notify_deployment_complete
        from daily_mlops.settings import load_settings

        return notify_deployment_complete(load_settings(), logical_date=context["logical_date"],
                                          deployment=deployment)

    ready = wait_for_model_ready()
    wait_for_evaluation >> ready
    notify_deployment_complete(deploy_model(ready))


model_deployment_pipeline()
