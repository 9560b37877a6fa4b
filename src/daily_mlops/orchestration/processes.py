"""Processes and ports of the local Airflow: stopping a process session, free ports, signals.

Uses psutil (https://psutil.readthedocs.io/) to find every member of a
process session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

T = TypeVar("T")

__all__ = [
    "bind_error", "default_sigint", "exited", "free_port", "on_sigterm", "port_free", "require_free_port",
    "run_until_stopped",
    "stop_process_tree",
]


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
    tree = session_members(session)
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
    survivors = {p.pid: p for p in tree + session_members(session) if p.is_running()}
    for proc in survivors.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(list(survivors.values()), timeout=grace / 3)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def exited(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def session_members(session: int) -> list[Any]:
    import psutil

    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if proc.pid != session and os.getsid(proc.pid) == session:
                members.append(proc)
    return members


def bind_error(port: int) -> OSError | None:
    """Why TCP ``port`` cannot be bound like uvicorn does (all interfaces, SO_REUSEADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            return exc
    return None


def require_free_port(port: int, command: str) -> None:
    """Check that ``port`` is a TCP port this process can bind, before anything is started on it.

    Raises
    ------
    ConfigError
        When it is not a TCP port, or is in use / cannot be bound (the message suggests a free one for ``command``).
    """
    import errno

    from daily_mlops.errors import ConfigError

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port; use a number between 1024 and 65535")
    problem = bind_error(port)
    if problem is not None:
        in_use = problem.errno == errno.EADDRINUSE
        why = "is already in use (another Airflow?)" if in_use else f"cannot be used ({problem})"
        raise ConfigError(f"port {port} {why}; stop that process or pass another port, "
                          f"e.g. `{command} --port {free_port()}`")


def port_free(port: int) -> bool:
    return bind_error(port) is None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so Python turns it into ``KeyboardInterrupt``.

    A process started in the background by a non-interactive shell inherits
    SIGINT ignored, and ``airflow standalone`` would then ignore the SIGINT
    that asks it to stop its components.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def on_sigterm(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM raise ``KeyboardInterrupt`` (like Ctrl-C) in the main thread; return the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        if not stop.is_set():  # a repeated SIGTERM must not interrupt the shutdown it started
            stop.set()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


def run_until_stopped(open_running: Callable[[], AbstractContextManager[T]], *, banner: Callable[[T, float], str],
                      dead: Callable[[T], str | None], console: Console, stopping: str) -> int:
    """Enter ``open_running()``, print ``banner``, and wait until Ctrl-C, SIGTERM or a process of it dies.

    Used by ``daily-mlops airflow`` and ``daily-mlops stack``. SIGTERM is turned into
    ``KeyboardInterrupt`` (:func:`on_sigterm`), so the context exits, and stops what it started, either way.

    Parameters
    ----------
    open_running : callable
        Returns the context manager that starts everything and yields a handle.
    banner : callable
        ``(handle, startup seconds) -> str`` printed once ready (rich markup, soft-wrapped).
    dead : callable
        ``handle -> message`` when a process exited on its own, else None; checked every second.
    console : rich.console.Console
    stopping : str
        Printed when a stop was requested.

    Returns
    -------
    int
        0 after a requested stop (Ctrl-C / SIGTERM, also during startup); 1 when ``dead`` reported a process.
    """
    import time

    stop = threading.Event()
    restore = on_sigterm(stop)
    try:
        started = time.perf_counter()
        with open_running() as running:
            console.print(banner(running, time.perf_counter() - started), soft_wrap=True)  # commands stay copyable
            try:
                while not stop.is_set():
                    message = dead(running)
                    if message is not None:
                        console.print(f"[bold red]{message}[/]")
                        return 1
                    stop.wait(1.0)
            except KeyboardInterrupt:
                pass
            console.print(stopping)
        console.print("stopped")
        return 0
    except KeyboardInterrupt:  # Ctrl-C during bootstrap or startup: the contexts above cleaned up
        console.print("interrupted; stopped")
        return 0
    finally:
        restore()
