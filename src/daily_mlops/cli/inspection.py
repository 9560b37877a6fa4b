"""``daily-mlops status``, ``explain``, ``report`` and ``doctor``: read what the loop recorded in MongoDB.

``status`` and ``explain`` only print, so a reader that stops early (``| head``)
ends them with exit 0; ``doctor`` exits 1 while a problem remains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from daily_mlops.cli.output import (
    alerts_table,
    batch_checks_table,
    console,
    deployments_table,
    doctor_table,
    evaluations_table,
    explain_lines,
    fail,
    parse_date,
    reader_may_stop_early,
    settings_in_effect,
    versions_table,
)
from daily_mlops.errors import MLOpsError
from daily_mlops.settings import Settings

__all__ = ["doctor", "explain", "report", "status"]


def _floor_line(settings: Settings, db: Any) -> str:
    """``daily-mlops status``'s first line: the F1 floor in effect (``auto`` resolved) and ``min_improvement``."""
    from daily_mlops.errors import ConfigError
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.settings.thresholds import describe_f1_threshold

    try:
        floor = describe_f1_threshold(resolve_floor(settings, db, settings.f1_threshold, "MLOPS_F1_THRESHOLD"))
    except ConfigError:
        floor = f"{settings.f1_threshold} (not resolved yet: run `daily-mlops bootstrap`)"
    return f"F1 floor (MLOPS_F1_THRESHOLD): {floor}; min_improvement over the champion: {settings.min_improvement:g}"


def status(limit: int = typer.Option(10, help="Rows per table.")) -> None:
    """Print model versions, latest evaluations (real holdout first, comparisons' intervals), alerts, deployments."""
    from daily_mlops.storage.alerts import recent_alerts
    from daily_mlops.storage.events import recent_deployments, recent_evaluations
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.registry import ModelRegistry
    from daily_mlops.storage.reports import recent_batch_checks

    settings = settings_in_effect()
    try:
        with reader_may_stop_early(), open_database(settings) as db:  # read-only: stopping early harms nothing
            console.print(_floor_line(settings, db))
            console.print(versions_table(ModelRegistry(db).list(settings.model_name)[-limit:],
                                         title=f"model versions ({settings.model_name}): real holdout first"))
            console.print(evaluations_table(recent_evaluations(db, limit)))
            console.print(alerts_table(recent_alerts(db, limit)))
            console.print(batch_checks_table(recent_batch_checks(db, limit)))
            console.print(deployments_table(recent_deployments(db, limit)))
    except MLOpsError as exc:
        fail(exc)


def explain(
    date: str = typer.Argument(..., help="The logical date, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the story as one JSON document."),
) -> None:
    """Tell one logical date's story from MongoDB: batch and gate, champion, candidates and why, alert, deployment."""
    import json

    from daily_mlops.loop.explain import explain_day, version_in_place
    from daily_mlops.orchestration.runner import day_story, summarise_day
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.reports import load_day_records

    settings = settings_in_effect()
    day = parse_date(date)
    try:
        with open_database(settings) as db:
            records = load_day_records(db, day, model_name=settings.model_name)
            summary = summarise_day(db, day, model_name=settings.model_name)
        # How the day ended, said once (day_story), with the version in place after that day, not today's.
        story = explain_day(records, outcome=day_story({**summary, "live_version": version_in_place(records)}))
    except MLOpsError as exc:
        fail(exc)
    with reader_may_stop_early():
        if as_json:
            typer.echo(json.dumps(story, indent=2, ensure_ascii=False))
            return
        for line in explain_lines(story):
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Delete orphan GridFS chunks and stale upload-journal entries."),
) -> None:
    """Check GridFS, artifact checksums and the deployment directory; exit 1 while a problem remains."""
    from daily_mlops.storage.doctor import CHECKS, check_storage
    from daily_mlops.storage.mongo import open_database

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            report = check_storage(db, settings.deployment_path, repair=repair, model_name=settings.model_name)
    except MLOpsError as exc:
        fail(exc)
    console.print(doctor_table(report, CHECKS, repair=repair))
    problems = len(report.problems)
    console.print("[green]healthy[/]" if not problems else f"[red]{problems} problem(s) remain[/]")
    raise typer.Exit(0 if report.healthy else 1)


def report(out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (self-contained)."),
           days: int = typer.Option(30, "--days", min=1, help="The last N logical dates to show.")) -> None:
    """Write an HTML report (F1, attempts, deployments, data quality, lineage, model card); print its path."""
    from daily_mlops.loop.report import write_report
    from daily_mlops.storage.mongo import open_database

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            result = write_report(settings, db=db, out=out, days=days)
    except MLOpsError as exc:
        fail(exc)
    console.print(str(result["path"]), soft_wrap=True)
