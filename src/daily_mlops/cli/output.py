"""What the ``daily-mlops`` commands share: the console, the settings in effect, one-line user errors, and
every table and text they print.

The command modules of :mod:`daily_mlops.cli` hold the typer commands; this
module renders (rich) and never reads storage itself: the commands pass it the
documents and outcomes (:func:`run_bootstrap` runs the one step both
``bootstrap`` and ``models import`` print as it goes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.settings import Settings, load_settings

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Sequence

    import numpy as np

__all__ = [
    "METRIC_COLUMNS", "alerts_table", "batch_checks_table", "columns_table", "console", "database_name",
    "deployments_table", "doctor_table", "evaluations_table", "explain_lines", "f1_threshold_option", "fail",
    "failed_tasks", "metric_cells", "metrics_table", "outcome_text", "parse_date", "predictions_table",
    "print_failures", "reader_may_stop_early", "registry_table", "run_bootstrap", "settings_in_effect",
    "settings_table", "summary_table", "version_table", "versions_table",
]


class _Console(Console):
    """rich's Console, with the exit status on a closed stdout chosen per command.

    rich turns a ``BrokenPipeError`` into ``SystemExit(1)`` after pointing stdout
    at ``os.devnull`` (Python docs, ``signal`` module, "Note on SIGPIPE"); this
    keeps that and exits with :attr:`broken_pipe_exit` instead: 1 while a
    command still has work to do, 0 inside :func:`reader_may_stop_early`.
    """

    broken_pipe_exit = 1

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(self.broken_pipe_exit)


# log_path=False: console.log keeps its time column but not rich's "cli.py:49" record of the calling line.
console = _Console(log_path=False) if sys.stdout.isatty() else _Console(width=140, log_path=False)


@contextlib.contextmanager
def reader_may_stop_early() -> Iterator[None]:
    """Output that is all that is left to do: a reader closing the pipe (``| head``) ends the command with 0."""
    console.broken_pipe_exit = 0
    try:
        yield
    finally:
        console.broken_pipe_exit = 1


def settings_in_effect(**overrides: Any) -> Settings:
    """The settings in effect, with command-line ``overrides`` (highest priority); a bad value exits 2."""
    try:
        return load_settings(**overrides)
    except MLOpsError as exc:
        fail(exc)
        raise  # unreachable


def fail(exc: BaseException) -> None:
    """Print a user error as one line (no markup read from it, no wrapping) and exit 2."""
    message = " ".join(str(exc).split())
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def f1_threshold_option(value: float | None) -> float | None:
    """``--f1-threshold``: the same check as ``MLOPS_F1_THRESHOLD`` and the DAG param (exit 2 when refused)."""
    from daily_mlops.settings.thresholds import validate_f1_threshold

    if value is None:
        return None
    try:
        return validate_f1_threshold(value, "--f1-threshold")
    except ConfigError as exc:
        fail(exc)
        raise  # unreachable


def parse_date(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` argument as a date; anything else is a usage error (typer exits 2 and names it)."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


def metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    """One metric a row (``f1``, ``roc_auc``, ... as given, 4 decimals; the confusion matrix ``tn fp / fn tp``)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("f1", "roc_auc", "precision", "recall", "accuracy", "decision_threshold", "n_samples", "positive_rate"):
        if key in metrics and metrics[key] is not None:
            value = metrics[key]
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    if "confusion_matrix" in metrics:
        (tn, fp), (fn, tp) = metrics["confusion_matrix"]
        table.add_row("confusion (tn fp / fn tp)", f"{tn} {fp} / {fn} {tp}")
    return table


def outcome_text(s: dict[str, Any]) -> str:
    """The summary's outcome cell (rich markup) for one day's summary (``runner.summarise_day``).

    Renders :func:`daily_mlops.decisions.day_outcome` (:func:`~daily_mlops.decisions.day_outcome_text`).
    """
    from daily_mlops.decisions import day_outcome_text
    from daily_mlops.loop.deployment import stays_deployed

    return day_outcome_text(s, sentence=False, live=stays_deployed(s.get("live_version")))


