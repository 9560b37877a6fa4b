"""The local Airflow's environment: AIRFLOW_* variables, the Mongo connection URI, the metadata database.

Shared by ``daily-mlops run`` (:mod:`daily_mlops.orchestration.runner`,
``dag.test`` in this process) and ``daily-mlops airflow``
(:mod:`daily_mlops.orchestration.standalone`, a subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.orchestration.processes import free_port, port_free

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = [
    "airflow_conn_uri", "airflow_environment", "configure_airflow", "migrate_metadata_db", "settings_environment",
    "standalone_environment",
]


#: Log-server ports Airflow opens besides the API (``[logging] worker_log_server_port`` /
#: ``trigger_log_server_port`` defaults); moved to a free port when taken and not configured.
LOG_SERVER_PORTS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": 8794,
}
#: ``[core] parallelism`` (task slots = LocalExecutor worker processes) unless set in the environment.
PARALLELISM = 8
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def airflow_conn_uri(mongo_uri: str) -> str:
    """Turn a ``mongodb://`` URI into the form of ``AIRFLOW_CONN_MONGO_DEFAULT``.

    MongoHook requires the connection type ``mongo`` (providers-mongo 5.5,
    ``MongoHook._validate_connection``); query options become connection
    extras that the hook passes to ``MongoClient``.

    Raises
    ------
    ConfigError
        For a ``mongodb+srv://`` URI, which MongoHook expresses as ``srv`` in
        the extras instead.
    """
    if mongo_uri.startswith("mongodb+srv://"):
        raise ConfigError(
            "MLOPS_MONGO_URI uses mongodb+srv://; define AIRFLOW_CONN_MONGO_DEFAULT yourself "
            "with conn_type 'mongo' and extra {\"srv\": true}"
        )
    if not mongo_uri.startswith("mongodb://"):
        raise ConfigError(f"MLOPS_MONGO_URI must start with mongodb:// (got {mongo_uri!r})")
    rest = mongo_uri[len("mongodb://"):]
    if "/" not in rest.split("?")[0]:
        rest = rest.replace("?", "/?", 1) if "?" in rest else rest + "/"
    return "mongo://" + rest


def airflow_environment(settings: Settings, mongo_uri: str) -> dict[str, str]:
    """Environment variables for a local Airflow running this project's DAGs against ``mongo_uri``."""
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW_CONN_MONGO_DEFAULT": airflow_conn_uri(mongo_uri),
        "MLOPS_HOME": str(settings.home),
        "MLOPS_MONGO_DB": settings.mongo_db,
        "MLOPS_MONGO_CONN_ID": "mongo_default",
        # dag.test runs tasks in this process: a failure should surface now, not after minutes of backoff.
        "MLOPS_TASK_RETRIES": "0",
    }


def configure_airflow(
    settings: Settings, mongo_uri: str, *, quiet: bool = False, say: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Export the local Airflow environment and create its metadata database on first use.

    Airflow's console logs are plain text (no colours; ``daily-mlops run``
    writes them to a log file), at INFO unless ``quiet`` (WARNING) or
    ``AIRFLOW__LOGGING__LOGGING_LEVEL`` says otherwise. ``say`` hears that
    the metadata database is being created (it takes a while).

    Raises
    ------
    MLOpsError
        When ``airflow db migrate`` fails (its output is included).
    """
    env = airflow_environment(settings, mongo_uri)
    os.environ.update(env)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    if quiet:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("AIRFLOW__LOGGING__COLORED_CONSOLE_LOG", "False")
    migrate_metadata_db({**os.environ}, settings.airflow_home, say=say)
    return env


def migrate_metadata_db(env: dict[str, str], home: Path, say: Callable[[str], None] | None = None) -> bool:
    """Create the SQLite metadata database with ``airflow db migrate`` unless it exists; True when it ran.

    Parameters
    ----------
    env : dict
        The environment of the ``airflow`` subprocess (from :func:`airflow_environment`).
    home : Path
        ``AIRFLOW_HOME``; the database is ``home/airflow.db``.

    Raises
    ------
    MLOpsError
        When ``airflow db migrate`` fails (the end of its output is included).
    """
    if (home / "airflow.db").exists():
        return False
    if say is not None:
        say(f"creating the Airflow metadata database in {home} (airflow db migrate)")
    home.mkdir(parents=True, exist_ok=True)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    done = subprocess.run([airflow, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True)
    if done.returncode != 0:
        raise MLOpsError(f"`airflow db migrate` failed in {home}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return True


def settings_environment(settings: Settings) -> dict[str, str | None]:
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


def standalone_environment(settings: Settings, mongo_uri: str, *, port: int,
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
        ``base`` plus :func:`daily_mlops.orchestration.environment.airflow_environment`, the
        settings, ``PATH`` with the venv's ``bin`` first, the port, the
        execution API URL, the simple auth manager and unpaused new DAGs.
    """
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
        if key not in env and not port_free(default):
            env[key] = str(free_port())
    # Airflow's default (32) starts 32 LocalExecutor worker processes; a day never runs more than 4 tasks at once.
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(PARALLELISM))
    return env
