"""What ``daily-mlops run`` shows and writes: the summary row, the live task lines, the run's log file."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from daily_mlops.cli.output import summary_table
from daily_mlops.orchestration.progress import MARKER, RunLog, RunProgress, ended_tasks, task_traceback
from daily_mlops.orchestration.runner import DagRunOutcome, DayOutcome, day_story

DAY = dt.date(2026, 11, 6)
ALERT_SUMMARY = {
    "logical_date": "2026-11-06", "f1_threshold": 1.5, "champion_version": 5, "champion_f1": 0.4444,
    "retrain_attempts": 3, "versions_tried": [5, 6, 7, 8], "best_f1": 0.4468,
    "alert": "Model performance below threshold on 2026-11-06: ...", "alert_type": "MODEL_PERFORMANCE_FAILURE",
    "deployed_version": None, "deployment_status": None, "live_version": 5,
}


def _alert_day() -> DayOutcome:
    return DayOutcome(logical_date=DAY, summary=dict(ALERT_SUMMARY), runs=[
        DagRunOutcome("data_pipeline_dag", "success", {"generate_data": "success"}),
        DagRunOutcome("model_evaluation_pipeline", "failed",
                      {"evaluate_model": "success", "send_alert": "failed", "send_evaluation_results": "skipped"}),
        DagRunOutcome("model_deployment_pipeline", "success", {"wait_for_evaluation": "skipped"}),
    ])


def _text(renderable) -> str:
    console = Console(record=True, width=400, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_alert_row_names_the_alert_the_best_f1_against_the_threshold_and_the_version_kept() -> None:
    """An alert day's outcome cell: alert type, best F1 < threshold, nothing deployed, the version kept; no failure."""
    outcome = _alert_day()
    assert outcome.as_designed
    text = _text(summary_table([outcome]))
    assert "ALERT MODEL_PERFORMANCE_FAILURE: best F1 0.4468 < threshold 1.5000 after 3 retraining attempt(s)" in text
    assert "versions tried 5, 6, 7, 8; nothing deployed, the deployed model stays v5" in text
    assert "UNEXPECTED" not in text


def test_unexpected_failure_row_names_the_failed_task_not_its_upstream_failed_followers() -> None:
    """A day with a failed data task is flagged with that task; upstream_failed tasks are not listed."""
    outcome = DayOutcome(logical_date=DAY, summary={"logical_date": "2026-11-06", "live_version": None}, runs=[
        DagRunOutcome("data_pipeline_dag", "failed", {"generate_data": "failed", "preprocess_data": "upstream_failed"}),
    ])
    text = _text(summary_table([outcome]))
    assert "FAILED: data_pipeline_dag.generate_data: see the run log;" in text
    assert "preprocess_data" not in text and "no model version is deployed yet" in text


def _gate_day(data_tasks: dict) -> DayOutcome:
    reason = ("data-quality gate failed for batch-2026-11-06: 1 check(s) past the floor: purpose "
              "unseen-category share 0.800 > 0.05 (quality_max_unseen_share)")
    return DayOutcome(logical_date=DAY, runs=[
        DagRunOutcome("data_pipeline_dag", "failed", data_tasks),
        DagRunOutcome("model_evaluation_pipeline", "failed",
                      {"wait_for_data": "failed", "load_latest_model": "upstream_failed",
                       "send_alert": "upstream_failed"}),
        DagRunOutcome("model_deployment_pipeline", "failed",
                      {"wait_for_evaluation": "failed", "deploy_model": "upstream_failed"}),
    ], summary={"logical_date": "2026-11-06", "live_version": 5, "quality_status": "failed", "quality_reason": reason})


def test_a_day_stopped_by_the_gate_is_an_outcome_not_an_error() -> None:
    """check_data_quality failed and the sensors after it: as designed (exit 0), the row says the gate stopped it;
    another failed data task next to it is still an unexpected failure."""
    outcome = _gate_day({"preprocess_data": "success", "check_data_quality": "failed",
                         "store_processing_metadata": "upstream_failed"})
    assert outcome.stopped_by_gate and outcome.as_designed
    text = _text(summary_table([outcome]))
    assert "STOPPED by the data-quality gate: data-quality gate failed for batch-2026-11-06" in text
    assert "purpose unseen-category share 0.800 > 0.05" in text and "UNEXPECTED" not in text
    assert day_story(outcome.summary).startswith("the data-quality gate stopped 2026-11-06: ")
    broken = _gate_day({"preprocess_data": "failed", "check_data_quality": "failed"})
    assert not broken.stopped_by_gate and not broken.as_designed