def failed_tasks(outcome: Any, log_path: Path | None) -> list[tuple[str, str, str | None]]:
    """A day's unexpectedly failed tasks in the order they ended: ``(dag_id, task_id, traceback or None)``.

    The designed alert (``send_alert``) is left out; tracebacks are read back from the run's log file.
    """
    from daily_mlops.decisions import ALERT_TASK
    from daily_mlops.orchestration.dags import EVALUATION_DAG_ID
    from daily_mlops.orchestration.progress import ended_tasks, task_traceback

    failed = [(r.dag_id, t) for r in outcome.runs for t in r.tasks_in("failed")
              if not (r.dag_id == EVALUATION_DAG_ID and t == ALERT_TASK)]
    if log_path is None or not Path(log_path).exists():
        return [(dag_id, task_id, None) for dag_id, task_id in failed]
    order = ended_tasks(log_path, outcome.logical_date)
    failed.sort(key=lambda key: order.index(key) if key in order else len(order))
    return [(dag_id, task_id, task_traceback(log_path, outcome.logical_date, dag_id, task_id))
            for dag_id, task_id in failed]


def summary_table(outcomes: list[Any], log_path: Path | None = None) -> Table:
    """One row per logical date; a day that did not end as designed reads ``FAILED: <dag>.<task>: <exception>``."""
    from rich.markup import escape

    table = Table(title="daily-mlops: one row per logical date")
    for col in ("logical date", "F1 threshold", "champion", "champion F1", "attempts", "best F1", "outcome"):
        table.add_column(col)
    for o in outcomes:
        s = o.summary
        result = outcome_text(s)
        if not o.as_designed:
            failures = failed_tasks(o, log_path)
            if failures:
                dag_id, task_id, trace = failures[0]
                error = trace.strip().splitlines()[-1] if trace else "see the run log"
                result = f"[bold red]FAILED: {dag_id}.{task_id}: {escape(error)}[/]; {result}"
            else:
                result = f"[bold red]FAILED: a DAG run did not finish[/]; {result}"
        f1 = s.get("champion_f1")
        best = s.get("best_f1")
        table.add_row(
            s["logical_date"], f"{s['f1_threshold']:.2f}" if s.get("f1_threshold") is not None else "-",
            f"v{s['champion_version']}" if s.get("champion_version") else "-",
            f"{f1:.4f}" if f1 is not None else "-", str(s.get("retrain_attempts", 0)),
            f"{best:.4f}" if best is not None else "-", result,
        )
    return table


def batch_checks_table(docs: list[dict[str, Any]]) -> Table:
    """``daily-mlops status``: per daily batch, the drift param, the data-quality gate, the drift (one line) and
    the champion's ROC-AUC on the synthetic test split against the real holdout (``fidelity.evaluation_gap``)."""
    from daily_mlops.ml.drift_scenarios import drift_summary
    from daily_mlops.reporting.evidence import evaluation_gap_text

    table = Table(title="daily batches: data-quality gate and drift (processing_metadata)")
    for col in ("logical date", "drift param", "gate", "gate detail", "drift", "champion ROC-AUC: evaluation gap"):
        table.add_column(col, overflow="fold")
    for doc in docs:
        quality = doc.get("quality") or {}
        gate = {"passed": "[green]passed[/]", "failed": "[red]failed[/]"}.get(str(quality.get("status")), "-")
        table.add_row(doc["logical_date"], str(doc.get("drift_mode") or "-"), gate, quality.get("message") or "-",
                      drift_summary(doc.get("drift")), escape(evaluation_gap_text(doc)))
    return table


