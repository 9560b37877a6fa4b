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

The Airflow facts this relies on are in ``STACK_NOTES.md`` ("A real Airflow on
this machine"): the venv's ``bin`` on ``PATH``, and
``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` when the port is not 8080.

Unlike ``daily-mlops run`` (``dag.test`` in one process, retries off), tasks
keep ``MLOPS_TASK_RETRIES`` retries here (default 2): this is a real
scheduler, and a transient failure should be retried as in production.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError, MLOpsError

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from daily_mlops.settings import Settings

__all__ = [
    "StandaloneAirflow", "run_standalone", "settings_environment", "standalone_airflow", "standalone_environment",
    "stop_process_tree",
]

#: The DAGs the readiness check waits for, in the order a day runs them.
DAG_IDS = ("data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline")
#: Components ``GET /api/v2/monitor/health`` must report healthy (Airflow 3 REST API, "Monitor").
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
#: Log-server ports Airflow opens besides the API (``[logging] worker_log_server_port`` /
#: ``trigger_log_server_port`` defaults); moved to a free port when taken and not configured.
LOG_SERVER_PORTS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": 8794,
}
#: ``[core] parallelism`` (task slots = LocalExecutor worker processes) unless set in the environment.
PARALLELISM = 8
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
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


def settings_environment(settings: "Settings") -> dict[str, str | None]:
    """Every ``Settings`` field as its ``MLOPS_*`` variable; ``None`` for unset optional fields.

    Airflow's components and task processes rebuild ``Settings`` from their
    environment (``load_settings``), so exporting every field makes them see
    exactly the settings this process has, whether those came from the
    environment, a ``.env`` file or ``Settings(...)`` in a test.
    """
    env: dict[str, str | None] = {}
    for name, value in settings.model_dump(mode="json").items():
        key = f"MLOPS_{name.upper()}"
        if value is None:
            env[key] = None
        elif isinstance(value, (dict, list)):
            env[key] = json.dumps(value)
        else:
            env[key] = str(value)
    return env


def standalone_environment(settings: "Settings", mongo_uri: str, *, port: int,
                           base: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment of ``airflow standalone`` for this project.

    Parameters
    ----------
    settings : Settings
        Exported as ``MLOPS_*`` (see :func:`settings_environment`).
    mongo_uri : str
        ``mongodb://`` URI of the loop's database; becomes ``AIRFLOW_CONN_MONGO_DEFAULT``.
    port : int
        API server and UI port (TCP).
    base : dict, optional
        Starting environment; ``os.environ`` by default. ``AIRFLOW__*`` values
        in it that this function does not own (e.g.
        ``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE``) pass through.

    Returns
    -------
    dict
        ``base`` plus :func:`daily_mlops._runner.airflow_environment`, the
        settings, ``PATH`` with the venv's ``bin`` first, the port, the
        execution API URL, the simple auth manager and unpaused new DAGs.
    """
    from daily_mlops._runner import airflow_environment

    env = dict(os.environ if base is None else base)
    for key, value in settings_environment(settings).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env.update(airflow_environment(settings, mongo_uri))
    bin_dir = os.path.dirname(sys.executable)
    env.update({
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        # A real scheduler: keep the configured retries (``run`` turns them off for dag.test).
        "MLOPS_TASK_RETRIES": str(settings.task_retries),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    })
    for key, default in LOG_SERVER_PORTS.items():
        if key not in env and not _port_free(default):
            env[key] = str(_free_port())
    # Airflow's default (32) starts 32 LocalExecutor worker processes; a day never runs more than 4 tasks at once.
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(PARALLELISM))
    return env


@contextlib.contextmanager
def standalone_airflow(
    settings: "Settings",
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
    from daily_mlops._mongo import connect, mongo_uri

    say = progress or (lambda message: None)
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port; use a number between 1024 and 65535")
    problem = _bind_error(port)
    if problem is not None:
        in_use = problem.errno == errno.EADDRINUSE
        why = "is already in use (another Airflow?)" if in_use else f"cannot be used ({problem})"
        raise ConfigError(f"port {port} {why}; stop that process or pass another port, "
                          f"e.g. `daily-mlops airflow --port {_free_port()}`")
    with mongo_uri(settings) as uri:
        if bootstrap:
            from daily_mlops.pipeline import bootstrap as bootstrap_model

            with connect(uri, settings.mongo_db) as db:
                say("bootstrap: checking model version 1")
                result = bootstrap_model(settings, db=db, progress=say)
                say(f"bootstrap: tabtransformer version {result['version']} "
                    + ("registered" if result["created"] else "already registered"))
        env = standalone_environment(settings, uri, port=port)
        env.update(extra_env or {})
        home = settings.airflow_home
        home.mkdir(parents=True, exist_ok=True)
        _migrate(env, home, say)
        log_path = home / "standalone.log"
        say(f"starting airflow standalone on port {port} (log: {log_path})")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "airflow"), "standalone"],
                env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us only; we stop the tree in order
                preexec_fn=_default_sigint,
            )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + startup_timeout
            _wait_healthy(process, base_url, deadline, log_path, say)
            username, password = _read_password(home / PASSWORDS_FILE, process, deadline, log_path)
            handle = StandaloneAirflow(base_url=base_url, username=username, password=password, airflow_home=home,
                                       log_path=log_path, mongo_uri=uri, pid=process.pid)
            _wait_for_dags(process, handle, deadline, log_path, say)
            yield handle
        finally:
            say("stopping airflow standalone")
            try:
                stop_process_tree(process)
            except KeyboardInterrupt:  # a second Ctrl-C: no more grace
                stop_process_tree(process, grace=0.0)
                raise


def run_standalone(settings: "Settings", *, port: int = 8080, console: "Console | None" = None) -> int:
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
    stop = threading.Event()
    restore = _on_sigterm(stop)
    try:
        started = time.perf_counter()
        with standalone_airflow(settings, port=port, progress=console.log) as airflow:
            console.print(_banner(airflow, time.perf_counter() - started), soft_wrap=True)  # commands stay copyable
            try:
                while not stop.is_set():
                    if _exited(airflow.pid):
                        console.print(f"[bold red]airflow standalone exited on its own[/]; see {airflow.log_path}")
                        return 1
                    stop.wait(1.0)
            except KeyboardInterrupt:
                pass
            console.print("stopping Airflow and MongoDB ...")
        console.print("stopped")
        return 0
    except KeyboardInterrupt:  # Ctrl-C during bootstrap or startup: the contexts above cleaned up
        console.print("interrupted; stopped")
        return 0
    finally:
        restore()


def stop_process_tree(process: subprocess.Popen, *, grace: float = 30.0) -> None:
    """Stop ``process`` (started with ``start_new_session=True``) and every process of its session.

    ``airflow standalone`` stops its components on SIGINT (it only handles
    ``KeyboardInterrupt``); task processes put themselves in their own
    process group but stay in the session, so survivors are found by session
    id and sent SIGTERM, then SIGKILL after ``grace`` / 3 seconds.

    Parameters
    ----------
    process : subprocess.Popen
        The session leader this module started.
    grace : float
        Seconds to wait for a clean shutdown after SIGINT.
    """
    import psutil

    session = process.pid
    tree = _session_members(session)
    try:
        tree += psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        pass
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=grace / 3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    survivors = {p.pid: p for p in tree + _session_members(session) if p.is_running()}
    for proc in survivors.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(list(survivors.values()), timeout=grace / 3)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


# --- helpers -----------------------------------------------------------------

def _banner(airflow: StandaloneAirflow, seconds: float) -> str:
    api = f"{airflow.base_url}/api/v2"
    token = (f"TOKEN=$(curl -s -X POST {airflow.base_url}/auth/token -H 'Content-Type: application/json' "
             f"-d '{{\"username\": \"{airflow.username}\", \"password\": \"{airflow.password}\"}}' "
             "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    trigger = "\n".join(
        f"  curl -X POST {api}/dags/{dag_id}/dagRuns -H \"Authorization: Bearer $TOKEN\" "
        f"-H 'Content-Type: application/json' -d '{{\"logical_date\": \"2026-11-01T00:00:00Z\""
        + (', "conf": {"f1_threshold": 0.0}' if dag_id == "model_evaluation_pipeline" else "") + "}'"
        for dag_id in DAG_IDS
    )
    return (
        f"\n[bold green]Airflow is ready[/] after {seconds:.0f} s\n"
        f"  UI:        [bold]{airflow.base_url}[/]\n"
        f"  username:  [bold]{airflow.username}[/]\n"
        f"  password:  [bold]{airflow.password}[/]   (stored in {airflow.airflow_home / PASSWORDS_FILE})\n"
        f"  MongoDB:   {airflow.mongo_uri}\n"
        f"  log:       {airflow.log_path}\n\n"
        "The DAGs are unpaused and scheduled @daily, so the scheduler also runs the latest day by itself.\n"
        "To run a day yourself, trigger all three for the same logical date: in the UI, Trigger on\n"
        "data_pipeline_dag, model_evaluation_pipeline (params f1_threshold, max_retrain_attempts) and\n"
        "model_deployment_pipeline; or with the REST API:\n"
        f"  {token}\n{trigger}\n"
        "The sensors poke every 30-60 s, so a day takes a few minutes. Stop with Ctrl-C.\n"
    )


def _migrate(env: dict[str, str], home: Path, say: Callable[[str], None]) -> None:
    """``airflow db migrate`` when the SQLite database does not exist yet (``_runner.configure_airflow``
    does the same but exports into ``os.environ``, which this context manager must not change)."""
    if (home / "airflow.db").exists():
        return
    say(f"creating the Airflow metadata database in {home} (airflow db migrate)")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "airflow"), "db", "migrate"],
                          env=env, cwd=home, capture_output=True, text=True)
    if done.returncode != 0:
        raise MLOpsError(f"`airflow db migrate` failed in {home}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def _wait_healthy(process: subprocess.Popen, url: str, deadline: float, log_path: Path,
                  say: Callable[[str], None]) -> None:
    import httpx

    say("waiting for the API server, scheduler, DAG processor and triggerer")
    last = "no answer yet"
    while time.monotonic() < deadline:
        _check_alive(process, log_path)
        try:
            response = httpx.get(f"{url}/api/v2/monitor/health", timeout=5.0)
            if response.status_code == 200:
                health = response.json()
                unhealthy = [c for c in HEALTH_COMPONENTS if (health.get(c) or {}).get("status") != "healthy"]
                if not unhealthy:
                    return
                last = f"not healthy yet: {', '.join(unhealthy)}"
            else:
                last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(1.0)
    raise MLOpsError(f"Airflow was not healthy at {url}/api/v2/monitor/health in time ({last}); "
                     f"see {log_path}:\n{_tail(log_path)}")


def _read_password(path: Path, process: subprocess.Popen, deadline: float, log_path: Path) -> tuple[str, str]:
    """The first user of the simple auth manager's generated password file (``admin`` by default)."""
    while time.monotonic() < deadline:
        _check_alive(process, log_path)
        if path.is_file():
            with contextlib.suppress(ValueError):
                users = json.loads(path.read_text())
                if users:
                    username = "admin" if "admin" in users else next(iter(users))
                    return username, str(users[username])
        time.sleep(0.5)
    raise MLOpsError(f"no admin password in {path}; if you set AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS "
                     "or AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS, unset them")


def _wait_for_dags(process: subprocess.Popen, airflow: StandaloneAirflow, deadline: float, log_path: Path,
                   say: Callable[[str], None]) -> None:
    import httpx

    say("waiting for the DAG processor to parse the three DAGs")
    headers = {"Authorization": f"Bearer {airflow.access_token()}"}
    missing: list[str] = list(DAG_IDS)
    with httpx.Client(base_url=airflow.base_url, headers=headers, timeout=10.0) as client:
        while time.monotonic() < deadline:
            _check_alive(process, log_path)
            errors = client.get("/api/v2/importErrors").json().get("import_errors", [])
            if errors:
                detail = "\n".join(f"{e.get('filename')}: {e.get('stack_trace', '')[-1500:]}" for e in errors)
                raise MLOpsError(f"the DAG files do not import; fix them (MLOPS_DAGS_FOLDER):\n{detail}")
            missing = [d for d in DAG_IDS if client.get(f"/api/v2/dags/{d}").status_code != 200]
            if not missing:
                return
            time.sleep(2.0)
    raise MLOpsError(f"DAGs {missing} did not appear in Airflow in time; check MLOPS_DAGS_FOLDER and {log_path}")


def _check_alive(process: subprocess.Popen, log_path: Path) -> None:
    if process.poll() is not None:
        raise MLOpsError(f"airflow standalone exited with status {process.returncode}; "
                         f"see {log_path}:\n{_tail(log_path)}")


def _exited(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _session_members(session: int) -> list[Any]:
    import psutil

    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if proc.pid != session and os.getsid(proc.pid) == session:
                members.append(proc)
    return members


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _bind_error(port: int) -> OSError | None:
    """Why TCP ``port`` cannot be bound like uvicorn does (all interfaces, SO_REUSEADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            return exc
    return None


def _port_free(port: int) -> bool:
    return _bind_error(port) is None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so Python turns it into ``KeyboardInterrupt``.

    A process started in the background by a non-interactive shell inherits
    SIGINT ignored, and ``airflow standalone`` would then ignore the SIGINT
    that asks it to stop its components.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _on_sigterm(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM raise ``KeyboardInterrupt`` (like Ctrl-C) in the main thread; return the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        if not stop.is_set():  # a repeated SIGTERM must not interrupt the shutdown it started
            stop.set()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
