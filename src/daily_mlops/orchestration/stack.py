"""The docker-compose topology without Docker: CeleryExecutor, Postgres, Redis and two Celery workers.

``daily-mlops stack`` (``make stack``) uses this. :func:`native_stack` owns the
whole lifetime:

1. the Airflow settings are those of ``docker-compose.yml``'s
   ``x-airflow-common`` environment, read from the file
   (:func:`compose_environment`; one source of truth), with
   ``${VAR:-default}`` taken from this process's environment, every required
   ``${VAR:?...}`` secret generated afresh (:func:`generate_secrets`; nothing is
   written to the repository), and compose addresses rewritten to host-local ones
   (:func:`localise`): ``postgres`` and ``redis`` to the private ports below,
   ``airflow-apiserver:8080`` to the local API port, ``mongo`` to the loop's
   MongoDB, container paths to host paths;
2. Postgres and Redis from Debian's packages (:mod:`daily_mlops.orchestration.services`,
   installed with ``apt-get`` when missing and root), the MongoDB of the loop
   (``MLOPS_MONGO_URI`` or the embedded SecantusDB server), model version 1
   bootstrapped if missing;
3. ``airflow db migrate``, then one process per component, each in its own
   session with its log in ``MLOPS_HOME/stack/logs``: ``api-server``,
   ``scheduler``, ``dag-processor``, ``triggerer`` and two ``celery worker``\\ s
   (``worker-a``, ``worker-b``) with separate ``MLOPS_HOME``\\ s
   (``MLOPS_HOME/stack/workers/<name>``) and the shared deployment directory
   (``MLOPS_DEPLOYMENT_DIR``, the launcher's), so the workers share only
   MongoDB, Postgres, Redis and that directory, as compose's replicas do;
4. ready when ``/api/v2/monitor/health`` is healthy and the three DAGs are
   parsed; the DAGs are then unpaused. On exit every process is stopped, the
   workers first (warm shutdown), and Postgres' and Redis' directories removed.

Differences from the compose file, each forced by the host: the simple auth
manager replaces FAB (the FAB provider is not a dependency of this project), so
the login is ``admin`` with the generated ``_AIRFLOW_WWW_USER_PASSWORD``; every
component listens on a private port (API, log servers, scheduler health check);
worker ``-H worker-a@%h`` Celery names and a ``[core] hostname_callable``
(:mod:`daily_mlops.orchestration.hostname`) tell the two workers apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.orchestration.dags import DAG_IDS, DATA_DAG_ID, day_run_id
from daily_mlops.orchestration.environment import airflow_conn_uri, settings_environment
from daily_mlops.orchestration.processes import (
    default_sigint,
    exited,
    free_port,
    require_free_port,
    run_until_stopped,
    stop_process_tree,
)
from daily_mlops.orchestration.readiness import log_tail, wait_for_dags, wait_healthy

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from daily_mlops.settings import Settings

__all__ = [
    "NativeStack", "compose_environment", "generate_secrets", "localise", "native_stack", "required_variables",
    "run_stack", "stack_environment", "substitute", "worker_queues",
]

#: Compose services whose ``host[:port]`` in a URL value is rewritten to a host-local address.
LOCAL_SERVICES = ("postgres", "redis", "airflow-apiserver")
#: Variables naming the compose ``mongo`` service: replaced by the loop's MongoDB URI (embedded or MLOPS_MONGO_URI).
MONGO_VARIABLES = ("AIRFLOW_CONN_MONGO_DEFAULT", "MLOPS_MONGO_URI")
#: Where the container paths of ``x-airflow-common`` live on this host (keys: variables, values: Settings-derived).
CONTAINER_PATH_VARIABLES = ("AIRFLOW__CORE__DAGS_FOLDER", "MLOPS_HOME", "MLOPS_REFERENCE_DATA", "MLOPS_DEPLOYMENT_DIR")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
#: The two Celery workers of the stack (``worker-b`` also serves ``MLOPS_TRAINING_QUEUE``).
WORKERS = ("worker-a", "worker-b")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --- the compose file, read and localised --------------------------------------

def compose_environment(compose_file: Path) -> dict[str, str]:
    """The ``environment`` of ``x-airflow-common`` in ``compose_file``, as written (``${...}`` kept).

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or has no ``x-airflow-common.environment`` mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(compose_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the compose file {compose_file}: {exc}") from None
    env = ((data or {}).get("x-airflow-common") or {}).get("environment")
    if not isinstance(env, dict):
        raise ConfigError(f"{compose_file} has no x-airflow-common.environment mapping; "
                          "daily-mlops stack takes the Airflow settings from there")
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def required_variables(compose_file: Path) -> list[str]:
    """Names substituted as ``${NAME:?message}`` anywhere in ``compose_file``, sorted.

    These are its required variables: the secrets.

    Raises
    ------
    ConfigError
        When the file cannot be read.
    """
    try:
        text = compose_file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the compose file {compose_file}: {exc}") from None
    return sorted({m["name"] for m in _VARIABLE.finditer(text) if m["op"] in (":?", "?")})


def generate_secrets(names: list[str]) -> dict[str, str]:
    """A fresh random value for each name: a Fernet key for ``AIRFLOW__CORE__FERNET_KEY``, else
    ``secrets.token_urlsafe(24)`` (safe inside connection URLs), as ``scripts/generate_env.py`` does."""
    from cryptography.fernet import Fernet

    return {name: Fernet.generate_key().decode("ascii") if name == "AIRFLOW__CORE__FERNET_KEY"
            else secrets.token_urlsafe(24) for name in names}


def substitute(value: str, variables: Mapping[str, str], *, where: str = "") -> str:
    """Substitute like docker compose.

    ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?msg}``; ``$$`` -> ``$``.

    Raises
    ------
    ConfigError
        For a ``${NAME:?msg}`` whose variable is unset or empty (the message names it), or a ``${NAME}``
        without default that is unset.
    """

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = variables.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            if not value:
                raise ConfigError(f"{where}: {name} is required ({arg})")
            return value
        if value is None:
            raise ConfigError(f"{where}: {name} is not set")
        return value

    return _VARIABLE.sub(one, value)


def localise(raw: Mapping[str, str], *, variables: Mapping[str, str], addresses: Mapping[str, tuple[str, int]],
             paths: Mapping[str, str], mongo_uri: str) -> dict[str, str]:
    """The compose environment for processes on this host.

    Parameters
    ----------
    raw : mapping
        :func:`compose_environment`.
    variables : mapping
        Values of the ``${...}`` variables (the shell environment plus generated secrets).
    addresses : mapping
        ``{service: (host, port)}`` for each of :data:`LOCAL_SERVICES`.
    paths : mapping
        Host path of each variable of :data:`CONTAINER_PATH_VARIABLES`.
    mongo_uri : str
        ``mongodb://`` URI of the loop's MongoDB (replaces :data:`MONGO_VARIABLES`).

    Raises
    ------
    ConfigError
        When a value is a URL of a service that has no local address, or a container path
        (``/opt/airflow/...``) that has no host path: add it here before using the new compose setting.
    """
    env: dict[str, str] = {}
    for key, template in raw.items():
        if key in MONGO_VARIABLES:
            env[key] = airflow_conn_uri(mongo_uri) if key.startswith("AIRFLOW_CONN_") else mongo_uri
            continue
        if key in CONTAINER_PATH_VARIABLES:
            env[key] = paths[key]
            continue
        value = substitute(template, variables, where=f"docker-compose.yml x-airflow-common {key}")
        if value.startswith("/opt/airflow"):
            raise ConfigError(f"docker-compose.yml sets {key} to the container path {value}; "
                              f"add its host path to daily_mlops.orchestration.stack.CONTAINER_PATH_VARIABLES")
        env[key] = _rewrite_url(key, value, addresses)
    return env


def _rewrite_url(key: str, value: str, addresses: Mapping[str, tuple[str, int]]) -> str:
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.hostname is None:
        return value
    if parts.hostname not in addresses:
        raise ConfigError(f"docker-compose.yml {key} points at the service {parts.hostname!r}, which daily-mlops stack "
                          f"does not run; known: {', '.join(sorted(addresses))}")
    host, port = addresses[parts.hostname]
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{port}"))


# --- the running stack ---------------------------------------------------------

@dataclass
class NativeStack:
    """A running native stack: where to reach it, how to log in, and its processes.

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>``: the UI, the REST API under ``/api/v2``.
    username, password : str
        Simple auth manager login (``admin`` and the generated ``_AIRFLOW_WWW_USER_PASSWORD``).
    root : Path
        ``MLOPS_HOME/stack``: ``airflow/`` (AIRFLOW_HOME, task logs), ``logs/`` (one log per process),
        ``workers/<name>`` (each worker's MLOPS_HOME).
    deployment_dir : Path
        The deployment directory both workers write (``MLOPS_DEPLOYMENT_DIR``).
    mongo_uri : str
        The loop's MongoDB.
    env : dict
        The environment every component starts from (the workers add their own MLOPS_HOME and names).
    processes : dict
        ``{name: Popen}`` of each component and worker started (a replaced worker keeps its entry's name).
    """

    base_url: str
    username: str
    password: str
    root: Path
    deployment_dir: Path
    mongo_uri: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    worker_log_ports: dict[str, int] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def worker_home(self, name: str) -> Path:
        """``MLOPS_HOME`` of worker ``name``."""
        return self.root / "workers" / name

    def access_token(self, *, timeout: float = 30.0) -> str:
        """A JWT for the REST API (``POST /auth/token``).

        Raises
        ------
        MLOpsError
            When the API refuses the login.
        """
        import httpx

        response = httpx.post(f"{self.base_url}/auth/token", json={"username": self.username,
                                                                   "password": self.password}, timeout=timeout)
        if response.status_code not in (200, 201):
            raise MLOpsError(f"Airflow at {self.base_url} refused user {self.username!r} "
                             f"({response.status_code}: {response.text[:200]})")
        return str(response.json()["access_token"])

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start ``airflow <args>`` as component ``name`` in its own session, logging to ``logs/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "airflow"), *args],
                                       env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_sigint)
        self.processes[name] = process
        return process

    def start_worker(self, name: str, queues: list[str], *, concurrency: int | None = None) -> subprocess.Popen:
        """Start Celery worker ``name`` (``-H name@%h``) on ``queues`` with its own MLOPS_HOME.

        A name used before (a replacement for a killed worker) keeps that worker's MLOPS_HOME and log port.
        """
        home = self.worker_home(name)
        home.mkdir(parents=True, exist_ok=True)
        port = self.worker_log_ports.setdefault(name, free_port())
        env = {**self.env, "MLOPS_HOME": str(home), "MLOPS_WORKER_HOSTNAME": name,
               "AIRFLOW__CORE__HOSTNAME_CALLABLE": "daily_mlops.orchestration.hostname.worker_hostname",
               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)}
        args = ["celery", "worker", "-H", f"{name}@%h", "-q", ",".join(queues)]
        if concurrency is not None:
            args += ["--concurrency", str(concurrency)]
        return self.start(name, args, env)

    def kill(self, name: str) -> None:
        """SIGKILL component ``name`` and every process of its session (its running tasks too), at once."""
        import psutil

        from daily_mlops.orchestration.processes import session_members

        process = self.processes[name]
        victims = session_members(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        process.wait()

    def check_alive(self) -> None:
        """Raise when a component or worker has exited on its own.

        Raises
        ------
        MLOpsError
            Naming the process, its exit status and the tail of its log.
        """
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.log_dir / f"{name}.log"
                raise MLOpsError(f"{name} exited with status {process.returncode}; see {log}:\n{log_tail(log)}")

    def stop(self) -> None:
        """Stop the workers (warm shutdown), then the other components, each with its whole session."""
        order = [n for n in self.processes if n not in COMPONENTS] + [n for n in reversed(COMPONENTS)
                                                                       if n in self.processes]
        for name in order:
            try:
                stop_process_tree(self.processes[name], grace=20.0)
            except KeyboardInterrupt:  # a second Ctrl-C: no more grace
                stop_process_tree(self.processes[name], grace=0.0)


def stack_environment(settings: Settings, *, compose_file: Path, mongo_uri: str, api_port: int,
                      postgres_port: int, redis_port: int, root: Path,
                      variables: Mapping[str, str]) -> dict[str, str]:
    """The environment every stack component starts from.

    ``os.environ``, then every ``Settings`` field as ``MLOPS_*``
    (:func:`~daily_mlops.orchestration.environment.settings_environment`), then the
    localised compose environment (:func:`localise`), then what only a host needs:
    ``AIRFLOW_HOME``, the API port, private log-server and health-check ports, the simple
    auth manager, the venv's ``bin`` first on ``PATH``. ``AIRFLOW__*`` variables of
    ``os.environ`` that the compose file does not set pass through (e.g.
    ``AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT``).

    Raises
    ------
    ConfigError
        As :func:`compose_environment` and :func:`localise`.
    """
    env = dict(os.environ)
    for key, value in settings_environment(settings).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    addresses = {"postgres": ("127.0.0.1", postgres_port), "redis": ("127.0.0.1", redis_port),
                 "airflow-apiserver": ("localhost", api_port)}
    paths = {"AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder), "MLOPS_HOME": str(settings.home),
             "MLOPS_REFERENCE_DATA": str(settings.reference_data),
             "MLOPS_DEPLOYMENT_DIR": str(settings.deployment_path)}
    env.update(localise(compose_environment(compose_file), variables=variables, addresses=addresses, paths=paths,
                        mongo_uri=mongo_uri))
    airflow_home = root / "airflow"
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{variables.get('_AIRFLOW_WWW_USER_USERNAME') or 'admin'}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    })
    # Airflow's default is one API worker per core; one serves a laptop and leaves the cores to the tasks.
    env.setdefault("AIRFLOW__API__WORKERS", "1")
    return env