def print_failures(outcomes: list[Any], log_path: Path) -> None:
    """The traceback of each day's first unexpectedly failed task, read back from the run's log file.

    Tasks that failed after it (e.g. sensors waiting on it) are named with the last line of theirs.
    """
    from rich.markup import escape

    for o in outcomes:
        failures = failed_tasks(o, log_path) if not o.as_designed else []
        if not failures:
            continue
        (dag_id, task_id, trace) = failures[0]
        console.rule(f"[bold red]{dag_id}.{task_id} failed on {o.logical_date}[/]")
        console.print(escape(trace or f"(no traceback found in {log_path})"), highlight=False, soft_wrap=True)
        for dag_id, task_id, trace in failures[1:]:
            last = trace.splitlines()[-1] if trace else "see the log"
            console.print(f"then [red]{dag_id}.{task_id}[/] failed: {escape(last)}", highlight=False, soft_wrap=True)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def _lines(texts: list[str]) -> str:
    """Cell text, one item a line, escaped (intervals are in square brackets, which rich reads as markup)."""
    return escape("\n".join(texts)) if texts else "-"


#: The metric columns of ``status`` and ``models list``: the real holdout (the headline), then the synthetic test split.
METRIC_COLUMNS = ("real holdout F1 / ROC-AUC", "test F1 / ROC-AUC")


def _add_columns(table: Table, columns: tuple[str, ...]) -> None:
    for col in columns:
        table.add_column(col, overflow="fold")


def metric_cells(real: dict[str, Any], test: dict[str, Any]) -> list[str]:
    """The cells under :data:`METRIC_COLUMNS`: ``0.5512 / 0.7345`` (``-`` for a value not recorded)."""
    return [f"{_fmt(m.get('f1'))} / {_fmt(m.get('roc_auc'))}" for m in (real, test)]


def registry_table(rows: list[dict[str, Any]]) -> Table:
    """``daily-mlops models list``: one row per :func:`daily_mlops.loop.model_versions.list_versions` row.

    Real-holdout F1 / ROC-AUC before the synthetic test split's; model, version
    and status stay on one line, the rest wraps at a space to fit 140 columns.
    """
    table = Table(title="model versions in the registry")
    for col in ("model", "version", "kind", "status", *METRIC_COLUMNS, "date", "created (UTC)", "deployed (UTC)"):
        table.add_column(col, no_wrap=col in ("model", "version", "status"))
    for r in rows:
        table.add_row(r["model_name"], str(r["model_version"]), r["lineage_kind"] or "-", r["status"],
                      *metric_cells({"f1": r["real_f1"], "roc_auc": r["real_roc_auc"]}, r),
                      r["date"], r["created"], r["deployed"])
    return table


def versions_table(docs: list[dict[str, Any]], *, title: str) -> Table:
    """``daily-mlops status``: one row per registry document (oldest first).

    Real-holdout F1 and ROC-AUC first, then the synthetic test split's; a
    challenger's recorded comparisons (F1 floor, champion with its interval,
    real-holdout guard) one a line. A field a document lacks shows ``-``
    (the batches a version was trained on: ``models show``).
    """
    from daily_mlops.loop.model_versions import version_date
    from daily_mlops.reporting.evidence import comparison_lines, version_metrics

    table = Table(title=title)
    _add_columns(table, ("version", "kind", "status", "parent", *METRIC_COLUMNS, "comparisons", "logical date"))
    for doc in docs:
        table.add_row(str(doc["model_version"]), doc.get("lineage_kind") or "-", doc["status"],
                      str(doc.get("parent_version", "-")),
                      *metric_cells(version_metrics(doc, "reference"), version_metrics(doc, "test")),
                      _lines(comparison_lines(doc.get("comparisons"))), version_date(doc))
    return table


def evaluations_table(docs: list[dict[str, Any]]) -> Table:
    """``daily-mlops status``: one row per ``performance_metrics`` document (as given: newest first).

    Real-holdout F1 and ROC-AUC, the synthetic test split's, the F1 that
    decided with its split, the floor, whether it passed, and a challenger's
    comparisons with their intervals.
    """
    from daily_mlops.reporting.evidence import comparison_lines, evaluation_metrics

    table = Table(title="latest evaluations (performance_metrics)")
    _add_columns(table, ("logical date", "version", "attempt", *METRIC_COLUMNS, "deciding F1 / floor", "passed",
                         "comparisons"))
    for doc in docs:
        table.add_row(doc["logical_date"], str(doc["model_version"]), str(doc.get("attempt", "-")),
                      *metric_cells(evaluation_metrics(doc, "reference"), evaluation_metrics(doc, "test")),
                      f"{_fmt(doc.get('f1'))} / {_fmt(doc.get('f1_threshold'))} ({doc.get('split') or 'test'})",
                      str(doc.get("passed", "-")),
                      _lines(comparison_lines({key: doc.get(key) for key in ("champion", "real")})))
    return table


