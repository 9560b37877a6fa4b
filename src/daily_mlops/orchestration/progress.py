"""What ``daily-mlops run`` and ``demo`` show while ``dag.test`` runs, and where Airflow's own output goes.

- :func:`capture_output` sends this process's standard output and error
  (file descriptors 1 and 2) to the run's log file, so Airflow's task logs,
  the ``dag.test`` messages, warnings and anything a library prints land
  there, as in the files the Airflow UI shows; the console keeps a stream on
  the terminal.
- :class:`RunProgress` is a :class:`~daily_mlops.orchestration.runner.RunObserver`:
  a rich live display of the day, the DAG and the running task with their
  elapsed times, one line per finished task above it, and a marker line per
  task start and end in the log file.
- :func:`task_traceback` reads a failed task's traceback back from that file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.markup import escape

from daily_mlops.decisions import ALERT_TASK
from daily_mlops.orchestration.dags import DATA_DAG_ID, EVALUATION_DAG_ID
from daily_mlops.orchestration.runner import RunObserver, day_story

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from daily_mlops.orchestration.runner import DagRunOutcome, DayOutcome

__all__ = ["RunLog", "RunProgress", "capture_output", "ended_tasks", "log_path_for_run", "task_traceback"]

#: Prefix of the marker lines :class:`RunProgress` writes into the log around each task.
MARKER = "==== [daily-mlops]"
_TIMESTAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def log_path_for_run(home: Path, now: dt.datetime | None = None) -> Path:
    """``home/logs/run-<UTC yyyymmddThhmmssZ>.log``: the log file of one ``run`` or ``demo``."""
    now = now or dt.datetime.now(dt.UTC)
    return home / "logs" / f"run-{now.strftime('%Y%m%dT%H%M%SZ')}.log"


@dataclass
class RunLog:
    """The run's log file: its ``path``, the open ``file``, and ``terminal``, a stream the console writes to."""

    path: Path
    terminal: TextIO
    file: TextIO

    def mark(self, text: str) -> None:
        """Write a marker line into the log, after everything written so far."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.file.write(f"{MARKER} {text}\n")
        self.file.flush()


def _fd(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


@contextlib.contextmanager
def capture_output(path: Path) -> Iterator[RunLog]:
    """Send file descriptors 1 and 2 (and ``sys.stdout``/``sys.stderr``) to ``path`` while the block runs.

    Airflow's log handlers write to ``sys.stdout`` as it was when Airflow
    configured logging, so the redirection is done below Python, on the file
    descriptors; ``sys.stdout`` is made line-buffered meanwhile so lines keep
    their order. When ``sys.stdout`` is not file descriptor 1 (e.g. a test
    runner's buffer), it is replaced by the log file instead and stays the
    terminal. Everything is restored on exit, also on an exception.

    Yields
    ------
    RunLog
        ``path``, ``terminal`` (the original standard output) and :meth:`RunLog.mark`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    own_stdout = _fd(sys.stdout) == 1
    saved = (os.dup(1), os.dup(2))
    log_file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in finally
    terminal: TextIO = (os.fdopen(os.dup(saved[0]), "w", encoding=getattr(sys.stdout, "encoding", None) or "utf-8",
                                  buffering=1) if own_stdout else sys.stdout)
    streams = (sys.stdout, sys.stderr)
    line_buffered = getattr(sys.stdout, "line_buffering", None)
    try:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        if own_stdout:
            if line_buffered is False:
                sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        else:
            sys.stdout = sys.stderr = log_file
        yield RunLog(path=path, terminal=terminal, file=log_file)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = streams
        if own_stdout and line_buffered is False:
            sys.stdout.reconfigure(line_buffering=False)  # type: ignore[union-attr]
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        if terminal is not streams[0]:
            terminal.close()
        log_file.close()


def _first_line(error: BaseException | str | None, limit: int = 160) -> str:
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


class RunProgress(RunObserver):
    """The console while days run: a live line for the day and the running task, a line per finished task.

    Parameters
    ----------
    console : rich.console.Console
        Writes to the terminal (:attr:`RunLog.terminal`), not to the log.
    run_log : RunLog, optional
        Receives a marker line at each task start and end (read back by :func:`task_traceback`).
    """

    def __init__(self, console: Console, run_log: RunLog | None = None) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.run_log = run_log
        # redirect_*=False: rich must not route stdout into the console, it goes to the log file.
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
        self._day_row: Any = None
        self._task_row: Any = None
        self._day: dt.date | None = None
        self._day_clock = 0.0
        self._started: dict[tuple[str, str], float] = {}

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _mark(self, text: str) -> None:
        if self.run_log is not None:
            self.run_log.mark(f"{self._day} {text}")

    def day_started(self, day: dt.date, conf: dict[str, Any] | None) -> None:
        self._day, self._day_clock = day, time.perf_counter()
        self.console.rule(f"logical date {day.isoformat()}" + (f"  params {conf}" if conf else ""))
        mode = (conf or {}).get("drift")
        if mode:
            from daily_mlops.ml.drift_scenarios import DRIFT_EFFECTS

            self.console.print(f"drift {mode}: {DRIFT_EFFECTS.get(mode, mode)}", highlight=False, soft_wrap=True)
        self._day_row = self._progress.add_task(f"[bold]{day.isoformat()}[/]", total=None)
        self._task_row = self._progress.add_task("", total=None)

    def dag_started(self, dag_id: str) -> None:
        self._mark(f"{dag_id}: dag.test started")
        self.console.print(f"[bold]{dag_id}[/]")
        self._progress.update(self._day_row, description=f"[bold]{self._day}[/] {dag_id}")
        self._progress.reset(self._task_row, description=f"{dag_id}: starting the DAG run")

    def task_started(self, dag_id: str, task_id: str, try_number: int) -> None:
        self._started[(dag_id, task_id)] = time.perf_counter()
        self._mark(f"{dag_id}.{task_id} started (try {try_number})")
        self._progress.reset(self._task_row, description=f"{dag_id} > [bold]{task_id}[/]")

    def task_finished(self, dag_id: str, task_id: str, state: str, error: BaseException | str | None) -> None:
        seconds = time.perf_counter() - self._started.pop((dag_id, task_id), time.perf_counter())
        self._mark(f"{dag_id}.{task_id} ended: {state} after {seconds:.1f} s")
        alert = state == "failed" and dag_id == EVALUATION_DAG_ID and task_id == ALERT_TASK
        gate = state == "failed" and dag_id == DATA_DAG_ID and task_id == "check_data_quality"
        if alert:
            mark, label, style = "!", "alert raised", "yellow"
        elif gate:
            alert, mark, label, style = True, "!", "gate failed", "yellow"  # its reason printed in full, as an alert's
        else:
            mark, label, style = {"success": ("✓", state, "green"), "skipped": ("-", state, "dim"),
                                  "failed": ("✗", state, "bold red")}.get(state, ("?", state, "default"))
        self.console.print(f"  [{style}]{mark} {task_id:<28} {label:<12}[/] {seconds:6.1f} s", highlight=False)
        if error is not None:  # the alert's reason as such; an unexpected error with its type
            detail = str(error) if alert else _first_line(error)
            self.console.print(f"      [{style}]{escape(detail)}[/]", highlight=False, soft_wrap=True)
        self._progress.reset(self._task_row, description=f"{dag_id}: next task")

    def dag_finished(self, run: DagRunOutcome) -> None:
        self._mark(f"{run.dag_id}: dag.test ended: {run.state}")
        notes = []
        colour = "green" if run.state == "success" else "red"
        if run.dag_id == EVALUATION_DAG_ID and run.failed_tasks == [ALERT_TASK]:
            colour = "yellow"
            notes.append(f"{ALERT_TASK} raised the alert and failed the run, as designed")
        elif run.dag_id == DATA_DAG_ID and run.tasks_in("failed") == ["check_data_quality"]:
            colour = "yellow"
            notes.append("the data-quality gate stopped the day, as designed")
        elif run.tasks_in("failed"):
            notes.append("failed: " + ", ".join(run.tasks_in("failed")))
        for state in ("upstream_failed", "skipped"):
            if run.tasks_in(state):
                count = len(run.tasks_in(state))
                notes.append(f"{count} task{'s' if count > 1 else ''} {state}")
        self.console.print(f"  {run.dag_id}: [{colour}]{run.state}[/]" + (f" ({'; '.join(notes)})" if notes else ""),
                           highlight=False)

    def day_finished(self, outcome: DayOutcome) -> None:
        for row in (self._task_row, self._day_row):
            if row is not None:
                self._progress.remove_task(row)
        self._task_row = self._day_row = None
        story = day_story(outcome.summary) if outcome.summary else str(outcome.logical_date)
        seconds = time.perf_counter() - self._day_clock
        self.console.print(f"[bold]{escape(story)}[/] (three DAG runs in {seconds:.1f} s)", highlight=False,
                           soft_wrap=True)


def ended_tasks(path: Path, day: dt.date) -> list[tuple[str, str]]:
    """``(dag_id, task_id)`` of every task that ended on ``day`` in a run's log file, in the order they ended."""
    pattern = re.compile(rf"^{re.escape(MARKER)} {day} (\S+?)\.(\S+) ended: ")
    found = (pattern.match(line) for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [(m.group(1), m.group(2)) for m in found if m]


def task_traceback(path: Path, day: dt.date, dag_id: str, task_id: str) -> str | None:
    """The last traceback logged by ``dag_id.task_id`` on ``day`` in a run's log file, or ``None``.

    The task's lines are those between the markers :class:`RunProgress`
    wrote at its start and end; without them (e.g. it failed before it
    started) the last traceback of the whole file is returned. The traceback
    runs from the log line before ``Traceback (most recent call last):`` to
    the next timestamped log line or marker.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start_mark = f"{MARKER} {day} {dag_id}.{task_id} started"
    end_mark = f"{MARKER} {day} {dag_id}.{task_id} ended"
    starts = [i for i, line in enumerate(lines) if line.startswith(start_mark)]
    if starts:
        first = starts[-1]
        last = next((i for i in range(first, len(lines)) if lines[i].startswith(end_mark)), len(lines))
        lines = lines[first:last]
    heads = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    if not heads:
        return None

    def record_start(i: int) -> bool:
        return bool(_TIMESTAMPED.match(lines[i])) or lines[i].startswith(MARKER)

    begin = heads[-1]
    while begin > 0 and not record_start(begin - 1):  # a chained exception's earlier tracebacks
        begin -= 1
    if begin > 0 and _TIMESTAMPED.match(lines[begin - 1]):  # the log line that carries the exception
        begin -= 1
    end = next((i for i in range(heads[-1] + 1, len(lines)) if record_start(i)), len(lines))
    return "\n".join(lines[begin:end]).rstrip()