@contextlib.contextmanager
def native_stack(
    settings: Settings,
    *,
    port: int = 8080,
    compose_file: Path | None = None,
    bootstrap: bool = True,
    startup_timeout: float = 420.0,
    progress: Callable[[str], None] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[NativeStack]:
    """Run the compose topology on this host; yield how to reach it; stop every process on exit.

    Parameters
    ----------
    settings : Settings
        ``MLOPS_HOME`` (the stack lives in ``MLOPS_HOME/stack``, recreated at each start), the
        MongoDB, the DAG folder, the deployment directory, the training queue.
    port : int
        TCP port of the API server and UI.
    compose_file : Path, optional
        Default: ``docker-compose.yml`` beside the DAG folder (the repository's).
    bootstrap : bool
        Train and register model version 1 first when it is missing.
    startup_timeout : float
        Seconds for migration, a healthy API and the parsed DAGs.
    progress : callable, optional
        Called with one line per step.
    extra_env : dict, optional
        Variables set last in every component (e.g. a short heartbeat timeout in a test).

    Raises
    ------
    ConfigError
        Postgres or Redis missing and not root; a compose setting without a local equivalent.
    MLOpsError
        A service or component that fails to start or exits (its log tail is included).
    """
    from daily_mlops.orchestration.services import ensure_packages, postgres_server, redis_server
    from daily_mlops.storage.mongo import mongo_uri

    say = progress or (lambda message: None)
    require_free_port(port, "daily-mlops stack")
    compose_file = compose_file or settings.dags_folder.parent / "docker-compose.yml"
    compose_environment(compose_file)
    ensure_packages(say)
    generated = generate_secrets(required_variables(compose_file))
    # compose substitutes from the shell; the settings (env, .env, YAML) are what the launcher runs with
    exported = {k: v for k, v in settings_environment(settings).items() if v is not None}
    variables = {**os.environ, **exported, **generated}
    root = settings.home / "stack"
    shutil.rmtree(root, ignore_errors=True)  # its Postgres is new at each start: old logs would describe other runs
    deadline = time.monotonic() + startup_timeout
    with contextlib.ExitStack() as stack:
        uri = stack.enter_context(mongo_uri(settings))
        if bootstrap:
            from daily_mlops.loop.bootstrap import bootstrap_if_missing

            bootstrap_if_missing(settings, uri, progress=say)
        pg_user = substitute("${POSTGRES_USER:-airflow}", variables)
        say("starting Postgres and Redis (Debian packages, private ports)")
        postgres = stack.enter_context(postgres_server(user=pg_user, password=variables["POSTGRES_PASSWORD"],
                                                       database="airflow", port=free_port()))
        redis = stack.enter_context(redis_server(password=variables["REDIS_PASSWORD"], port=free_port()))
        env = stack_environment(settings, compose_file=compose_file, mongo_uri=uri, api_port=port,
                                postgres_port=postgres.port, redis_port=redis.port, root=root, variables=variables)
        env.update(extra_env or {})
        airflow_home = Path(env["AIRFLOW_HOME"])
        airflow_home.mkdir(parents=True, exist_ok=True)
        username = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")[0]
        password = variables["_AIRFLOW_WWW_USER_PASSWORD"]
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.write_text(json.dumps({username: password}))
        passwords.chmod(0o600)
        handle = NativeStack(base_url=f"http://127.0.0.1:{port}", username=username, password=password, root=root,
                             deployment_dir=settings.deployment_path, mongo_uri=uri, env=env)
        say("migrating the Airflow metadata database on Postgres (airflow db migrate)")
        _migrate(env, root)
        stack.callback(handle.stop)
        for name in COMPONENTS:
            handle.start(name, [name, "--port", str(port)] if name == "api-server" else [name], env)
        for name in WORKERS:
            handle.start_worker(name, worker_queues(name, settings.training_queue))
        say(f"started {', '.join(handle.processes)} (logs in {handle.log_dir})")
        wait_healthy(handle.base_url, deadline, check_alive=handle.check_alive,
                     log_path=handle.log_dir / "api-server.log", say=say)
        token = handle.access_token()
        wait_for_dags(handle.base_url, token, DAG_IDS, deadline, check_alive=handle.check_alive,
                      log_path=handle.log_dir / "dag-processor.log", say=say)
        _unpause(handle.base_url, token)
        yield handle


def worker_queues(name: str, training_queue: str) -> list[str]:
    """Celery queues of stack worker ``name``: ``default`` for both; ``worker-b`` also ``training_queue``."""
    queues = ["default"]
    if name == WORKERS[1] and training_queue not in queues:
        queues.append(training_queue)
    return queues


def _migrate(env: dict[str, str], root: Path) -> None:
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    done = subprocess.run([airflow, "db", "migrate"], env=env, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise MLOpsError(f"`airflow db migrate` on Postgres failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def _unpause(base_url: str, token: str) -> None:
    import httpx

    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for dag_id in DAG_IDS:
            response = client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            if response.status_code != 200:
                raise MLOpsError(f"could not unpause {dag_id}: {response.status_code} {response.text[:200]}")


def run_stack(settings: Settings, *, port: int = 8080, console: Console | None = None) -> int:
    """Run the native stack until Ctrl-C or SIGTERM; print the URL, the login and how to trigger a day.

    Returns
    -------
    int
        0 after a requested stop; 1 when a component exited on its own (its log is named).

    Raises
    ------
    ConfigError, MLOpsError
        As :func:`native_stack`.
    """
    from rich.console import Console

    console = console or Console()

    def dead(running: NativeStack) -> str | None:
        names = [name for name, process in running.processes.items() if exited(process.pid)]
        return f"{', '.join(names)} exited on its own; see {running.log_dir}" if names else None

    return run_until_stopped(lambda: native_stack(settings, port=port, progress=console.log), banner=_banner,
                             dead=dead, console=console,
                             stopping="stopping the workers, Airflow, Redis, Postgres and MongoDB ...")


def _banner(stack: NativeStack, seconds: float) -> str:
    example = "2026-11-01T00:00:00Z"
    from datetime import datetime

    run_id = day_run_id(datetime.fromisoformat(example.replace("Z", "+00:00")))
    token = (f"TOKEN=$(curl -s -X POST {stack.base_url}/auth/token -H 'Content-Type: application/json' "
             f"-d '{{\"username\": \"{stack.username}\", \"password\": \"{stack.password}\"}}' "
             "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    trigger = (f"curl -X POST {stack.base_url}/api/v2/dags/{DATA_DAG_ID}/dagRuns -H \"Authorization: Bearer $TOKEN\" "
               f"-H 'Content-Type: application/json' "
               f"-d '{{\"logical_date\": \"{example}\", \"dag_run_id\": \"{run_id}\"}}'")
    workers = ", ".join(f"{n} (MLOPS_HOME {stack.worker_home(n)})" for n in stack.processes if n not in COMPONENTS)
    return (
        f"\n[bold green]The stack is ready[/] after {seconds:.0f} s (CeleryExecutor, Postgres, Redis)\n"
        f"  UI:          [bold]{stack.base_url}[/]\n"
        f"  username:    [bold]{stack.username}[/]\n"
        f"  password:    [bold]{stack.password}[/]   (generated at this start)\n"
        f"  workers:     {workers}\n"
        f"  deployment:  {stack.deployment_dir}\n"
        f"  MongoDB:     {stack.mongo_uri}\n"
        f"  logs:        {stack.log_dir}\n\n"
        f"The DAGs are unpaused. Trigger a day (only {DATA_DAG_ID}; it triggers the other two):\n"
        f"  {token}\n  {trigger}\n"
        "Stop with Ctrl-C: every process is stopped.\n"
    )
