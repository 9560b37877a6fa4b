"""One native stack (``daily_mlops.orchestration.stack.native_stack``) per test session.

CeleryExecutor, Postgres and Redis from Debian's packages, api-server, scheduler,
dag-processor, triggerer and two Celery workers, each a real process, with small
settings (2,000 rows a day, a small model) and ``MLOPS_TRAINING_QUEUE=training``
(only ``worker-b`` serves it). MongoDB is ``daily-mlops mongo`` (the embedded
SecantusDB server) in a subprocess this fixture owns, so a test can stop and
restart it on the same port and storage. The scheduler's own @daily runs are off
(``[scheduler] use_job_schedule``); the task heartbeat timeout is 30 s (default
300 s) so a killed worker's task is found dead quickly.

Skipped, with the reason, only when Postgres or Redis is missing and cannot be
installed (not root).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daily_mlops.settings import Settings

DAG_IDS = ("data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline")
DB_NAME = "mlops_stack"
FINISHED = ("success", "failed")
#: Seconds a task may go without a heartbeat before the scheduler fails it (Airflow's default is 300).
HEARTBEAT_TIMEOUT = 30


def _free_port() -> int:
    from daily_mlops.orchestration.processes import free_port

    return free_port()


class MongoProcess:
    """``daily-mlops mongo --port P`` (embedded SecantusDB) as a subprocess that can be stopped and restarted."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.uri = f"mongodb://127.0.0.1:{port}/"
        self.process: subprocess.Popen | None = None
        self.out = home / "mongo.out"

    def start(self, timeout: float = 60.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}, "MLOPS_HOME": str(self.home)}
        with open(self.out, "ab") as sink:
            self.process = subprocess.Popen([str(Path(sys.executable).with_name("daily-mlops")), "mongo", "--port",
                                             str(self.port)], env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        from pymongo import MongoClient

        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.out.read_text(errors="replace")[-2000:]
            try:
                with MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Stack:
    """The running stack, its REST client, its MongoDB and its settings."""

    running: Any  # daily_mlops.orchestration.stack.NativeStack
    mongo: MongoProcess
    settings: Settings
    client: Any = None

    @property
    def db(self) -> Any:
        from pymongo import MongoClient

        return MongoClient(self.mongo.uri, tz_aware=True)[DB_NAME]

    def trigger(self, day: dt.date, conf: dict | None = None) -> str:
        """ONE POST /api/v2/dags/data_pipeline_dag/dagRuns with a JWT from /auth/token; return the run id."""
        body: dict[str, Any] = {"logical_date": f"{day.isoformat()}T00:00:00Z", "dag_run_id": f"day__{day}"}
        if conf:
            body["conf"] = conf
        created = self.client.post("/api/v2/dags/data_pipeline_dag/dagRuns", json=body)
        assert created.status_code in (200, 201), created.text
        return created.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return got.json().get("state") if got.status_code == 200 else None

    def wait_for_day(self, run_id: str, *, timeout: float) -> dict[str, str | None]:
        """Poll until the three DAGs' runs ``run_id`` are finished; return their states."""
        deadline = time.monotonic() + timeout
        while True:
            states = {d: self.run_state(d, run_id) for d in DAG_IDS}
            if all(s in FINISHED for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(3)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        assert got.status_code == 200, got.text
        return {ti["task_id"]: ti for ti in got.json()["task_instances"]}

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict:
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return got.json() if got.status_code == 200 else {}

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], *,
                      timeout: float, every: float = 0.3) -> dict:
        """Poll a task instance until its state is one of ``states``; return it (the last seen at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            ti = self.task(dag_id, run_id, task_id)
            if ti.get("state") in states or time.monotonic() > deadline:
                return ti
            time.sleep(every)

    def doctor(self) -> subprocess.CompletedProcess:
        """``daily-mlops doctor`` against the stack's MongoDB and deployment directory."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
               "MLOPS_HOME": str(self.settings.home), "MLOPS_MONGO_URI": self.mongo.uri, "MLOPS_MONGO_DB": DB_NAME,
               "MLOPS_DEPLOYMENT_DIR": str(self.running.deployment_dir)}
        return subprocess.run([str(Path(sys.executable).with_name("daily-mlops")), "doctor"], env=env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the native stack once (about 1.5 min on 2 shared cores, bootstrap included); stop it at the end
    and check that no process of it is left."""
    import httpx

    from daily_mlops.errors import ConfigError
    from daily_mlops.orchestration.services import ensure_packages
    from daily_mlops.orchestration.stack import native_stack

    try:
        ensure_packages(print)
    except ConfigError as exc:
        pytest.skip(f"Postgres/Redis unavailable and not installable here: {exc}")
    tmp = tmp_path_factory.mktemp("stack")
    mongo = MongoProcess(tmp / "mongo-home", _free_port())
    mongo.start()
    settings = Settings(home=tmp / "home", daily_rows=2000, num_layers=2, pretrain_epochs=1, finetune_epochs=2,
                        retrain_epochs=1, batch_size=128, mongo_uri=mongo.uri, mongo_db=DB_NAME,
                        training_queue="training", task_retries=2, _env_file=None)
    extra_env = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                 "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                 "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"}
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    try:
        with native_stack(settings, port=_free_port(), extra_env=extra_env, progress=print) as running:
            print(f"stack ready after {time.monotonic() - started:.0f} s")
            handle = Stack(running=running, mongo=mongo, settings=settings)
            with httpx.Client(base_url=running.base_url, timeout=30,
                              headers={"Authorization": f"Bearer {running.access_token()}"}) as client:
                handle.client = client
                yield handle
            processes = list(running.processes.values())
    finally:
        mongo.stop()
    import psutil

    left = [p.pid for p in processes if p.poll() is None or psutil.pid_exists(p.pid)]
    assert not left, f"stack processes still running after shutdown: {left}"