def alerts_table(docs: list[dict[str, Any]]) -> Table:
    """``daily-mlops status``: one row per alert, with the day's candidates (F1, ΔF1 interval, real ROC-AUC)."""
    from daily_mlops.reporting.evidence import candidate_text

    table = Table(title="alerts")
    _add_columns(table, ("logical date", "type", "severity", "F1", "attempts", "candidates", "message"))
    for doc in docs:
        attempts = doc.get("retrain_attempts", doc.get("retry_attempts"))
        table.add_row(doc["logical_date"], doc.get("alert_type", "-"), doc.get("severity", "-"),
                      _fmt(doc.get("f1_score")), _fmt(attempts),
                      _lines([candidate_text(c) for c in doc.get("candidates") or []]), escape(doc.get("message", "")))
    return table


def deployments_table(docs: list[dict[str, Any]]) -> Table:
    """``daily-mlops status``: one row per ``deployment_events`` document; a rollback names the version it left."""
    table = Table(title="deployments")
    for col in ("logical date", "version", "status", "path", "sha256"):
        table.add_column(col)
    for doc in docs:
        rolled_back = doc.get("event_type") == "model_rolled_back"
        table.add_row(doc["logical_date"], str(doc["model_version"]),
                      doc["status"] + (f" (rollback from v{doc.get('from_version')})" if rolled_back else ""),
                      doc["deployment_path"], doc["sha256"][:12])
    return table


def doctor_table(report: Any, checks: Iterable[str], *, repair: bool) -> Table:
    """``daily-mlops doctor``: per check of ``checks``, ``ok`` with the count checked, or each finding and its state.

    ``report`` is :func:`daily_mlops.storage.doctor.check_storage`'s (``findings``, ``checked``).
    """
    table = Table(title="daily-mlops doctor" + (" --repair" if repair else ""))
    for col in ("check", "subject", "finding", "state"):
        table.add_column(col, overflow="fold")
    for check in checks:
        found = [f for f in report.findings if f.check == check]
        if not found:
            table.add_row(check, "-", f"{report.checked.get(check, 0)} checked", "[green]ok[/]")
        for f in found:
            state = ("[green]repaired[/]" if f.repaired else
                     "[yellow]repairable with --repair[/]" if f.repairable else "[red]needs attention[/]")
            table.add_row(check, f.subject, f.detail, state)
    return table


def predictions_table(proba: np.ndarray, *, title: str, source: Path, decision_threshold: float, positive: str,
                      negative: str) -> Table:
    """``daily-mlops predict``: one row per probability of ``proba`` (shape ``(n_rows,)``, calibrated P(positive))
    with the label it gives at ``decision_threshold``."""
    table = Table(title=title, caption=f"P({positive}) per row of {source}; label {positive} when P >= "
                                       f"{decision_threshold:.3f}")
    table.add_column("row", justify="right")
    table.add_column(f"P({positive})", justify="right")
    table.add_column("prediction")
    for i, p in enumerate(proba):
        table.add_row(str(i), f"{p:.4f}", positive if p >= decision_threshold else negative)
    return table


