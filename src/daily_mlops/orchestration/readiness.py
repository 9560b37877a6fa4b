"""Waiting for a local Airflow to be ready: a deadline loop, a healthy ``/api/v2/monitor/health``, parsed DAGs.

Shared by ``daily-mlops airflow`` (:mod:`daily_mlops.orchestration.standalone`, one
``airflow standalone`` process) and ``daily-mlops stack``
(:mod:`daily_mlops.orchestration.stack`, one process per component). Each
caller passes ``check_alive``, which raises :class:`~daily_mlops.errors.MLOpsError`
when one of its processes has exited, so a dead component stops the wait at once.
Uses tenacity (``retry_if_exception_type``, ``stop_before_delay``, ``wait_fixed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from daily_mlops.errors import MLOpsError

__all__ = ["HEALTH_COMPONENTS", "NotYet", "log_tail", "until", "wait_for_dags", "wait_healthy"]

#: Components ``GET /api/v2/monitor/health`` must report healthy (Airflow 3 REST API, "Monitor").
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class NotYet(Exception):
    """A readiness check that has not passed yet (retried by :func:`until` until the deadline)."""


def until(deadline: float, check: Callable[[], Any], *, every: float, what: str, log_path: Path) -> Any:
    """Call ``check`` every ``every`` seconds until it returns without :class:`NotYet`, or the deadline passes.

    Parameters
    ----------
    deadline : float
        ``time.monotonic()`` value after which the wait fails.
    every : float
        Seconds between calls.
    what : str
        What is awaited, for the error message.
    log_path : Path
        Log whose tail the error message shows.

    Raises
    ------
    MLOpsError
        At the deadline, with the last reason and the tail of ``log_path``;
        at once for any other error ``check`` raises (e.g. a process exited).
    """
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(NotYet), wait=tenacity.wait_fixed(every),
        stop=tenacity.stop_before_delay(max(deadline - time.monotonic(), 0.0)), reraise=True,
    )
    try:
        return retrying(check)
    except NotYet as exc:
        raise MLOpsError(f"{what} did not happen in time ({exc}); see {log_path}:\n{log_tail(log_path)}") from None


def wait_healthy(url: str, deadline: float, *, check_alive: Callable[[], None], log_path: Path,
                 say: Callable[[str], None], components: Iterable[str] = HEALTH_COMPONENTS) -> None:
    """Wait until ``GET {url}/api/v2/monitor/health`` reports every one of ``components`` healthy.

    Raises
    ------
    MLOpsError
        As :func:`until`.
    """
    import httpx

    components = tuple(components)
    say("waiting for the API server, scheduler, DAG processor and triggerer")

    def healthy() -> None:
        check_alive()
        try:
            response = httpx.get(f"{url}/api/v2/monitor/health", timeout=5.0)
        except httpx.HTTPError as exc:
            raise NotYet(type(exc).__name__) from None
        if response.status_code != 200:
            raise NotYet(f"HTTP {response.status_code}")
        health = response.json()
        unhealthy = [c for c in components if (health.get(c) or {}).get("status") != "healthy"]
        if unhealthy:
            raise NotYet(f"not healthy yet: {', '.join(unhealthy)}")

    until(deadline, healthy, every=1.0, what=f"a healthy Airflow at {url}/api/v2/monitor/health", log_path=log_path)


def wait_for_dags(url: str, token: str, dag_ids: Iterable[str], deadline: float, *, check_alive: Callable[[], None],
                  log_path: Path, say: Callable[[str], None]) -> None:
    """Wait until the REST API knows every DAG of ``dag_ids``; fail at once on a DAG import error.

    Raises
    ------
    MLOpsError
        When a DAG file does not import (its stack trace is included), or as :func:`until`.
    """
    import httpx

    dag_ids = tuple(dag_ids)
    say(f"waiting for the DAG processor to parse the {len(dag_ids)} DAGs")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0) as client:

        def parsed() -> None:
            check_alive()
            errors = client.get("/api/v2/importErrors").json().get("import_errors", [])
            if errors:
                detail = "\n".join(f"{e.get('filename')}: {e.get('stack_trace', '')[-1500:]}" for e in errors)
                raise MLOpsError(f"the DAG files do not import; fix them (MLOPS_DAGS_FOLDER):\n{detail}")
            missing = [d for d in dag_ids if client.get(f"/api/v2/dags/{d}").status_code != 200]
            if missing:
                raise NotYet(f"DAGs {missing} not parsed yet; check MLOPS_DAGS_FOLDER")

        until(deadline, parsed, every=2.0, what=f"the DAGs {', '.join(dag_ids)} in Airflow", log_path=log_path)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
