"""model_evaluation_pipeline: score the champion; recalibrate it; retrain up to three times; alert when all fail."""

from __future__ import annotations

from airflow.sdk import Label, TaskGroup, TriggerRule, dag, task

from daily_mlops.decisions import (
    CHECK_TASK,
    RECALIBRATE_TASK,
    RECALIBRATION_GROUP,
    RETRAIN_TASK,
    attempt_group_id,
    result_task_ids,
)
from daily_mlops.orchestration.dags import (
    DATA_DAG_ID,
    EVALUATION_DAG_ID,
    MAX_ATTEMPTS,
    START_DATE,
    TAGS,
    TRIGGERED_SCHEDULE,
    day_params,
    default_args,
    logs_logical_date,
    upstream_sensor,
)
from daily_mlops.orchestration.notifiers import alert_notifiers
from daily_mlops.settings.parse_time import parse_time_settings

SETTINGS = parse_time_settings()

DOC_MD = f"""
### model_evaluation_pipeline
Triggered by `{DATA_DAG_ID}` for its logical date (run id `day__<date>`); triggered alone for a date
without a data run, it fails at once and says to trigger `{DATA_DAG_ID}` instead.

Waits for the day's data, loads the champion (deployed, else newest approved version), scores it on the
day's rows and branches on its **validation** F1 (positive class). The day's rows each have one role:
`calibration` fits every candidate's calibrator and decision threshold, `validation` makes every decision,
`test` and the real holdout are reported only.

* F1 >= `f1_threshold` -> **send_evaluation_results** (the version is approved for deployment);
* otherwise **recalibration**: the champion with its calibrator and threshold chosen again on the day's
  calibration rows, registered as a new version (lineage kind `recalibrated`); the cheapest fix, tried first;
* then task group **attempt_1..3**: `retrain_model` fine-tunes the best version so far (validation F1) on
  the day's finetune split, calibrates it, registers a new model version with lineage (`parent_version`,
  `finetuned_from`) and judges it against the recalibrated champion.

A candidate passes only when (1) its validation F1 reaches the floor, (2) the paired bootstrap 95% interval
of its F1 gain over its baseline lies above `min_improvement`, and (3) on the real holdout its ROC-AUC is not
worse than the baseline's beyond `MLOPS_REAL_MARGIN` (same bootstrap). All three are recorded on it.
When the last allowed attempt fails -> **send_alert** writes a `MODEL_PERFORMANCE_FAILURE` alert,
calls the notifiers and fails the run.

XCom flows as a chain: each evaluation's result carries the best version so far (`best_version`,
`best_f1`), `versions_tried`, the attempt count (`attempt`) and the baseline (`baseline_version`), so each
task reads only the task before it.
Params `f1_threshold` (`auto`: the bootstrap model's held-out F1 minus `MLOPS_F1_TOLERANCE`, resolved from
the registry by each task; or 0..2, above 1 forces the alert path; `evaluate_model` refuses NaN),
`min_improvement` and `max_retrain_attempts` override `MLOPS_F1_THRESHOLD`, `MLOPS_MIN_IMPROVEMENT` and
`MLOPS_MAX_RETRAIN_ATTEMPTS` for one run.
Every evaluation is in `performance_metrics` and `evaluation_events`.
"""

RESULT = ("`model_version`, `attempt`, `stage`, `f1`, `roc_auc` (validation), `test_f1`, `real_f1`, `real_roc_auc`, "
          "`passed`, `f1_threshold` (resolved), `f1_threshold_note`, and the chain: `best_version`, `best_f1`, "
          "`versions_tried`, `champion_version`, `champion_f1`, `baseline_version`")
