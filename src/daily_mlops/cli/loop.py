"""``daily-mlops bootstrap``, ``run`` and ``demo``: version 1, then days of the loop run with Airflow's ``dag.test``.

Exit codes: 0 when every day ran as designed (an alert day is an outcome, not
an error); 1 when a task failed unexpectedly; 2 for a user error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from daily_mlops.cli.output import (
    console,
    database_name,
    f1_threshold_option,
    fail,
    parse_date,
    print_failures,
    run_bootstrap,
    settings_in_effect,
    summary_table,
)
from daily_mlops.errors import MLOpsError
from daily_mlops.settings import Settings

__all__ = ["DEMO_START", "bootstrap", "demo", "run"]

#: First logical date of ``demo`` (its per-day ``drift`` params: daily_mlops.loop.demo, docs/demo.md).
DEMO_START = dt.date(2026, 11, 1)


def bootstrap(
    model_name: str | None = typer.Option(
        None, "--model-name", help="Model family to create (default MLOPS_MODEL_NAME); each has its own synthesizer."),
    reference_data: Path | None = typer.Option(
        None, "--reference-data", help="CSV of real rows (MLOPS_REFERENCE_DATA)."),
    target_column: str | None = typer.Option(
        None, "--target-column", help="Its target column (MLOPS_TARGET_COLUMN)."),
    positive_label: str | None = typer.Option(
        None, "--positive-label", help="Target value counted as positive (MLOPS_POSITIVE_LABEL)."),
) -> None:
    """Fit the synthesizer, train and register model version 1 (approved). Safe to rerun."""
    from daily_mlops.storage.mongo import open_database

    given = {"model_name": model_name, "reference_data": reference_data, "target_column": target_column,
             "positive_label": positive_label}
    settings = settings_in_effect(**{k: v for k, v in given.items() if v is not None})
    try:
        with open_database(settings) as db:
            run_bootstrap(settings, db)
    except MLOpsError as exc:
        fail(exc)


def _run_days(settings: Settings, days: list[tuple[dt.date, dict[str, Any]]], *, bootstrap_first: bool) -> int:
    from daily_mlops.loop.bootstrap import require_bootstrapped
    from daily_mlops.orchestration.environment import configure_airflow
    from daily_mlops.orchestration.progress import RunProgress, capture_output, log_path_for_run
    from daily_mlops.orchestration.runner import load_dags, run_day
    from daily_mlops.storage.mongo import connect, mongo_uri

    outcomes = []
    log_path = log_path_for_run(settings.home)
    with mongo_uri(settings) as uri, connect(uri, settings.mongo_db) as db:
        if bootstrap_first:
            run_bootstrap(settings, db)
        require_bootstrapped(db, where=database_name(settings), model_name=settings.model_name)  # before Airflow
        with console.status("preparing the local Airflow"):
            configure_airflow(settings, uri, say=console.print)
        console.print(f"Airflow's logs of this run (task logs, dag.test output): {log_path}", highlight=False,
                      soft_wrap=True)
        with capture_output(log_path) as run_log:
            # Live output goes to the terminal; Airflow's (imported by load_dags) goes to the log file.
            live = Console(file=run_log.terminal, width=None if run_log.terminal.isatty() else 140)
            dags = load_dags(settings)
            with RunProgress(live, run_log) as progress:
                for day, conf in days:
                    outcomes.append(run_day(settings, db, day, evaluation_conf=conf, dags=dags, observer=progress))
    console.print(summary_table(outcomes, log_path))
    print_failures(outcomes, log_path)
    console.print(f"Airflow's logs: {log_path}", highlight=False, soft_wrap=True)
    return 0 if all(o.as_designed for o in outcomes) else 1


def run(
    date: str = typer.Option(None, "--date", help="First logical date, YYYY-MM-DD (default: yesterday, UTC)."),
    days: int = typer.Option(1, "--days", min=1, max=366, help="Number of consecutive days."),
    f1_threshold: float | None = typer.Option(
        None, callback=f1_threshold_option,
        help="Override MLOPS_F1_THRESHOLD for these runs (0 to 2; above 1 forces the alert path)."),
    drift: str = typer.Option(
        "none", "--drift", help="data_pipeline_dag's drift param for these runs: none, shift, label_noise or broken "
                                "(docs/demo.md)."),
) -> None:
    """Run the three DAGs in order for each date with Airflow's dag.test; print a summary per day."""
    from daily_mlops.ml.drift_scenarios import check_drift_mode

    settings = settings_in_effect()
    first = parse_date(date) if date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    try:
        drift = check_drift_mode(drift, "--drift")
    except MLOpsError as exc:
        fail(exc)
    conf: dict[str, float | str] = {"f1_threshold": f1_threshold} if f1_threshold is not None else {}
    if drift != "none":
        conf["drift"] = drift
    try:
        code = _run_days(settings, [(first + dt.timedelta(days=i), conf) for i in range(days)], bootstrap_first=False)
    except MLOpsError as exc:
        fail(exc)
    raise typer.Exit(code)


def demo(
    start: str = typer.Option(DEMO_START.isoformat(), help="First of the four logical dates."),
) -> None:
    """Bootstrap if needed, then run four consecutive days (drift none, shift, label_noise, broken) with the defaults.
    """
    from daily_mlops.loop.demo import demo_days, demo_floor

    settings = settings_in_effect()
    first = parse_date(start)
    plan = demo_days(first)
    console.print(demo_floor(settings))
    console.print(f"four logical dates from {first}, drift " + ", ".join(conf["drift"] for _, conf, _ in plan)
                  + ": each day says what its drift does to the batch before it runs, and what the loop did after")
    try:
        code = _run_days(settings, [(day, conf) for day, conf, _ in plan], bootstrap_first=True)
    except MLOpsError as exc:
        fail(exc)
    raise typer.Exit(code)
