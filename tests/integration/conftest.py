"""One real ``daily-mlops airflow`` per test session, shared by the slow REST tests that ask for it.

The CLI runs as a subprocess (as a user would start it) with small settings, a
temporary ``MLOPS_HOME``, a free port, and ``MLOPS_MONGO_URI`` pointing at a
SecantusDB server this fixture owns, so tests can read what the DAG tasks
wrote. The scheduler's own @daily runs are switched off
(``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False``) so that only triggered runs
compete for the machine; runs created by the REST API or by
``data_pipeline_dag``'s trigger tasks are unaffected (Airflow config reference,
``[scheduler] use_job_schedule``). Each test uses its own logical dates.
The scheduler looks for approval steps past their reviewer window every 3 s
instead of 15 s (``[scheduler] trigger_timeout_check_interval``).

On teardown the CLI gets SIGTERM and must exit 0 and free the API port.

The backfill test (``test_airflow_backfill.py``) compares the days it runs with
``daily-mlops run`` on a fresh database, so it needs this database as
bootstrap left it: it runs first among the tests that use the fixture
(:func:`pytest_collection_modifyitems`). Its 7-date version (marker
``backfill_week``) runs only when selected with ``-m backfill_week``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Seconds for startup (bootstrap with small settings, db migrate, standalone healthy, DAGs parsed).
STARTUP_TIMEOUT = 420
DB_NAME = "mlops_standalone"
#: Small settings: 2,000 rows a day, a small model; no retries (a failure should end the run); a 36 s approval window
#: (a test reviewer answers about 15 s after the step starts);
#: a 5 s latency ceiling for infra validation: on 2 cores shared with other test processes the p95 single-row latency
#: reached 438 ms (default ceiling 200 ms), refusing a deployment at random (the refusal has its own tests).
SMALL_SETTINGS = {
    "MLOPS_DAILY_ROWS": "2000", "MLOPS_NUM_LAYERS": "2", "MLOPS_PRETRAIN_EPOCHS": "1",
    "MLOPS_FINETUNE_EPOCHS": "2", "MLOPS_RETRAIN_EPOCHS": "1", "MLOPS_BATCH_SIZE": "128",
    "MLOPS_TASK_RETRIES": "0", "MLOPS_APPROVAL_TIMEOUT_HOURS": "0.01", "MLOPS_MAX_PREDICT_P95_MS": "5000",
}
FINISHED = ("success", "failed")


#: The module whose tests need the shared Airflow's database as bootstrap left it.
FRESH_DATABASE_MODULE = "test_airflow_backfill.py"
WEEK_MARKER = "backfill_week"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the backfill tests before the other users of ``airflow_cli``; skip ``backfill_week`` unless selected."""
    if WEEK_MARKER not in (config.getoption("markexpr", "") or ""):
        skip = pytest.mark.skip(reason=f"the 7-date backfill takes about 25 minutes: run it with -m {WEEK_MARKER}")
        for item in items:
            if item.get_closest_marker(WEEK_MARKER):
                item.add_marker(skip)
    fresh = [item for item in items if item.path.name == FRESH_DATABASE_MODULE]
    rest = [item for item in items if item.path.name != FRESH_DATABASE_MODULE]
    at = next((i for i, item in enumerate(rest) if "airflow_cli" in getattr(item, "fixturenames", ())), len(rest))
    items[:] = rest[:at] + fresh + rest[at:]


