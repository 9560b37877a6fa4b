"""model_evaluation_pipeline: score the champion; retrain up to three times; alert when all fail."""

from __future__ import annotations

from airflow.sdk import Label, Param, TriggerRule, dag, task

from daily_mlops.decisions import F1_THRESHOLD_MAX
from daily_mlops.orchestration.dags import (
    DATA_DAG_ID, EVALUATION_DAG_ID, MAX_ATTEMPTS, SCHEDULE, START_DATE, TAGS, default_args, parse_time_settings,
    upstream_sensor,
)
from daily_mlops.orchestration.notifiers import alert_notifiers

SETTINGS = parse_time_settings()

DOC_MD = """
### model_evaluation_pipeline
Waits for the day's `data_pipeline_dag`, loads the champion (deployed, else newest approved version),
scores it on the day's held-out test split (F1 of the positive class) and branches:

* F1 >= `f1_threshold` -> **send_evaluation_results** (the version is approved for deployment);
* otherwise **retrain_attempt_1..3**: each fine-tunes the best model so far on the day's fine-tune split,
  registers a new model version with lineage, evaluates it and branches again;
* when the last allowed attempt fails -> **send_alert** writes a `MODEL_PERFORMANCE_FAILURE` alert,
  calls the notifiers and fails the run.

Params `f1_threshold` (0..2; above 1 forces the alert path; `evaluate_model` refuses NaN) and
`max_retrain_attempts` override `MLOPS_F1_THRESHOLD` and `MLOPS_MAX_RETRAIN_ATTEMPTS` for one run.
Every evaluation is in `performance_metrics` and `evaluation_events`.
"""


@dag(
    dag_id=EVALUATION_DAG_ID, schedule=SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "evaluation"], doc_md=DOC_MD,
    params={
        "f1_threshold": Param(SETTINGS.f1_threshold, type="number", minimum=0, maximum=F1_THRESHOLD_MAX,
                              description="F1 (positive class) a model must reach; above 1 forces the alert path."),
        "max_retrain_attempts": Param(SETTINGS.max_retrain_attempts, type="integer", minimum=0,
                                      maximum=MAX_ATTEMPTS, description="Fine-tuning attempts before the alert."),
    },
)
def model_evaluation_pipeline():
    wait_for_data = upstream_sensor("wait_for_data", external_dag_id=DATA_DAG_ID,
                                    external_task_id="store_processing_metadata")

    @task
    def load_latest_model() -> dict:
        from daily_mlops.loop.evaluation import load_champion
        from daily_mlops.settings import load_settings

        return load_champion(load_settings())

    @task
    def evaluate_model(model: dict, params: dict, **context) -> dict:
        from daily_mlops.loop.evaluation import evaluate_model
        from daily_mlops.settings import load_settings

        return evaluate_model(load_settings(), model_version=model["model_version"],
                              logical_date=context["logical_date"], f1_threshold=params["f1_threshold"], attempt=0,
                              run_id=context["run_id"])

    def check_performance(attempt: int):
        @task.branch(task_id="check_model_performance" if attempt == 0 else f"check_attempt_{attempt}")
        def check(result: dict, params: dict) -> str:
            from daily_mlops.decisions import next_step, task_for_step

            step = next_step(result["f1"], params["f1_threshold"], attempt, params["max_retrain_attempts"])
            return task_for_step(step, attempt, MAX_ATTEMPTS)

        return check

    def retrain_attempt(attempt: int):
        @task(task_id=f"retrain_attempt_{attempt}", queue=SETTINGS.training_queue)
        def retrain(*previous: dict, params: dict, **context) -> dict:
            from daily_mlops.loop.evaluation import retrain_model
            from daily_mlops.settings import load_settings

            return retrain_model(load_settings(), logical_date=context["logical_date"], attempt=attempt,
                                 previous=list(previous), f1_threshold=params["f1_threshold"],
                                 run_id=context["run_id"])

        return retrain

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_evaluation_results(params: dict, **context) -> dict:
        from daily_mlops.loop.evaluation import send_evaluation_results
        from daily_mlops.settings import load_settings

        return send_evaluation_results(load_settings(), logical_date=context["logical_date"],
                                       f1_threshold=params["f1_threshold"], run_id=context["run_id"])

    # none_failed_min_one_success: with max_retrain_attempts < 3 the unused attempts are skipped.
    @task(on_failure_callback=alert_notifiers(), retries=0, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_alert(*results: dict | None, params: dict, **context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from daily_mlops.loop.evaluation import send_alert
        from daily_mlops.settings import load_settings

        alert = send_alert(load_settings(), logical_date=context["logical_date"], results=list(results),
                           f1_threshold=params["f1_threshold"], dag_id=context["dag"].dag_id,
                           run_id=context["run_id"])
        raise AirflowFailException(alert["message"])

    model = load_latest_model()
    wait_for_data >> model
    results = [evaluate_model(model)]
    checks = []
    for attempt in range(MAX_ATTEMPTS + 1):
        check = check_performance(attempt)(results[-1])
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