DOCS = {
    "wait_for_data": f"""
**Waits** for `{DATA_DAG_ID}.store_processing_metadata` at this logical date (poke every 30 s, reschedule
mode, timeout 6 h). Fails at once when no `{DATA_DAG_ID}` run exists for the date, or when that task failed.
**XCom**: none.
""",
    "load_latest_model": """
**Reads** the registry (`model_metadata`): the deployed version, else the newest approved one, and checks the
sha256 of its artifacts. **Writes** nothing. **XCom**: `model_name`, `model_version`, `status`, `sha256`.
""",
    "evaluate_model": f"""
**Reads** the champion's artifacts, the day's `validation` and `test` splits of `processed_data` and the real
holdout.
**Writes** `performance_metrics` (attempt 0) and an `evaluation_events` document `model_evaluated`.
**XCom**: {RESULT} (the chain starts here).
""",
    CHECK_TASK: """
**Decides** pass / retrain / alert from the previous result's `passed` (the floor, and for a candidate the
paired interval and the real-holdout guard) and `max_retrain_attempts` (`decisions.step_after`).
**Reads/writes** nothing. **XCom**: the id of the task it follows.
""",
    "recalibrate_champion": f"""
**Reads** the previous result (the champion's), the champion's artifacts, the day's `calibration`, `validation`
and `test` splits and the real holdout. **Writes** a new model version with the champion's weights and a
calibrator and decision threshold fitted on the calibration split (lineage kind `recalibrated`, parent the
champion, `comparisons` against the champion as deployed, status approved or rejected), `performance_metrics`
and `evaluation_events`; a rerun with the same batch reuses the version. **XCom**: {RESULT}, `parent_version`.
""",
    RETRAIN_TASK: f"""
**Reads** the previous result only (its `best_version` is the parent, its `baseline_version` the recalibrated
champion), those versions' artifacts, the day's `finetune`, `calibration`, `validation` and `test` splits and
the real holdout. **Writes** a new model version (`model_metadata`, GridFS `artifacts`, lineage, calibrator,
`comparisons`: floor, paired F1 interval, real-holdout guard; status approved or rejected), `training_events`,
`performance_metrics` and `evaluation_events`; a rerun with the same batch and parent reuses the version.
**XCom**: {RESULT}, `parent_version`.
""",
    "send_evaluation_results": """
**Reads** this run's `performance_metrics`. **Writes** the day's `evaluation_passed` event (its
`approved_version` is what `model_deployment_pipeline` deploys), resolves the day's open alerts, writes an
`evaluation_results` notification. **XCom**: `approved_version`, `f1`, `retrain_attempts`.
""",
    "send_alert": """
**Reads** the last result (XCom of the last evaluation that ran) and this run's `performance_metrics` for the
per-version details. **Writes** the `MODEL_PERFORMANCE_FAILURE` alert (`alerts`) and an `alert_raised`
event, then fails the run; its notifiers write `notifications` and call `MLOPS_ALERT_NOTIFIER`. **XCom**: none.
""",
}