#: Stops the running ``airflow_cli`` (SIGTERM), registered by the fixture; called after its last user's teardown.
_STOP_AIRFLOW_CLI: list[Any] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last test that uses ``airflow_cli``, send the CLI SIGTERM at once.

    A session fixture is torn down at the end of the session, so the idle Airflow (scheduler, API server, DAG
    processor, triggerer) would run beside every later test (tests/stack starts a second Airflow) and its
    shutdown (about 17 s) would come last. The fixture's own teardown still waits for the exit and checks it.
    """
    result = yield
    if _STOP_AIRFLOW_CLI and "airflow_cli" in getattr(item, "fixturenames", ()):
        items = item.session.items
        later = items[items.index(item) + 1:] if item in items else []
        if not any("airflow_cli" in getattr(other, "fixturenames", ()) for other in later):
            _STOP_AIRFLOW_CLI.pop()()
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AirflowCli:
    """A running ``daily-mlops airflow``: its REST client, MongoDB and paths."""

    base_url: str
    password: str
    home: Path
    out: Path
    mongo_uri: str
    startup_seconds: float
    #: The MLOPS_* settings the CLI runs with (:data:`SMALL_SETTINGS`), for a comparison run with the same ones.
    settings: dict[str, str] = field(default_factory=lambda: dict(SMALL_SETTINGS))
    client: Any = None
    printed: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def db(self) -> Any:
        from pymongo import MongoClient

        return MongoClient(self.mongo_uri, tz_aware=True)[DB_NAME]

    def trigger(self, dag_id: str, logical_date: dt.datetime, *, conf: dict | None = None) -> str:
        """POST one DAG run with the readable run id day__<date>; return the run id."""
        from daily_mlops.orchestration.dags import day_run_id

        body: dict[str, Any] = {"logical_date": logical_date.isoformat().replace("+00:00", "Z"),
                                "dag_run_id": day_run_id(logical_date)}
        if conf is not None:
            body["conf"] = conf
        created = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        assert created.status_code in (200, 201), created.text
        return created.json()["dag_run_id"]

    def runs_at(self, dag_id: str, logical_date: dt.datetime) -> list[dict]:
        """The DAG runs of ``dag_id`` at exactly ``logical_date``."""
        iso = logical_date.isoformat().replace("+00:00", "Z")
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns",
                              params={"logical_date_gte": iso, "logical_date_lte": iso})
        assert got.status_code == 200, got.text
        return got.json()["dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        assert got.status_code == 200, got.text
        return {ti["task_id"]: ti["state"] for ti in got.json()["task_instances"]}

    def wait_for_runs(self, dag_ids: tuple[str, ...], logical_date: dt.datetime, *, timeout: float,
                      states: tuple[str, ...] = FINISHED) -> dict[str, dict]:
        """Poll until each DAG has one run at ``logical_date`` in one of ``states``; return them by DAG id."""
        deadline = time.monotonic() + timeout
        done: dict[str, dict] = {}
        while time.monotonic() < deadline:
            for dag_id in dag_ids:
                runs = self.runs_at(dag_id, logical_date)
                if runs and runs[0]["state"] in states:
                    done[dag_id] = runs[0]
            if len(done) == len(dag_ids):
                return done
            time.sleep(3)
        return done

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], *,
                      timeout: float) -> str | None:
        """Poll a task instance until its state is one of ``states``; return the last state seen."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
            state = got.json().get("state") if got.status_code == 200 else None
            if state in states:
                return state
            time.sleep(2)
        return state

    def log_lines(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        """The task log's events as text lines, in order (REST ``.../logs/{try}``, JSON); an exception's
        message follows its event."""
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                              params={"full_content": "true"}, headers={"Accept": "application/json"})
        assert got.status_code == 200, got.text
        content = got.json()["content"]
        if isinstance(content, str):
            return content.splitlines()
        lines = []
        for item in content:
            if not isinstance(item, dict):
                lines.append(str(item))
                continue
            lines.append(str(item.get("event", "")))
            lines.extend(str(e.get("exc_value", "")) for e in item.get("error_detail") or [] if isinstance(e, dict))
        return lines

    def first_body_line(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The first log line of the task body: the one after Airflow's "Pre Execute" group."""
        lines = self.log_lines(dag_id, run_id, task_id)
        start = next(i for i, line in enumerate(lines) if line.startswith("::group::Pre Execute"))
        end = next(i for i in range(start, len(lines)) if lines[i] == "::endgroup::")
        return next(line for line in lines[end + 1:] if line.strip())


@pytest.fixture(scope="session")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCli]:
    """Start ``daily-mlops airflow`` once (about 2-3 minutes on 2 shared cores); stop it with SIGTERM at the end."""
    import httpx

    from daily_mlops.orchestration.standalone import stop_process_tree
    from daily_mlops.storage.mongo import embedded_server

    tmp = tmp_path_factory.mktemp("airflow_cli")
    port = _free_port()
    home = tmp / "home"
    out = tmp / "cli.out"
    with embedded_server(tmp / "mongo") as mongo_uri:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}, **SMALL_SETTINGS,
            "MLOPS_HOME": str(home), "MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": DB_NAME,
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # how often the scheduler fails an approval step whose reviewer window has passed (default 15 s)
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "3",
        }
        cli_path = Path(sys.executable).with_name("daily-mlops")
        started = time.monotonic()
        with open(out, "wb") as sink:
            cli = subprocess.Popen([str(cli_path), "airflow", "--port", str(port)], env=env, cwd=tmp,
                                   stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = started + STARTUP_TIMEOUT
            while "Airflow is ready" not in out.read_text(errors="replace"):
                if cli.poll() is not None:
                    pytest.fail(f"daily-mlops airflow exited with {cli.returncode}:\n{out.read_text()[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"daily-mlops airflow not ready in {STARTUP_TIMEOUT} s:\n{out.read_text()[-4000:]}")
                time.sleep(2)
            password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
            base = f"http://127.0.0.1:{port}"
            token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password["admin"]},
                               timeout=30)
            assert token.status_code in (200, 201), token.text
            handle = AirflowCli(base_url=base, password=password["admin"], home=home, out=out, mongo_uri=mongo_uri,
                                startup_seconds=time.monotonic() - started, printed=out.read_text())
            with httpx.Client(base_url=base, timeout=30,
                              headers={"Authorization": f"Bearer {token.json()['access_token']}"}) as client:
                handle.client = client
                _STOP_AIRFLOW_CLI.append(lambda: cli.poll() is None and cli.send_signal(signal.SIGTERM))
                yield handle
        finally:
            _STOP_AIRFLOW_CLI.clear()
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


@pytest.fixture
def csv_settings(tmp_path: Path) -> Any:
    """A factory for the small custom-data tests: ``make(frame, target_column="default", **overrides)``.

    It writes ``frame`` to ``tmp_path / "loans.csv"`` and returns ``Settings`` with ``home=tmp_path``, that file
    as ``reference_data``, ``positive_label="yes"``, no ``.env`` file, and the given overrides (``daily_rows``,
    the model's size, the epochs...).
    """
    from daily_mlops.settings import Settings

    def make(frame: Any, *, target_column: str = "default", **overrides: Any) -> Settings:
        path = tmp_path / "loans.csv"
        frame.to_csv(path, index=False)
        return Settings(home=tmp_path, reference_data=path, target_column=target_column, positive_label="yes",
                        _env_file=None, **overrides)

    return make
