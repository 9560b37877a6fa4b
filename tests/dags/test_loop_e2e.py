"""End to end: the CLI runs the three DAGs with Airflow's dag.test against a real MongoDB-wire server.

Each step runs ``daily-mlops`` in a subprocess (its own Airflow home with a
SQLite metadata DB under a temporary MLOPS_HOME), pointed with
MLOPS_MONGO_URI at the session's SecantusDB server, with small model and
batch settings so the whole module takes a few minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

pytestmark = [pytest.mark.dags, pytest.mark.integration]

DAILY_ROWS = 1200
PASS_DAY, ALERT_DAY = "2026-03-01", "2026-03-02"


def _cli(mongo_uri: str, home: Path, db_name: str):
    """A function that runs ``daily-mlops`` in a subprocess with small settings against ``db_name``."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))},
        "MLOPS_HOME": str(home), "MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": db_name,
        "MLOPS_DAILY_ROWS": str(DAILY_ROWS), "MLOPS_NUM_LAYERS": "2", "MLOPS_PRETRAIN_EPOCHS": "1",
        "MLOPS_FINETUNE_EPOCHS": "2", "MLOPS_RETRAIN_EPOCHS": "1", "MLOPS_BATCH_SIZE": "128",
    }
    cli = Path(sys.executable).parent / "daily-mlops"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cli), *args], env=env, cwd=home, capture_output=True, text=True, timeout=900)

    return run


@pytest.fixture(scope="module")
def loop(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory):
    """A function that runs the CLI against a fresh database, and that database."""
    home = tmp_path_factory.mktemp("mlops_home")
    db_name = f"e2e_{uuid.uuid4().hex[:8]}"
    run = _cli(mongo_uri, home, db_name)
    client = MongoClient(mongo_uri, tz_aware=True)
    yield run, client[db_name], home
    client.drop_database(db_name)
    client.close()


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\nSTDOUT:\n{done.stdout[-4000:]}\nSTDERR:\n{done.stderr[-4000:]}"
    return done.stdout


def test_bootstrap_registers_version_1_once(loop):
    """bootstrap on MLOPS_MONGO_URI registers tabtransformer v1 (approved); a second run adds nothing."""
    run, db, _ = loop
    out = _ok(run("bootstrap"))
    assert "registered tabtransformer version 1" in out
    again = _ok(run("bootstrap"))
    assert "already exists" in again
    versions = list(db.model_metadata.find({"model_name": "tabtransformer"}))
    assert [(v["model_version"], v["status"]) for v in versions] == [(1, "approved")]
    assert db.model_metadata.count_documents({"model_name": "synthesizer"}) == 1
    assert db.model_metadata.count_documents({"model_name": "preprocessor"}) == 1


def test_passing_day_deploys(loop):
    """With a reachable threshold the champion passes and the deployment DAG deploys it."""
    run, db, home = loop
    out = _ok(run("run", "--date", PASS_DAY, "--f1-threshold", "0.0"))
    assert "deployed v1" in out
    assert db.processed_data.count_documents({"logical_date": PASS_DAY}) == DAILY_ROWS
    meta = db.processing_metadata.find_one({"logical_date": PASS_DAY})
    assert meta["status"] == "ready" and sum(meta["splits"].values()) == DAILY_ROWS
    assert db["raw_data.files"].count_documents({"filename": f"batch-{PASS_DAY}.csv"}) == 1
    event = db.deployment_events.find_one({"logical_date": PASS_DAY, "status": "deployed"})
    assert event["event_type"] == "model_deployed" and event["model_version"] == 1
    assert event["model_id"] == "tabtransformer:v1" and len(event["sha256"]) == 64
    assert (home / "models" / "deployed" / "current_model.pth").is_file()
    assert (home / "models" / "deployed" / "VERSION").read_text().strip() == "1"
    assert db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": 1})["status"] == "deployed"
    assert db.performance_metrics.count_documents({"logical_date": PASS_DAY}) == 1
    assert db.evaluation_events.count_documents({"logical_date": PASS_DAY, "event_type": "evaluation_passed"}) == 1
    assert db.alerts.count_documents({"logical_date": PASS_DAY}) == 0


def test_unreachable_threshold_runs_three_attempts_and_alerts(loop):
    """Threshold above 1: exactly three attempts, one alert, and the deployment DAG deploys nothing."""
    run, db, home = loop
    out = _ok(run("run", "--date", ALERT_DAY, "--f1-threshold", "1.5"))  # an alert day exits 0
    assert "ALERT" in out and "model_evaluation_pipeline: failed (failed: send_alert)" in out
    assert "model_deployment_pipeline: success" in out
    attempts = sorted(d["attempt"] for d in db.performance_metrics.find({"logical_date": ALERT_DAY}))
    assert attempts == [0, 1, 2, 3]
    retrained = list(db.model_metadata.find({"model_name": "tabtransformer", "logical_date": ALERT_DAY}))
    assert len(retrained) == 3
    assert all(v["status"] == "rejected" and v.get("parent_version") for v in retrained)
    alerts = list(db.alerts.find({"logical_date": ALERT_DAY}))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["alert_type"] == "MODEL_PERFORMANCE_FAILURE" and alert["severity"] == "CRITICAL"
    assert alert["retrain_attempts"] == 3 and alert["f1_threshold"] == 1.5
    assert sorted(alert["model_versions_tried"]) == sorted([1] + [v["model_version"] for v in retrained])
    assert db.evaluation_events.count_documents({"logical_date": ALERT_DAY, "event_type": "alert_raised"}) == 1
    assert db.notifications.count_documents({"logical_date": ALERT_DAY, "kind": "model_performance_failure"}) == 1
    assert db.deployment_events.count_documents({"logical_date": ALERT_DAY}) == 0
    assert (home / "models" / "deployed" / "VERSION").read_text().strip() == "1"