def settings_table(rows: Iterable[Sequence[str]]) -> Table:
    """``daily-mlops config``: one row per setting, ``(field, variable, value, source)``
    (:func:`daily_mlops.settings.sources.describe_settings`)."""
    table = Table(title="daily-mlops settings (priority: argument > environment > .env > yaml > default)")
    table.add_column("field", no_wrap=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def version_table(doc: dict[str, Any], rows: Iterable[tuple[str, str]]) -> Table:
    """``daily-mlops models show``: a registry document's ``(field, value)`` rows
    (:func:`daily_mlops.loop.model_versions.version_rows`), titled with its model name and version."""
    table = Table(title=f"{doc['model_name']} version {doc['model_version']}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for field, value in rows:
        table.add_row(field, value)
    return table


def _scores_text(e: dict[str, Any]) -> str:
    """``validation F1 0.6694 ROC-AUC 0.8708; test F1 ...; real holdout F1 0.5816 ROC-AUC 0.7666 (300 rows)``."""
    from daily_mlops.reporting.evidence import number

    parts = [f"{e.get('split') or 'test'} F1 {number(e.get('f1'))} ROC-AUC {number(e.get('roc_auc'))}"]
    for key, label in (("test", "test"), ("real_holdout", "real holdout")):
        m = e.get(key) or {}
        rows = f" ({m['n_samples']} rows)" if m.get("n_samples") is not None else ""
        parts.append(f"{label} F1 {number(m.get('f1'))} ROC-AUC {number(m.get('roc_auc'))}{rows}" if m
                     else f"{label}: not recorded")
    return "; ".join(parts)


def _version_heading(e: dict[str, Any]) -> str:
    kind = e.get("lineage_kind") or e.get("stage") or ""
    parent = f" from v{e['parent_version']}" if e.get("parent_version") is not None else ""
    attempt = f", attempt {e['attempt']}" if e.get("attempt") else ""
    why = f" ({'; '.join('failed ' + c for c in e['failed_checks'])})" if e.get("failed_checks") else ""
    return f"v{e['model_version']} {kind}{parent}{attempt}: {e.get('verdict')}{why}"


def explain_lines(story: dict[str, Any]) -> list[str]:
    """``daily-mlops explain``: a day's story (:func:`daily_mlops.loop.explain.explain_day`) as plain text lines.

    Print them without markup: the intervals' brackets are text.
    """
    from daily_mlops.reporting.evidence import number

    day = story["logical_date"]
    lines = [story.get("outcome") or f"{day}"]
    batch = story.get("batch")
    if batch:
        gate = batch.get("gate")
        verdict = f"data-quality gate {gate['status']}: {gate.get('message')}" if gate else "no gate verdict recorded"
        lines.append(f"batch {batch.get('batch_id')}: {batch.get('rows')} rows, "
                     f"drift param {batch.get('drift_param')}; {verdict}")
        if gate and gate.get("worst"):
            lines.append("  worst columns: " + "; ".join(
                f"{w.get('column')} {w.get('check')} {number(w.get('value'))} (floor {w.get('floor')})"
                + (" FAILED" if w.get("failed") else "") for w in gate["worst"]))
        if batch.get("drift"):
            lines.append(f"  drift: {batch['drift']['summary']}")
        fidelity = batch.get("fidelity")
        lines.append("  fidelity: " + (
            f"TSTR ROC-AUC {number(fidelity.get('tstr_roc_auc'))} vs TRTR {number(fidelity.get('trtr_roc_auc'))} "
            f"(ratio {number(fidelity.get('ratio'))}), column shapes {number(fidelity.get('column_shapes'))}, "
            f"column pair trends {number(fidelity.get('column_pair_trends'))}" if fidelity else "not recorded"))
    champion = story.get("champion")
    if story.get("evaluation_run"):
        lines.append(f"evaluation run {story['evaluation_run']}")
    if champion:
        note = f" ({champion['f1_threshold_note']})" if champion.get("f1_threshold_note") else ""
        lines.append(f"champion {_version_heading(champion)}; F1 floor {number(champion.get('f1_threshold'))}{note}")
        lines.append(f"  {_scores_text(champion)}")
        lines.extend(f"  {line}" for line in champion.get("lines") or [])
    for candidate in story.get("candidates") or []:
        lines.append(f"candidate {_version_heading(candidate)}")
        lines.append(f"  {_scores_text(candidate)}")
        lines.extend(f"  {line}" for line in candidate.get("lines") or [])
        decision = candidate.get("decision")
        if decision:
            lines.append(f"  why {decision.get('status')} (registry): {decision.get('reason')}")
    alert = story.get("alert")
    if alert:
        lines.append(f"alert {alert.get('alert_type')} ({alert.get('severity')}, {alert.get('status')}): "
                     f"{alert.get('message')}")
    else:
        lines.append("alert: none")
    reviewer = story.get("reviewer")
    lines.append(f"reviewer: {reviewer['reviewer'] or 'unknown'} rejected v{reviewer['model_version']} at "
                 f"{reviewer.get('at')}" if reviewer else "reviewer: no answer recorded")
    for d in story.get("deployments") or []:
        before = d.get("previous_version")
        if d.get("rollback"):
            what = f"rolled back from v{before} to v{d.get('model_version')}"
        else:
            replacing = f", replacing v{before}" if before is not None else ""
            what = f"v{d.get('model_version')} {d.get('status')}{replacing}"
        reason = f": {d['reason']}" if d.get("reason") else ""
        lines.append(f"deployment: {what}, by {d.get('by')} at {d.get('at')}{reason}")
    if not story.get("deployments"):
        lines.append("deployment: none recorded for this date")
    in_place = story.get("version_in_place")
    lines.append(f"in place after {day}: " + (f"v{in_place}" if in_place is not None else "no version deployed"))
    lines.extend(f"missing: {text}" for text in story.get("missing") or [])
    return lines


def run_bootstrap(settings: Settings, db: Any) -> dict[str, Any]:
    """Bootstrap (``daily-mlops bootstrap`` and ``models import``) with a live status line; print what it registered:
    the reference columns dropped or converted, real-holdout and test-split metrics, the ``auto`` floor."""
    from daily_mlops.loop.bootstrap import bootstrap

    with console.status("bootstrap") as status:
        def say(message: str) -> None:
            status.update(message)
            console.log(message)

        result = bootstrap(settings, db=db, progress=say)
    if not result["created"]:
        console.print(f"model version {result['model_version']} already exists (bootstrap ran before); "
                      "nothing was trained")
    else:
        console.print(f"[green]registered {settings.model_name} version {result['model_version']} (approved)[/] "
                      f"in {result['seconds']:.1f} s, {result['n_parameters']} parameters, "
                      f"decision threshold {result['decision_threshold']:.3f}")
    if result.get("columns"):
        console.print(columns_table(result["columns"]))
    if result.get("real_metrics"):  # the headline: real rows no fitted step has seen
        console.print(metrics_table(f"real holdout ({result['real_metrics'].get('n_samples', '?')} real rows kept "
                                     "out of every fit)", result["real_metrics"]))
    console.print(metrics_table("bootstrap test split (synthetic, reported only)", result["metrics"]))
    floor = result.get("f1_threshold_auto")
    if floor:
        console.print(f"f1_threshold auto = {floor['f1_threshold']:.4f}: held-out F1 {floor['bootstrap_f1']:.4f} "
                      f"minus f1_tolerance {floor['f1_tolerance']:g} (in effect while MLOPS_F1_THRESHOLD is auto)")
    return result


def columns_table(actions: list[dict[str, Any]]) -> Table:
    """Reference columns the schema dropped or converted (ml.schema.column_actions), one row each."""
    table = Table(title="reference columns dropped or converted")
    for name in ("column", "action", "details"):
        table.add_column(name)
    for a in actions:
        details = (a.get("reason")
                   or f"format {a.get('format') or 'datetime dtype'} -> features {', '.join(a['features'])}")
        table.add_row(a["column"], a["action"], details)
    return table


def database_name(settings: Settings) -> str:
    """The database as the user configured it, for messages (never the URI: it may hold a password)."""
    server = "MLOPS_MONGO_URI" if settings.mongo_uri else f"the embedded server under {settings.embedded_mongo_path}"
    return f"database {settings.mongo_db!r} ({server})"
