"""Faults at the orchestration level on the native stack, with real processes.

1. **A worker dies mid-retraining.** Retraining goes to ``worker-b`` only
   (``MLOPS_TRAINING_QUEUE=training``); a day forced to retrain (conf
   ``f1_threshold`` 1.5: no version can pass, so three attempts and an alert, the
   designed end of such a day) is triggered, and ``worker-b`` is SIGKILLed, with
   its task processes, while ``attempt_1.retrain_model`` runs. A replacement
   ``worker-b`` is started, as a restart policy would. The scheduler finds the
   task dead after the heartbeat timeout (30 s in conftest), retries it, and the
   day ends as an undisturbed alert day: three attempts, an alert, exactly one
   registered version per attempt.
2. **MongoDB stops for 20 s** while ``generate_data`` runs; the server is
   restarted on the same port and storage. Pymongo's server selection and
   Airflow's task retries carry the day to the end an undisturbed day has
   (the three runs successful, the day's batch stored once), and
   ``daily-mlops doctor`` exits 0 (no orphan GridFS chunks, directory and
   registry agree).

Each prints its recovery time and the final state. About 6-7 minutes after the
stack's startup (two retry delays of 1 min): ``make test-faults`` runs them
(marker ``stack_faults``), not ``make test``.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = [pytest.mark.stack, pytest.mark.stack_faults, pytest.mark.slow]

KILL_DAY = dt.date(2026, 11, 2)
MONGO_DAY = dt.date(2026, 11, 3)
DAY_TIMEOUT = 12 * 60
MONGO_DOWN_SECONDS = 20
EVALUATION = "model_evaluation_pipeline"


def _versions_of(db, day: dt.date) -> list[dict]:
    return [d for d in ModelRegistry(db).list(MODEL_NAME) if d.get("logical_date") == day.isoformat()]


def test_a_worker_killed_mid_retraining_is_replaced_and_the_day_ends_as_designed(stack) -> None:
    """SIGKILL worker-b during attempt_1.retrain_model; a new worker-b; the task is failed by the heartbeat
    timeout, retried and finished; the day ends with 3 attempts, an alert and one version per attempt."""
    run_id = stack.trigger(KILL_DAY, conf={"f1_threshold": 1.5})
    running = stack.wait_for_task(EVALUATION, run_id, "attempt_1.retrain_model", ("running", "success", "failed"),
                                  timeout=6 * 60)
    assert running.get("state") == "running", f"never caught attempt_1.retrain_model running: {running}"
    assert running["hostname"] == "worker-b", running
    stack.running.kill("worker-b")
    killed_at = time.monotonic()
    stack.running.start_worker("worker-b", ["default", "training"])

    states = stack.wait_for_day(run_id, timeout=DAY_TIMEOUT)
    recovery = time.monotonic() - killed_at
    retrain = stack.task(EVALUATION, run_id, "attempt_1.retrain_model")
    db = stack.db
    alert = db["alerts"].find_one({"logical_date": KILL_DAY.isoformat()})
    versions = _versions_of(db, KILL_DAY)
    per_attempt = {}
    for doc in versions:
        per_attempt.setdefault(doc.get("attempt"), []).append(doc["model_version"])
    print(f"FAULT worker-kill: recovered in {recovery:.0f} s after the SIGKILL; final state {states}; "
          f"attempt_1.retrain_model try {retrain.get('try_number')} {retrain.get('state')} on "
          f"{retrain.get('hostname')}; alert attempts {alert and alert['retrain_attempts']}; "
          f"versions per attempt {per_attempt}")
    assert states["data_pipeline_dag"] == "success"
    assert states[EVALUATION] == "failed"  # an alert day's designed end: send_alert fails the run
    assert states["model_deployment_pipeline"] == "success"
    tasks = stack.task_instances(EVALUATION, run_id)
    assert tasks["send_alert"]["state"] == "failed", tasks["send_alert"]
    assert all(tasks[f"attempt_{a}.retrain_model"]["state"] == "success" for a in (1, 2, 3))
    assert retrain["try_number"] >= 2, retrain  # the killed try was failed and retried
    assert alert is not None and alert["retrain_attempts"] == 3
    assert len(alert["model_versions_tried"]) == 5  # the champion, its recalibration, three attempts
    assert sorted(per_attempt) == [0, 1, 2, 3], per_attempt  # 0: the recalibration
    assert all(len(v) == 1 for v in per_attempt.values()), per_attempt
    deployment = stack.task_instances("model_deployment_pipeline", run_id)
    assert {ti["state"] for ti in deployment.values()} == {"skipped"}, deployment


def test_mongodb_stopped_for_20_s_during_generate_data_the_day_still_ends_as_designed(stack) -> None:
    """Stop the MongoDB server while generate_data runs, start it again 20 s later on the same port and storage:
    the three runs succeed, the day's batch is stored once, and doctor exits 0."""
    run_id = stack.trigger(MONGO_DAY)
    running = stack.wait_for_task("data_pipeline_dag", run_id, "generate_data", ("running", "success", "failed"),
                                  timeout=3 * 60, every=0.2)
    assert running.get("state") == "running", f"never caught generate_data running: {running}"
    stack.mongo.stop()
    stopped_at = time.monotonic()
    time.sleep(MONGO_DOWN_SECONDS)
    stack.mongo.start()
    states = stack.wait_for_day(run_id, timeout=DAY_TIMEOUT)
    recovery = time.monotonic() - stopped_at
    generate = stack.task("data_pipeline_dag", run_id, "generate_data")
    doctor = stack.doctor()
    db = stack.db
    batches = db["processing_metadata"].count_documents({"logical_date": MONGO_DAY.isoformat()})
    print(f"FAULT mongodb-restart: day finished {recovery:.0f} s after the stop ({MONGO_DOWN_SECONDS} s down); "
          f"final state {states}; generate_data try {generate.get('try_number')} {generate.get('state')}; "
          f"processing_metadata {batches}; doctor exit {doctor.returncode}")
    assert states == {d: "success" for d in states}, {
        d: {t: ti["state"] for t, ti in stack.task_instances(d, run_id).items()} for d in states}
    assert batches == 1
    assert db["processing_metadata"].find_one({"logical_date": MONGO_DAY.isoformat()})["n_rows"] == 2000
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-2000:]