def test_a_crashed_gate_task_without_a_verdict_is_an_unexpected_failure() -> None:
    """check_data_quality failed but recorded no verdict (processing_metadata.quality.status is not "failed": it
    crashed, e.g. inside its fidelity report): not stopped by the gate, not as designed (exit 1), and the
    summary row names the task as an unexpected failure. The same runs with a recorded failed verdict are designed."""
    tasks = {"preprocess_data": "success", "check_data_quality": "failed",
             "store_processing_metadata": "upstream_failed"}
    for recorded in (None, "passed"):
        crashed = _gate_day(dict(tasks))
        crashed.summary.update(quality_status=recorded, quality_reason=None)
        assert not crashed.stopped_by_gate and not crashed.as_designed
        text = _text(summary_table([crashed]))
        assert "FAILED: data_pipeline_dag.check_data_quality" in text and "STOPPED" not in text
    crashed.summary = {"logical_date": "2026-11-06", "live_version": 5}  # no quality key at all
    assert not crashed.stopped_by_gate and not crashed.as_designed
    verdict = _gate_day(dict(tasks))
    assert verdict.summary["quality_status"] == "failed" and verdict.stopped_by_gate and verdict.as_designed


def test_day_story_of_an_alert_and_of_a_deployment() -> None:
    """The runner's one-line story says which version stays deployed on an alert day, and what was deployed."""
    assert day_story(ALERT_SUMMARY) == (
        "evaluation for 2026-11-06 ended in an alert (MODEL_PERFORMANCE_FAILURE); the deployed model stays v5")
    deployed = {**ALERT_SUMMARY, "alert": None, "deployment_status": "deployed", "deployed_version": 6}
    assert day_story(deployed) == "2026-11-06: v6 approved and deployed"


def test_day_story_tells_the_evidence_of_the_deployed_version_read_from_mongodb(mock_db) -> None:
    """After a day the console says what the deployed version is and why, from its performance_metrics record: the
    deciding validation F1, its paired interval against the baseline, and the test and real-holdout figures that
    chose nothing, next to the champion's real-holdout figures."""
    from daily_mlops.orchestration.runner import summarise_day
    from daily_mlops.storage.events import record_deployment, record_performance

    day = dt.date(2026, 11, 2)
    common = {"logical_date": day, "model_name": "tabtransformer", "f1_threshold": 0.6386, "batch_id": "b",
              "run_id": "day__2026-11-02", "split": "validation"}
    record_performance(mock_db, model_version=1, metrics={"f1": 0.6187, "roc_auc": 0.81}, attempt=0, passed=False,
                       stage="champion", reference={"f1": 0.5357, "roc_auc": 0.7779}, **common)
    record_performance(mock_db, model_version=4, metrics={"f1": 0.6694, "roc_auc": 0.87}, attempt=2, passed=True,
                       stage="finetuned", parent_version=3, test={"f1": 0.6925},
                       reference={"f1": 0.5816, "roc_auc": 0.7666},
                       champion={"champion_version": 2, "delta": 0.0376, "interval": [0.0115, 0.0643]}, **common)
    record_deployment(mock_db, {"logical_date": "2026-11-02", "model_version": 4, "status": "deployed"})
    story = day_story(summarise_day(mock_db, day))
    assert story == ("2026-11-02: v4 approved and deployed (finetuned from v3; validation F1 0.6694 >= floor 0.6386; "
                     "ΔF1 +0.0376 [+0.0115, +0.0643] 95% vs v2; test F1 0.6925; real holdout F1 0.5816 ROC-AUC 0.7666 "
                     "(champion v1: F1 0.5357 ROC-AUC 0.7779))")


def test_progress_prints_the_alert_as_an_outcome_and_marks_each_task_in_the_log(tmp_path: Path) -> None:
    """send_alert's failure shows as 'alert raised' with its reason, a real failure with its error; markers logged."""
    out = io.StringIO()
    log_path = tmp_path / "run.log"
    with open(log_path, "a", encoding="utf-8") as log_file:
        run_log = RunLog(path=log_path, terminal=out, file=log_file)
        with RunProgress(Console(file=out, width=200), run_log) as progress:
            progress.day_started(DAY, {"f1_threshold": 1.5})
            progress.dag_started("model_evaluation_pipeline")
            progress.task_started("model_evaluation_pipeline", "evaluate_model", 1)
            progress.task_finished("model_evaluation_pipeline", "evaluate_model", "success", None)
            progress.task_started("model_evaluation_pipeline", "send_alert", 1)
            progress.task_finished("model_evaluation_pipeline", "send_alert", "failed",
                                   RuntimeError("MODEL_PERFORMANCE_FAILURE on 2026-11-06: best F1 0.4468 < 1.5"))
            progress.task_started("model_evaluation_pipeline", "retrain_attempt_1", 1)
            progress.task_finished("model_evaluation_pipeline", "retrain_attempt_1", "failed", KeyError("f1"))
            progress.dag_finished(_alert_day().runs[1])
            progress.day_finished(_alert_day())
    text = out.getvalue()
    assert "! send_alert" in text and "alert raised" in text
    assert "MODEL_PERFORMANCE_FAILURE on 2026-11-06: best F1 0.4468 < 1.5" in text
    assert "RuntimeError" not in text  # the alert's reason, not an exception report
    assert "✗ retrain_attempt_1" in text and "KeyError: 'f1'" in text
    assert "send_alert raised the alert and failed the run, as designed" in text
    assert "the deployed model stays v5" in text and "Traceback" not in text
    assert ended_tasks(log_path, DAY) == [("model_evaluation_pipeline", "evaluate_model"),
                                          ("model_evaluation_pipeline", "send_alert"),
                                          ("model_evaluation_pipeline", "retrain_attempt_1")]
    assert f"{MARKER} 2026-11-06 model_evaluation_pipeline.send_alert started (try 1)" in log_path.read_text()


