"""``daily-mlops mongo``, ``airflow`` and ``stack``: the embedded MongoDB, a real Airflow, the native stack.

Each serves until it is stopped (Ctrl-C); a user error exits 2.
"""

from __future__ import annotations

from typing import Any

import typer

from daily_mlops.cli.output import console, fail, settings_in_effect
from daily_mlops.errors import MLOpsError

__all__ = ["airflow", "mongo", "stack"]


def mongo(port: int = typer.Option(27017, help="Loopback port to serve the embedded MongoDB on.")) -> None:
    """Serve the embedded MongoDB (MLOPS_HOME/data/mongo) until Ctrl-C, e.g. for mongosh queries."""
    import signal
    import threading

    from daily_mlops.storage.mongo import MONGOSH_EXAMPLE, embedded_server

    settings = settings_in_effect()
    if settings.mongo_uri:
        fail(MLOpsError("MLOPS_MONGO_URI is set: query that server directly; `mongo` serves the embedded one"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with embedded_server(settings.embedded_mongo_path, port=port) as uri:
            console.print(f"embedded MongoDB at [bold]{uri}[/] (database {settings.mongo_db!r}); Ctrl-C stops it")
            console.print(f"  npx mongosh '{uri}{settings.mongo_db}' --eval '{MONGOSH_EXAMPLE}'")
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
    except MLOpsError as exc:
        fail(exc)


def airflow(
    port: int = typer.Option(8080, help="Port of the Airflow API server and UI."),
) -> None:
    """Run a real Airflow (standalone) with this project's DAGs and the embedded MongoDB; print URL and login."""
    from daily_mlops.orchestration.standalone import run_standalone

    _run_until_stopped(run_standalone, port)


def stack(
    port: int = typer.Option(8080, help="Port of the Airflow API server and UI."),
) -> None:
    """Run the docker-compose topology natively (CeleryExecutor, Postgres, Redis, two workers); print URL and login."""
    from daily_mlops.orchestration.stack import run_stack

    _run_until_stopped(run_stack, port)


def _run_until_stopped(run: Any, port: int) -> None:
    """``run(settings, port=, console=)`` (``run_standalone`` / ``run_stack``); exit with its code, 2 on a user
    error."""
    settings = settings_in_effect()
    try:
        code = run(settings, port=port, console=console)
    except MLOpsError as exc:
        fail(exc)
    raise typer.Exit(code)