@dag(
    dag_id=EVALUATION_DAG_ID, schedule=TRIGGERED_SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "evaluation"], doc_md=DOC_MD,
    description="Scores the champion on the day's data, retrains up to 3 times, then approves a version or alerts.",
    params=day_params(SETTINGS, ("f1_threshold", "min_improvement", "max_retrain_attempts")),
)
def model_evaluation_pipeline():
    wait_for_data = upstream_sensor("wait_for_data", external_dag_id=DATA_DAG_ID,
                                    external_task_id="store_processing_metadata", doc_md=DOCS["wait_for_data"])

    @task(doc_md=DOCS["load_latest_model"])
    @logs_logical_date
    def load_latest_model() -> dict:
        from daily_mlops.loop.evaluation import load_champion
        from daily_mlops.settings import load_settings

        return load_champion(load_settings())

    @task(doc_md=DOCS["evaluate_model"])
    @logs_logical_date
    def evaluate_model(model: dict, params: dict, **context) -> dict:
        from daily_mlops.loop.evaluation import evaluate_model
        from daily_mlops.settings import load_settings

        return evaluate_model(load_settings(), model_version=model["model_version"],
                              logical_date=context["logical_date"], f1_threshold=params["f1_threshold"], attempt=0,
                              run_id=context["run_id"])

    def check_performance(attempt: int, *, recalibrated: bool = True):
        @task.branch(task_id=CHECK_TASK, doc_md=DOCS[CHECK_TASK])
        @logs_logical_date
        def check(result: dict, params: dict) -> str:
            from daily_mlops.decisions import step_after, task_for_step

            step = step_after(result, params["max_retrain_attempts"])
            return task_for_step(step, attempt, MAX_ATTEMPTS, recalibrated=recalibrated)

        return check

    @task(task_id=RECALIBRATE_TASK.split(".")[-1], doc_md=DOCS["recalibrate_champion"])
    @logs_logical_date
    def recalibrate_champion(previous: dict, params: dict, **context) -> dict:
        from daily_mlops.loop.evaluation import recalibrate_champion
        from daily_mlops.settings import load_settings

        return recalibrate_champion(load_settings(), logical_date=context["logical_date"], previous=previous,
                                    f1_threshold=params["f1_threshold"], min_improvement=params["min_improvement"],
                                    run_id=context["run_id"])

    def retrain_attempt(attempt: int):
        @task(task_id=RETRAIN_TASK, doc_md=DOCS[RETRAIN_TASK], queue=SETTINGS.training_queue)
        @logs_logical_date
        def retrain(previous: dict, params: dict, **context) -> dict:
            from daily_mlops.loop.evaluation import retrain_model
            from daily_mlops.settings import load_settings

            return retrain_model(load_settings(), logical_date=context["logical_date"], attempt=attempt,
                                 previous=previous, f1_threshold=params["f1_threshold"],
                                 min_improvement=params["min_improvement"], run_id=context["run_id"])

        return retrain

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, doc_md=DOCS["send_evaluation_results"])
    @logs_logical_date
    def send_evaluation_results(params: dict, **context) -> dict:
        from daily_mlops.loop.evaluation import send_evaluation_results
        from daily_mlops.settings import load_settings

        return send_evaluation_results(load_settings(), logical_date=context["logical_date"],
                                       f1_threshold=params["f1_threshold"], run_id=context["run_id"])

    # none_failed_min_one_success: with max_retrain_attempts < 3 the unused attempts are skipped.
    @task(on_failure_callback=alert_notifiers(), retries=0, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
          doc_md=DOCS["send_alert"])
    @logs_logical_date
    def send_alert(params: dict, **context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from daily_mlops.decisions import last_result
        from daily_mlops.loop.evaluation import send_alert
        from daily_mlops.settings import load_settings

        results = context["ti"].xcom_pull(task_ids=result_task_ids(MAX_ATTEMPTS))
        alert = send_alert(load_settings(), logical_date=context["logical_date"], last=last_result(results),
                           f1_threshold=params["f1_threshold"], dag_id=context["dag"].dag_id,
                           run_id=context["run_id"])
        raise AirflowFailException(alert["reason"])

    model = load_latest_model()
    wait_for_data >> model
    result = evaluate_model(model)
    check = check_performance(0, recalibrated=False)(result)
    passed = send_evaluation_results()
    alert = send_alert()
    check >> Label("champion passes") >> passed
    check >> Label("max_retrain_attempts = 0: alert at once") >> alert
    with TaskGroup(RECALIBRATION_GROUP, tooltip="the champion recalibrated on the day's calibration rows, judged"):
        recalibrated = recalibrate_champion(result)  # XCom chain: the champion's result
        next_check = check_performance(0)(recalibrated)
    check >> Label("F1 below threshold: recalibrate the champion") >> recalibrated
    next_check >> Label("recalibrated champion passes") >> passed
    next_check >> Label("max_retrain_attempts = 0: alert") >> alert
    check, result = next_check, recalibrated
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with TaskGroup(attempt_group_id(attempt), tooltip=f"retraining attempt {attempt}: fine-tune, evaluate, check"):
            retrained = retrain_attempt(attempt)(result)  # XCom chain: the previous result only
            next_check = check_performance(attempt)(retrained)
        check >> Label("still below: fine-tune" if attempt == 1 else f"still below: attempt {attempt}") >> retrained
        next_check >> Label(f"attempt {attempt} passes") >> passed
        last = attempt == MAX_ATTEMPTS
        next_check >> Label(f"all {attempt} attempts failed: alert" if last else
                            f"max_retrain_attempts = {attempt}: alert") >> alert
        check, result = next_check, retrained


model_evaluation_pipeline()