LOG = f"""2026-11-29T20:24:00.000000Z [info     ] something before
{MARKER} 2026-11-06 data_pipeline_dag.generate_data started (try 1)
2026-11-29T20:24:01.000000Z [info     ] generated batch-2026-11-06
{MARKER} 2026-11-06 data_pipeline_dag.generate_data ended: success after 1.0 s
{MARKER} 2026-11-06 data_pipeline_dag.preprocess_data started (try 1)
2026-11-29T20:24:02.000000Z [error    ] Task failed with exception     [task]
Traceback (most recent call last):
  File "a.py", line 1, in f
    g()
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "b.py", line 2, in h
daily_mlops.errors.SchemaError: column 'age' is missing
2026-11-29T20:24:03.000000Z [info     ] ::group::Post Execute
{MARKER} 2026-11-06 data_pipeline_dag.preprocess_data ended: failed after 0.5 s
2026-11-29T20:24:04.000000Z [error    ] Task failed with exception     [task]
Traceback (most recent call last):
ValueError: outside any task
"""


def test_task_traceback_reads_the_failed_tasks_whole_chain_from_its_section(tmp_path: Path) -> None:
    """The traceback comes from the task's own section, with its log line and the chained exception."""
    path = tmp_path / "run.log"
    path.write_text(LOG, encoding="utf-8")
    trace = task_traceback(path, DAY, "data_pipeline_dag", "preprocess_data")
    lines = trace.splitlines()
    assert lines[0].endswith("Task failed with exception     [task]")
    assert lines[1] == "Traceback (most recent call last):" and "KeyError: 'x'" in lines
    assert lines[-1] == "daily_mlops.errors.SchemaError: column 'age' is missing"
    assert "ValueError" not in trace and "Post Execute" not in trace
    assert task_traceback(path, DAY, "data_pipeline_dag", "generate_data") is None
    # No markers for the task: the file's last traceback.
    fallback = task_traceback(path, DAY, "model_evaluation_pipeline", "evaluate_model")
    assert fallback.endswith("ValueError: outside any task")


CAPTURE_SCRIPT = """
import logging, os, sys
from pathlib import Path
from daily_mlops.orchestration.progress import capture_output

handler = logging.StreamHandler(sys.stdout)  # bound before the capture, like Airflow's
logging.getLogger("demo").addHandler(handler)
logging.getLogger("demo").setLevel(logging.INFO)
print("before")
with capture_output(Path(sys.argv[1])) as run_log:
    print("printed inside")
    logging.getLogger("demo").info("logged inside")
    os.write(2, b"written to fd 2\\n")
    run_log.mark("a marker")
    run_log.terminal.write("shown on the terminal\\n")
print("after")
"""


def test_capture_output_sends_stdout_stderr_and_early_handlers_to_the_file(tmp_path: Path) -> None:
    """Inside the block prints, logging bound earlier and fd-2 writes reach the log; the terminal stream does not."""
    log_path = tmp_path / "logs" / "run.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", CAPTURE_SCRIPT, str(log_path)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["before", "shown on the terminal", "after"]
    assert done.stderr == ""
    assert log_path.read_text().splitlines() == [
        "printed inside", "logged inside", "written to fd 2", f"{MARKER} a marker"]


def test_console_log_lines_carry_no_source_path() -> None:
    """The CLI console's log lines (bootstrap's progress, the demo) keep their time but not rich's 'cli.py:49'."""
    from daily_mlops.cli.output import console

    with console.capture() as captured:
        console.log("fitting the SDV GaussianCopulaSynthesizer on the reference data")
    text = captured.get()
    assert "fitting the SDV GaussianCopulaSynthesizer" in text and ".py:" not in text