def test_rerunning_a_day_creates_no_duplicates(loop):
    """Running the passing day again replaces its documents; redeploying v1 is a recorded no-op."""
    run, db, _ = loop
    before = {c: db[c].count_documents({"logical_date": PASS_DAY})
              for c in ("processed_data", "processing_metadata", "performance_metrics", "evaluation_events")}
    versions_before = db.model_metadata.count_documents({})
    out = _ok(run("run", "--date", PASS_DAY, "--f1-threshold", "0.0"))
    assert "already deployed" in out
    after = {c: db[c].count_documents({"logical_date": PASS_DAY}) for c in before}
    assert after == before
    assert db["raw_data.files"].count_documents({"filename": f"batch-{PASS_DAY}.csv"}) == 1
    assert db.model_metadata.count_documents({}) == versions_before
    statuses = sorted(d["status"] for d in db.deployment_events.find({"logical_date": PASS_DAY}))
    assert statuses == ["already_deployed", "deployed"]


def test_predict_scores_rows_with_the_deployed_model(loop):
    """predict loads the deployed model without pickle and prints probabilities for raw rows."""
    run, _, home = loop
    reference = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"
    rows = home / "rows.csv"
    lines = reference.read_text().splitlines()[:6]
    rows.write_text("\n".join(lines) + "\n")
    out = _ok(run("predict", "--input", str(rows)))
    assert "5 rows scored" in out
    bad = home / "bad.csv"
    bad.write_text("\n".join(line.replace(",", ";", 0) for line in [lines[0].replace("duration_in_month", "duration")] + lines[1:]) + "\n")
    done = run("predict", "--input", str(bad))
    assert done.returncode == 2 and "duration_in_month" in done.stdout


def test_rerun_of_an_alert_day_that_passes_resolves_its_alert(loop):
    """Rerunning the alert day with a reachable threshold keeps the alert, marked resolved, and approves a version."""
    run, db, _ = loop
    out = _ok(run("run", "--date", ALERT_DAY, "--f1-threshold", "0.0"))
    assert "ALERT" not in out
    alerts = list(db.alerts.find({"logical_date": ALERT_DAY}))
    assert len(alerts) == 1 and alerts[0]["status"] == "resolved"
    passed = list(db.evaluation_events.find({"logical_date": ALERT_DAY, "event_type": "evaluation_passed"}))
    assert len(passed) == 1 and passed[0]["approved_version"] == 1


def test_retrained_versions_record_lineage_and_metrics(loop):
    """Each retrained version names its parent, its lineage, each batch once, and its test metrics."""
    _, db, _ = loop
    for doc in db.model_metadata.find({"model_name": "tabtransformer", "parent_version": {"$exists": True}}):
        assert doc["lineage"][-1] == doc["parent_version"]
        assert len(doc["trained_on"]) == len(set(doc["trained_on"]))
        assert 0.0 <= doc["metrics"]["f1"] <= 1.0 and doc["metrics"]["test"]["n_samples"] > 0
        assert len(doc["sha256"]["weights"]) == 64 and doc["n_parameters"] > 0


def test_an_unexpected_task_failure_exits_non_zero(mongo_uri: str, tmp_path: Path):
    """A real task failure is reported with exit 1: the synthesizer's GridFS file vanished after bootstrap.

    ``run`` only checks the registry records before starting Airflow (running before bootstrap is a
    user error, exit 2: tests/faults/test_user_errors.py), so here the data DAG's generate_data task runs,
    cannot load the synthesizer (IntegrityError: the file is missing from its bucket) and fails.
    """
    import gridfs
    from bson import ObjectId

    db_name = f"broken_{uuid.uuid4().hex[:8]}"
    run = _cli(mongo_uri, tmp_path, db_name)
    client = MongoClient(mongo_uri, tz_aware=True)
    try:
        _ok(run("bootstrap"))
        db = client[db_name]
        ref = db.model_metadata.find_one({"model_name": "synthesizer"})["artifacts"]["synthesizer"]
        gridfs.GridFSBucket(db, bucket_name=ref["bucket"]).delete(ObjectId(ref["file_id"]))
        assert db[f"{ref['bucket']}.files"].count_documents({"_id": ObjectId(ref["file_id"])}) == 0
        done = run("run", "--date", PASS_DAY)
    finally:
        client.drop_database(db_name)
        client.close()
    assert done.returncode == 1, done.stdout[-3000:]
    assert "UNEXPECTED FAILURE" in done.stdout and "data_pipeline_dag:generate_data" in done.stdout
