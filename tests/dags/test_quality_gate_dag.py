"""A ``broken`` day through the real DAGs (``dag.test``, as ``daily-mlops run``) against a real MongoDB-wire server.

The data DAG fails at ``check_data_quality``, ``store_processing_metadata`` never runs, the evaluation
DAG's sensor fails (``upstream_failed`` is in its failed states) and the deployment DAG's too: no model
is judged or retrained and no model version is registered. The day runs in a subprocess
(``gate_day_harness.py``) so that Airflow reads its own environment; about 30-40 s on 2 shared cores.
A second day, whose gate task crashes before it records a verdict, must not pass as stopped by the gate; a
third, whose fidelity report's classifier fails, must go on past the gate and deploy or alert as designed.
The three homes start from one Airflow metadata database made by ``airflow db migrate`` for the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

pytestmark = [pytest.mark.dags, pytest.mark.integration]

HARNESS = Path(__file__).with_name("gate_day_harness.py")
DAY = "2026-08-01"


@pytest.fixture(scope="module")
def airflow_db(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh Airflow metadata database, made once by ``airflow db migrate`` as ``daily-mlops run`` makes one in a
    new home (schema, default pool, log templates; no path or run in it); each harness home gets a copy."""
    from daily_mlops.orchestration.environment import airflow_environment, migrate_metadata_db
    from daily_mlops.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("airflow_db"), _env_file=None)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))},
           **airflow_environment(settings, mongo_uri)}
    assert migrate_metadata_db(env, settings.airflow_home)
    return settings.airflow_home / "airflow.db"


def _run_day(mongo_uri: str, airflow_db: Path, home: Path, day: str, drift: str, *extra: str) -> dict:
    """Run one day in the harness (its Airflow home starts from a copy of ``airflow_db``); return its outcome and
    what MongoDB holds afterwards."""
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(airflow_db, home / "airflow" / "airflow.db")
    db_name = f"gatedag_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2] / "src"),
                                                    os.environ.get("PYTHONPATH")) if p)
    client = MongoClient(mongo_uri, tz_aware=True)
    try:
        done = subprocess.run([sys.executable, str(HARNESS), mongo_uri, db_name, str(home), day, drift, *extra],
                              env=env, cwd=home, capture_output=True, text=True, timeout=300)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("OUTCOME=")), None)
        assert line, f"exit {done.returncode}\nSTDOUT:\n{done.stdout[-3000:]}\nSTDERR:\n{done.stderr[-5000:]}"
        db = client[db_name]
        return {"outcome": json.loads(line.removeprefix("OUTCOME=")),
                "processing": db.processing_metadata.find_one({"logical_date": day}, {"_id": 0}),
                "models": db.model_metadata.count_documents({"model_name": "tabtransformer"}),
                "evaluations": db.performance_metrics.count_documents({"logical_date": day}),
                "log": done.stdout + done.stderr}
    finally:
        client.drop_database(db_name)
        client.close()


@pytest.fixture(scope="module")
def broken_day(mongo_uri: str, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the broken day once; return the harness's outcome and what MongoDB holds afterwards."""
    return _run_day(mongo_uri, airflow_db, tmp_path_factory.mktemp("gate_dag"), DAY, "broken")


def test_the_gate_fails_the_data_dag_and_the_downstream_sensors(broken_day):
    """data DAG failed at check_data_quality only; the evaluation and deployment runs failed at their sensors."""
    runs = broken_day["outcome"]["runs"]
    data = runs["data_pipeline_dag"]
    assert data["state"] == "failed"
    assert data["tasks"]["check_data_quality"] == "failed"
    assert data["tasks"]["store_processing_metadata"] == "upstream_failed"
    assert data["tasks"]["generate_data"] == data["tasks"]["preprocess_data"] == "success"
    evaluation = runs["model_evaluation_pipeline"]
    assert evaluation["state"] == "failed" and evaluation["tasks"]["wait_for_data"] == "failed"
    assert evaluation["tasks"]["load_latest_model"] == "upstream_failed"
    assert runs["model_deployment_pipeline"]["state"] == "failed"
    assert broken_day["outcome"]["stopped_by_gate"] and broken_day["outcome"]["as_designed"]


def test_no_model_is_judged_and_no_version_registered(broken_day):
    """No tabtransformer version exists and no evaluation was recorded for the day."""
    assert broken_day["models"] == 0 and broken_day["evaluations"] == 0


def test_the_failure_names_the_worst_columns_and_is_recorded(broken_day):
    """processing_metadata holds quality (failed, worst columns), drift (param broken) and the batch's fidelity
    report (recorded by the gate, never gated); the run summary says so."""
    doc = broken_day["processing"]
    assert doc["status"] == "quality_failed" and doc["drift_mode"] == "broken"
    assert doc["quality"]["status"] == "failed" and doc["drift"]["param"] == "broken"
    assert doc["fidelity"]["rows"]["synthetic"] > 0 and 0 < doc["fidelity"]["column_shapes"] <= 1
    summary = broken_day["outcome"]["summary"]
    assert summary["quality_status"] == "failed"
    assert "status_of_existing_checking_account unseen-category share 0.8" in summary["quality_reason"]


def test_a_crashed_gate_task_is_an_unexpected_failure_not_a_gate_verdict(mongo_uri, airflow_db, tmp_path_factory):
    """check_data_quality raises before it records a verdict (as it once did on a wide table, inside its fidelity
    report): the runs fail as on a gate day, but nothing is in processing_metadata.quality, so the day is neither
    stopped by the gate nor as designed (``daily-mlops run`` exits 1 and prints the traceback)."""
    crashed = _run_day(mongo_uri, airflow_db, tmp_path_factory.mktemp("gate_crash"), "2026-08-02", "none", "crash")
    outcome = crashed["outcome"]
    assert outcome["runs"]["data_pipeline_dag"]["tasks"]["check_data_quality"] == "failed"
    assert "quality" not in crashed["processing"] and outcome["summary"]["quality_status"] is None
    assert not outcome["stopped_by_gate"] and not outcome["as_designed"]  # `daily-mlops run` exits 1 on this
    assert "the fidelity report crashed (gate_day_harness crash)" in crashed["log"]
    assert "FAILED: data_pipeline_dag.check_data_quality" in outcome["row"] and "STOPPED" not in outcome["row"]


def test_a_failing_fidelity_classifier_still_ends_the_day_as_designed(mongo_uri, airflow_db, tmp_path_factory):
    """The fidelity report's classifier raises inside the gate (as on a 99-column table): the gate records its verdict
    and the report with TSTR as null and the reason, and the day goes on to deploy or alert as designed."""
    day = _run_day(mongo_uri, airflow_db, tmp_path_factory.mktemp("gate_classifier"), "2026-08-03", "none",
                   "classifier")
    outcome, processing = day["outcome"], day["processing"]
    assert outcome["runs"]["data_pipeline_dag"]["state"] == "success"
    assert processing["quality"]["status"] == "passed"
    assert processing["fidelity"]["tstr_roc_auc"] is None
    assert processing["fidelity"]["errors"]["tstr_roc_auc"] == (
        "ValueError: window shape cannot be larger than input array shape")
    assert outcome["as_designed"] and not outcome["stopped_by_gate"]
    from daily_mlops.decisions import day_outcome

    assert day_outcome(outcome["summary"]) in ("deployed", "already_deployed", "alert")
    assert day["evaluations"] >= 1 and "FAILED" not in outcome["row"]
