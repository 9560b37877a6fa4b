"""model_evaluation_pipeline: score the champion; retrain up to three times; alert when all fail."""

from __future__ import annotations

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Label, Param, dag, task
from airflow.sdk import TriggerRule

from daily_mlops.dag_support import (
    default_args, DATA_DAG_ID, EVALUATION_DAG_ID, SCHEDULE, SENSOR_TIMEOUT, START_DATE, TAGS, alert_notifiers,
)
from daily_mlops.settings import load_settings

SETTINGS = load_settings()
#: Attempts unrolled as distinct tasks (Airflow DAGs cannot loop); the param can lower, not raise, it.
MAX_ATTEMPTS = 3

DOC_MD = """
### model_evaluation_pipeline
Waits for the day's `data_pipeline_dag`, loads the champion (deployed, else newest approved version),
scores it on the day's held-out test split (F1 of the positive class) and branches:

* F1 >= `f1_threshold` -> **send_evaluation_results** (the version is approved for deployment);
* otherwise **retrain_attempt_1..3**: each fine-tunes the best model so far on the day's fine-tune split,
  registers a new model version with lineage, evaluates it and branches again;
* when the last allowed attempt fails -> **send_alert** writes a `MODEL_PERFORMANCE_FAILURE` alert,
  calls the notifiers and fails the run.

Params `f1_threshold` and `max_retrain_attempts` override `MLOPS_F1_THRESHOLD` and
`MLOPS_MAX_RETRAIN_ATTEMPTS` for one run. Every evaluation is in `performance_metrics` and
`evaluation_events`.
"""


@dag(
    dag_id=EVALUATION_DAG_ID, schedule=SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "evaluation"], doc_md=DOC_MD,
    params={
        "f1_threshold": Param(SETTINGS.f1_threshold, type="number", minimum=0, maximum=2,
                              description="F1 (positive class) a model must reach; above 1 forces the alert path."),
        "max_retrain_attempts": Param(SETTINGS.max_retrain_attempts, type="integer", minimum=0,
                                      maximum=MAX_ATTEMPTS, description="Fine-tuning attempts before the alert."),
    },
)
def model_evaluation_pipeline():
    wait_for_data = ExternalTaskSensor(
        task_id="wait_for_data", external_dag_id=DATA_DAG_ID, external_task_id="store_processing_metadata",
        allowed_states=["success"], failed_states=["failed", "upstream_failed"], skipped_states=["skipped"],
        timeout=SENSOR_TIMEOUT, poke_interval=60, mode="reschedule",
    )

    @task
    def load_latest_model() -> dict:
        from daily_mlops.pipeline import load_latest_model

        return load_latest_model(load_settings())

    @task
    def evaluate_model(model: dict, params: dict, **context) -> dict:
        from daily_mlops.pipeline import evaluate_model

        return evaluate_model(load_settings(), version=model["version"], logical_date=context["logical_date"],
                              f1_threshold=params["f1_threshold"], attempt=0, run_id=context["run_id"])

    def check_performance(attempt: int, on_retrain: str):
        @task.branch(task_id="check_model_performance" if attempt == 0 else f"check_attempt_{attempt}")
        def check(result: dict, params: dict) -> str:
            from daily_mlops.pipeline import next_step

            step = next_step(result["f1"], params["f1_threshold"], attempt, params["max_retrain_attempts"])
            return {"pass": "send_evaluation_results", "retrain": on_retrain, "alert": "send_alert"}[step]

        return check

    def retrain_attempt(attempt: int):
        @task(task_id=f"retrain_attempt_{attempt}")
        def retrain(*previous: dict, params: dict, **context) -> dict:
            from daily_mlops.pipeline import retrain_model

            return retrain_model(load_settings(), logical_date=context["logical_date"], attempt=attempt,
                                 previous=list(previous), f1_threshold=params["f1_threshold"],
                                 run_id=context["run_id"])

        return retrain

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_evaluation_results(params: dict, **context) -> dict:
        from daily_mlops.pipeline import send_evaluation_results

        return send_evaluation_results(load_settings(), logical_date=context["logical_date"],
                                       f1_threshold=params["f1_threshold"], run_id=context["run_id"])

    # none_failed_min_one_success: with max_retrain_attempts < 3 the unused attempts are skipped.
    @task(on_failure_callback=alert_notifiers(SETTINGS), retries=0, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_alert(*results: dict | None, params: dict, **context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from daily_mlops.pipeline import send_alert

        alert = send_alert(load_settings(), logical_date=context["logical_date"], results=list(results),
                           f1_threshold=params["f1_threshold"], dag_id=context["dag"].dag_id,
                           run_id=context["run_id"])
        raise AirflowFailException(alert["message"])

    model = load_latest_model()
    wait_for_data >> model
    results = [evaluate_model(model)]
    checks = []
    for attempt in range(MAX_ATTEMPTS + 1):
        on_retrain = f"retrain_attempt_{attempt + 1}" if attempt < MAX_ATTEMPTS else "send_alert"
        check = check_performance(attempt, on_retrain)(results[-1])
        checks.append(check)
        if attempt < MAX_ATTEMPTS:
            retrained = retrain_attempt(attempt + 1)(*results)
            check >> Label(f"F1 below threshold: attempt {attempt + 1}") >> retrained
            results.append(retrained)
    passed = send_evaluation_results()
    for check in checks:
        check >> Label("F1 >= threshold") >> passed
    alert = send_alert(*results)
    for check in checks:
        check >> Label("attempts exhausted") >> alert


model_evaluation_pipeline()
