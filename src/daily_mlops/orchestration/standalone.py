"""A real Airflow (``airflow standalone``) running this project's DAGs against the loop's MongoDB.

``daily-mlops airflow`` uses this. One context manager,
:func:`standalone_airflow`, owns the whole lifetime:

1. the MongoDB the DAG tasks write to (``MLOPS_MONGO_URI``, or the embedded
   SecantusDB server under ``MLOPS_HOME/data/mongo``) runs until it exits;
2. model version 1 is bootstrapped if missing (idempotent, see
   :func:`daily_mlops.pipeline.bootstrap`);
3. the local Airflow home ``MLOPS_HOME/airflow`` (SQLite metadata database)
   is migrated on first use;
4. ``airflow standalone`` (scheduler, DAG processor, API server, triggerer;
   LocalExecutor, simple auth manager) starts as a subprocess in its own
   session, its output going to ``MLOPS_HOME/airflow/standalone.log``;
5. it is ready when ``GET /api/v2/monitor/health`` reports every component
   healthy and the three DAGs are parsed; on exit the whole process tree is
   stopped (SIGINT to ``airflow standalone``, which stops its components,
   then SIGTERM/SIGKILL to anything of that session still alive).

What Airflow 3.3's ``airflow standalone`` needs to run here: the venv's ``bin`` on
``PATH`` (its components are started as ``airflow`` subprocesses), and
``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` when the port is not 8080.

Unlike ``daily-mlops run`` (``dag.test`` in one process, retries off), tasks
keep ``MLOPS_TASK_RETRIES`` retries here (default 2): this is a real
scheduler, and a transient failure should be retried as in production.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daily_mlops.errors import MLOpsError
from daily_mlops.orchestration.dags import DAG_IDS, DATA_DAG_ID, day_run_id
from daily_mlops.orchestration.environment import migrate_metadata_db, standalone_environment
from daily_mlops.orchestration.processes import (
    default_sigint,
    exited,
    require_free_port,
    run_until_stopped,
    stop_process_tree,
)
from daily_mlops.orchestration.readiness import NotYet, log_tail, until, wait_for_dags, wait_healthy

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from daily_mlops.settings import Settings

__all__ = ["StandaloneAirflow", "run_standalone", "standalone_airflow"]

PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


@dataclass(frozen=True)
class StandaloneAirflow:
    """A running ``airflow standalone``: where to reach it and how to log in.

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>``; the UI is there, the REST API under ``/api/v2``.
    username, password : str
        Simple auth manager login (``admin`` and the generated password).
    airflow_home : Path
        ``MLOPS_HOME/airflow``: ``airflow.cfg``, the SQLite database, task logs.
    log_path : Path
        Combined output of the standalone components.
    mongo_uri : str
        The MongoDB the DAG tasks write to (same as ``AIRFLOW_CONN_MONGO_DEFAULT``).
    pid : int
        Process id of ``airflow standalone`` (also its session id).
    """

    base_url: str
    username: str
    password: str
    airflow_home: Path
    log_path: Path
    mongo_uri: str
    pid: int

    def access_token(self, *, timeout: float = 30.0) -> str:
        """Return a JWT for the REST API (``POST /auth/token``), valid for Airflow's ``[api_auth] jwt_expiration_time``.

        Raises
        ------
        MLOpsError
            When the API refuses the login (the password file was changed by hand?).
        """
        import httpx

        login = {"username": self.username, "password": self.password}
        response = httpx.post(f"{self.base_url}/auth/token", json=login, timeout=timeout)
        if response.status_code not in (200, 201):
            raise MLOpsError(f"Airflow at {self.base_url} refused user {self.username!r} ({response.status_code}: "
                             f"{response.text[:200]}); check {self.airflow_home / PASSWORDS_FILE}")
        return str(response.json()["access_token"])


@contextlib.contextmanager
def standalone_airflow(
    settings: Settings,
    *,
    port: int = 8080,
    bootstrap: bool = True,
    startup_timeout: float = 300.0,
    progress: Callable[[str], None] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[StandaloneAirflow]:
    """Run ``airflow standalone`` with this project's DAGs; yield how to reach it; stop everything on exit.

    Parameters
    ----------
    settings : Settings
        ``MLOPS_HOME`` (Airflow home is ``MLOPS_HOME/airflow``), the MongoDB,
        the DAG folder and everything the tasks read.
    port : int
        TCP port of the API server and UI (default 8080, Airflow's).
    bootstrap : bool
        Train and register model version 1 first when it is missing
        (~1-2 min on 2 cores with default settings; a no-op afterwards).
    startup_timeout : float
        Seconds to wait for a healthy API and the three parsed DAGs.
    progress : callable, optional
        Called with one line per step (bootstrap, migration, startup).
    extra_env : dict, optional
        Environment variables set last (e.g. ``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE``).

    Yields
    ------
    StandaloneAirflow
        Base URL, login, paths and the MongoDB URI.

    Raises
    ------
    ConfigError
        When ``port`` is in use or not a TCP port, or MongoDB cannot be reached/started.
    MLOpsError
        When ``airflow db migrate`` fails, ``airflow standalone`` exits or is
        not healthy within ``startup_timeout`` (the log tail is included), or
        a DAG file has an import error.
    """
    from daily_mlops.storage.mongo import mongo_uri

    say = progress or (lambda message: None)
    require_free_port(port, "daily-mlops airflow")
    with mongo_uri(settings) as uri:
        if bootstrap:
            from daily_mlops.loop.bootstrap import bootstrap_if_missing

            bootstrap_if_missing(settings, uri, progress=say)
        env = standalone_environment(settings, uri, port=port)
        env.update(extra_env or {})
        home = settings.airflow_home
        home.mkdir(parents=True, exist_ok=True)
        migrate_metadata_db(env, home, say)
        log_path = home / "standalone.log"
        say(f"starting airflow standalone on port {port} (log: {log_path})")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "airflow"), "standalone"],
                env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us only; we stop the tree in order
                preexec_fn=default_sigint,
            )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + startup_timeout
            alive = lambda: _check_alive(process, log_path)  # noqa: E731
            wait_healthy(base_url, deadline, check_alive=alive, log_path=log_path, say=say)
            username, password = _read_password(home / PASSWORDS_FILE, process, deadline, log_path)
            handle = StandaloneAirflow(base_url=base_url, username=username, password=password, airflow_home=home,
                                       log_path=log_path, mongo_uri=uri, pid=process.pid)
            wait_for_dags(base_url, handle.access_token(), DAG_IDS, deadline, check_alive=alive,
                          log_path=log_path, say=say)
            yield handle
        finally:
            say("stopping airflow standalone")
            try:
                stop_process_tree(process)
            except KeyboardInterrupt:  # a second Ctrl-C: no more grace
                stop_process_tree(process, grace=0.0)
                raise


def run_standalone(settings: Settings, *, port: int = 8080, console: Console | None = None) -> int:
    """Run Airflow with this project's DAGs until Ctrl-C or SIGTERM; print the URL, login and how to trigger.

    Parameters
    ----------
    settings : Settings
        See :func:`standalone_airflow`.
    port : int
        TCP port of the API server and UI.
    console : rich.console.Console, optional
        Where to print; a new one by default.

    Returns
    -------
    int
        0 after a requested stop (Ctrl-C / SIGTERM); 1 when ``airflow
        standalone`` exited on its own (its log path is printed).

    Raises
    ------
    ConfigError, MLOpsError
        As :func:`standalone_airflow` (port in use, MongoDB unreachable,
        startup failure).
    """
    from rich.console import Console

    console = console or Console()

    def dead(airflow: StandaloneAirflow) -> str | None:
        return f"airflow standalone exited on its own; see {airflow.log_path}" if exited(airflow.pid) else None

    return run_until_stopped(lambda: standalone_airflow(settings, port=port, progress=console.log),
                             banner=_banner, dead=dead, console=console,
                             stopping="stopping Airflow and MongoDB ...")


# --- helpers -----------------------------------------------------------------

def _banner(airflow: StandaloneAirflow, seconds: float) -> str:
    api = f"{airflow.base_url}/api/v2"
    token = (f"TOKEN=$(curl -s -X POST {airflow.base_url}/auth/token -H 'Content-Type: application/json' "
             f"-d '{{\"username\": \"{airflow.username}\", \"password\": \"{airflow.password}\"}}' "
             "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    example = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    trigger = (
        f"  curl -X POST {api}/dags/{DATA_DAG_ID}/dagRuns -H \"Authorization: Bearer $TOKEN\" "
        f"-H 'Content-Type: application/json' -d '{{\"logical_date\": \"2026-11-01T00:00:00Z\", "
        f"\"dag_run_id\": \"{day_run_id(example)}\", \"conf\": {{\"f1_threshold\": 0.0}}}}'"
    )
    return (
        f"\n[bold green]Airflow is ready[/] after {seconds:.0f} s\n"
        f"  UI:        [bold]{airflow.base_url}[/]\n"
        f"  username:  [bold]{airflow.username}[/]\n"
        f"  password:  [bold]{airflow.password}[/]   (stored in {airflow.airflow_home / PASSWORDS_FILE})\n"
        f"  MongoDB:   {airflow.mongo_uri}\n"
        f"  log:       {airflow.log_path}\n\n"
        f"The DAGs are unpaused and {DATA_DAG_ID} is scheduled @daily, so the scheduler also runs the latest\n"
        "day by itself. To run a day yourself, trigger only data_pipeline_dag (UI: Trigger, with the day's\n"
        "params f1_threshold, max_retrain_attempts, require_approval): it triggers model_evaluation_pipeline\n"
        "and model_deployment_pipeline for the same logical date. With the REST API:\n"
        f"  {token}\n{trigger}\n"
        "The sensors poke every 30 s, so a day takes a few minutes. Stop with Ctrl-C.\n"
    )


def _read_password(path: Path, process: subprocess.Popen, deadline: float, log_path: Path) -> tuple[str, str]:
    """The first user of the simple auth manager's generated password file (``admin`` by default)."""

    def read() -> tuple[str, str]:
        _check_alive(process, log_path)
        try:
            users = json.loads(path.read_text())
        except (OSError, ValueError):
            raise NotYet(f"{path} not written yet") from None
        if not users:
            raise NotYet(f"{path} is empty")
        username = "admin" if "admin" in users else next(iter(users))
        return username, str(users[username])

    return until(deadline, read, every=0.5, log_path=log_path,
                  what=f"an admin password in {path} (unset AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS if you set it)")


def _check_alive(process: subprocess.Popen, log_path: Path) -> None:
    if process.poll() is not None:
        raise MLOpsError(f"airflow standalone exited with status {process.returncode}; "
                         f"see {log_path}:\n{log_tail(log_path)}")
