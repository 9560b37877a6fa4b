"""``daily-mlops airflow`` end to end: a real ``airflow standalone`` runs one day of the loop via the REST API.

The CLI runs as a subprocess (as a user would start it) with small settings, a
temporary ``MLOPS_HOME``, a free port, and ``MLOPS_MONGO_URI`` pointing at a
SecantusDB server this test owns, so the test can read what the DAG tasks
wrote. The scheduler's own @daily runs are switched off
(``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False``) so that only the triggered
runs compete for the machine; triggered runs are unaffected (Airflow config
reference, ``[scheduler] use_job_schedule``).

The three DAGs are triggered at once for one logical date, as a UI user does;
the ExternalTaskSensors (poke interval 60 s, reschedule mode) then order them.
Takes about 4-5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from daily_mlops.storage.mongo import embedded_server
from daily_mlops.orchestration.standalone import stop_process_tree

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_IDS = ("data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline")
LOGICAL_DATE = "2026-11-01T00:00:00Z"
#: Seconds for startup (bootstrap with small settings, db migrate, standalone healthy, DAGs parsed).
STARTUP_TIMEOUT = 300
#: Seconds for the three triggered DAG runs to finish.
LOOP_TIMEOUT = 8 * 60
SMALL_SETTINGS = {
    "MLOPS_DAILY_ROWS": "1200", "MLOPS_NUM_LAYERS": "2", "MLOPS_PRETRAIN_EPOCHS": "1",
    "MLOPS_FINETUNE_EPOCHS": "2", "MLOPS_RETRAIN_EPOCHS": "1", "MLOPS_BATCH_SIZE": "128",
    # Fail fast: a failing task should end the run, not wait minutes for a retry.
    "MLOPS_TASK_RETRIES": "0",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(cli: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        if "Airflow is ready" in text:
            return
        if cli.poll() is not None:
            pytest.fail(f"daily-mlops airflow exited with {cli.returncode}:\n{text[-4000:]}")
        time.sleep(2)
    pytest.fail(f"daily-mlops airflow not ready in {STARTUP_TIMEOUT} s:\n{out.read_text(errors='replace')[-4000:]}")


def _task_states(client: httpx.Client, dag_id: str, run_id: str) -> dict[str, str | None]:
    tis = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis}


def test_triggered_day_deploys_through_real_airflow(tmp_path: Path) -> None:
    """Three DAG runs triggered over REST for one logical date all succeed and record a deployment in MongoDB.

    Also checks that the CLI prints the URL and the generated admin password,
    and that SIGTERM stops it with exit code 0, freeing the API port.
    """
    from pymongo import MongoClient

    port = _free_port()
    home = tmp_path / "home"
    out = tmp_path / "cli.out"
    with embedded_server(tmp_path / "mongo") as mongo_uri:
        env = {
            **os.environ, **SMALL_SETTINGS,
            "MLOPS_HOME": str(home), "MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": "mlops_standalone",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        cli_path = Path(sys.executable).with_name("daily-mlops")
        started = time.monotonic()
        with open(out, "wb") as sink:
            cli = subprocess.Popen([str(cli_path), "airflow", "--port", str(port)], env=env, cwd=tmp_path,
                                   stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            _wait_ready(cli, out)
            startup = time.monotonic() - started
            passwords = home / "airflow" / "simple_auth_manager_passwords.json.generated"
            password = json.loads(passwords.read_text())["admin"]
            printed = out.read_text()
            assert f"http://127.0.0.1:{port}" in printed
            assert password in printed

            base = f"http://127.0.0.1:{port}"
            token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
            assert token.status_code in (200, 201), token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                run_ids = {}
                loop_started = time.monotonic()
                for dag_id in DAG_IDS:
                    dag = client.get(f"/api/v2/dags/{dag_id}")
                    assert dag.status_code == 200, dag.text
                    if dag.json()["is_paused"]:
                        assert client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
                    body = {"logical_date": LOGICAL_DATE, "dag_run_id": f"pytest__{dag_id}__2026-11-01"}
                    if dag_id == "model_evaluation_pipeline":
                        body["conf"] = {"f1_threshold": 0.0}
                    created = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
                    assert created.status_code in (200, 201), created.text
                    run_ids[dag_id] = created.json()["dag_run_id"]

                states: dict[str, str] = {}
                deadline = loop_started + LOOP_TIMEOUT
                while time.monotonic() < deadline and len(states) < len(DAG_IDS):
                    for dag_id, run_id in run_ids.items():
                        state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
                        if state in ("success", "failed"):
                            states[dag_id] = state
                    time.sleep(5)
                loop = time.monotonic() - loop_started
                details = {d: _task_states(client, d, r) for d, r in run_ids.items()}
            print(f"startup {startup:.0f} s, triggered day {loop:.0f} s")
            assert states == {d: "success" for d in DAG_IDS}, f"after {loop:.0f} s: {states}; tasks: {details}"

            with MongoClient(mongo_uri, tz_aware=True) as mongo:
                db = mongo["mlops_standalone"]
                event = db["deployment_events"].find_one({"logical_date": "2026-11-01", "status": "deployed"})
                assert event is not None, list(db["deployment_events"].find({}, {"_id": 0}))
                assert event["model_version"] == 1
                assert (home / "models" / "deployed" / "VERSION").read_text().strip() == "1"
        finally:
            if cli.poll() is None:
                cli.send_signal(signal.SIGTERM)
                try:
                    cli.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    stop_process_tree(cli, grace=5)
        assert cli.returncode == 0, out.read_text(errors="replace")[-3000:]
        assert "stopped" in out.read_text()
        with socket.socket() as sock:  # the API server is gone: its port is free again
            assert sock.connect_ex(("127.0.0.1", port)) != 0
