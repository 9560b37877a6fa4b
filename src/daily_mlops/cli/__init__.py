"""The ``daily-mlops`` command line (typer + rich).

Commands: ``bootstrap``, ``run``, ``demo``, ``status``, ``explain``, ``rollback``, ``doctor``, ``predict``,
``report``, ``serve``, ``models``, ``mongo``, ``airflow``, ``stack``, ``config``.
Without ``MLOPS_MONGO_URI`` every command starts the embedded MongoDB-wire
server (SecantusDB) persisted under ``MLOPS_HOME/data/mongo``.

Exit codes: 0 when everything ran as designed (an alert day is an outcome, not
an error); 1 when a task failed unexpectedly; 2 for a user error (bad config,
bad input, missing model), printed as one line without a traceback. A reader
that stops early (``daily-mlops predict ... | head``) is not an error for the
commands that only print (``predict``, ``status``): they exit 0 quietly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daily_mlops.cli.models import models_app
from daily_mlops.cli.output import (
    _batch_checks_table, _f1_threshold_option, _fail, _print_failures, _reader_may_stop_early,
    _settings, _summary_table, alerts_table, console, database_name, evaluations_table, explain_lines, run_bootstrap,
    versions_table,
)
from daily_mlops.errors import MLOpsError, SchemaError
from daily_mlops.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "daily-mlops: a daily MLOps loop on Airflow and MongoDB. Bootstrap a model, run days (synthetic data, "
    "evaluation, retraining, deployment), then inspect, report on and serve the results."))
app.add_typer(models_app, name="models")  # `daily-mlops models ...` (daily_mlops.cli.models)


#: First logical date of ``demo`` (its per-day ``drift`` params: daily_mlops.loop.demo, docs/demo.md).
DEMO_START = dt.date(2026, 11, 1)


@app.command()
def bootstrap(
    model_name: Optional[str] = typer.Option(
        None, "--model-name", help="Model family to create (default MLOPS_MODEL_NAME); each has its own synthesizer."),
    reference_data: Optional[Path] = typer.Option(
        None, "--reference-data", help="CSV of real rows (MLOPS_REFERENCE_DATA)."),
    target_column: Optional[str] = typer.Option(
        None, "--target-column", help="Its target column (MLOPS_TARGET_COLUMN)."),
    positive_label: Optional[str] = typer.Option(
        None, "--positive-label", help="Target value counted as positive (MLOPS_POSITIVE_LABEL)."),
) -> None:
    """Fit the synthesizer, train and register model version 1 (approved). Safe to rerun."""
    from daily_mlops.storage.mongo import open_database

    given = {"model_name": model_name, "reference_data": reference_data, "target_column": target_column,
             "positive_label": positive_label}
    settings = _settings(**{k: v for k, v in given.items() if v is not None})
    try:
        with open_database(settings) as db:
            run_bootstrap(settings, db)
    except MLOpsError as exc:
        _fail(exc)


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None



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
    console.print(_summary_table(outcomes, log_path))
    _print_failures(outcomes, log_path)
    console.print(f"Airflow's logs: {log_path}", highlight=False, soft_wrap=True)
    return 0 if all(o.as_designed for o in outcomes) else 1


@app.command()
def run(
    date: str = typer.Option(None, "--date", help="First logical date, YYYY-MM-DD (default: yesterday, UTC)."),
    days: int = typer.Option(1, "--days", min=1, max=366, help="Number of consecutive days."),
    f1_threshold: Optional[float] = typer.Option(
        None, callback=_f1_threshold_option,
        help="Override MLOPS_F1_THRESHOLD for these runs (0 to 2; above 1 forces the alert path)."),
    drift: str = typer.Option(
        "none", "--drift", help="data_pipeline_dag's drift param for these runs: none, shift, label_noise or broken "
                                "(docs/demo.md)."),
) -> None:
    """Run the three DAGs in order for each date with Airflow's dag.test; print a summary per day."""
    from daily_mlops.ml.drift import check_drift_mode

    settings = _settings()
    first = _parse_date(date) if date else dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    try:
        drift = check_drift_mode(drift, "--drift")
    except MLOpsError as exc:
        _fail(exc)
    conf = {"f1_threshold": f1_threshold} if f1_threshold is not None else {}
    if drift != "none":
        conf["drift"] = drift
    try:
        code = _run_days(settings, [(first + dt.timedelta(days=i), conf) for i in range(days)], bootstrap_first=False)
    except MLOpsError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def demo(
    start: str = typer.Option(DEMO_START.isoformat(), help="First of the four logical dates."),
) -> None:
    """Bootstrap if needed, then run four consecutive days (drift none, shift, label_noise, broken) with the defaults."""
    from daily_mlops.loop.demo import demo_days, demo_floor

    settings = _settings()
    first = _parse_date(start)
    plan = demo_days(first)
    console.print(demo_floor(settings))
    console.print(f"four logical dates from {first}, drift " + ", ".join(conf["drift"] for _, conf, _ in plan)
                  + ": each day says what its drift does to the batch before it runs, and what the loop did after")
    try:
        code = _run_days(settings, [(day, conf) for day, conf, _ in plan], bootstrap_first=True)
    except MLOpsError as exc:
        _fail(exc)
    raise typer.Exit(code)


def _floor_line(settings: Settings, db: Any) -> str:
    """``daily-mlops status``'s first line: the F1 floor in effect (``auto`` resolved) and ``min_improvement``."""
    from daily_mlops.settings.thresholds import describe_f1_threshold
    from daily_mlops.errors import ConfigError
    from daily_mlops.loop.f1_floor import resolve_floor

    try:
        floor = describe_f1_threshold(resolve_floor(settings, db, settings.f1_threshold, "MLOPS_F1_THRESHOLD"))
    except ConfigError:
        floor = f"{settings.f1_threshold} (not resolved yet: run `daily-mlops bootstrap`)"
    return f"F1 floor (MLOPS_F1_THRESHOLD): {floor}; min_improvement over the champion: {settings.min_improvement:g}"


@app.command()
def status(limit: int = typer.Option(10, help="Rows per table.")) -> None:
    """Print model versions, latest evaluations (real holdout first, comparisons' intervals), alerts, deployments."""
    from daily_mlops.storage.alerts import recent_alerts
    from daily_mlops.storage.events import recent_deployments, recent_evaluations
    from daily_mlops.storage.reports import recent_batch_checks
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.registry import ModelRegistry

    settings = _settings()
    try:
        with _reader_may_stop_early(), open_database(settings) as db:  # read-only: stopping early harms nothing
            console.print(_floor_line(settings, db))
            console.print(versions_table(ModelRegistry(db).list(settings.model_name)[-limit:],
                                         title=f"model versions ({settings.model_name}): real holdout first"))
            console.print(evaluations_table(recent_evaluations(db, limit)))
            console.print(alerts_table(recent_alerts(db, limit)))
            console.print(_batch_checks_table(recent_batch_checks(db, limit)))
            deps = Table(title="deployments")
            for col in ("logical date", "version", "status", "path", "sha256"):
                deps.add_column(col)
            for doc in recent_deployments(db, limit):
                rolled_back = doc.get("event_type") == "model_rolled_back"
                deps.add_row(doc["logical_date"], str(doc["model_version"]),
                             doc["status"] + (f" (rollback from v{doc.get('from_version')})" if rolled_back else ""),
                             doc["deployment_path"], doc["sha256"][:12])
            console.print(deps)
    except MLOpsError as exc:
        _fail(exc)


@app.command()
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

    settings = _settings()
    day = _parse_date(date)
    try:
        with open_database(settings) as db:
            records = load_day_records(db, day, model_name=settings.model_name)
            summary = summarise_day(db, day, model_name=settings.model_name)
        # How the day ended, said once (day_story), with the version in place after that day, not today's.
        story = explain_day(records, outcome=day_story({**summary, "live_version": version_in_place(records)}))
    except MLOpsError as exc:
        _fail(exc)
    with _reader_may_stop_early():
        if as_json:
            typer.echo(json.dumps(story, indent=2, ensure_ascii=False))
            return
        for line in explain_lines(story):
            console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def doctor(
    repair: bool = typer.Option(False, "--repair", help="Delete orphan GridFS chunks and stale upload-journal entries."),
) -> None:
    """Check GridFS, artifact checksums and the deployment directory; exit 1 while a problem remains."""
    from daily_mlops.storage.doctor import CHECKS, check_storage
    from daily_mlops.storage.mongo import open_database

    settings = _settings()
    try:
        with open_database(settings) as db:
            report = check_storage(db, settings.deployment_path, repair=repair, model_name=settings.model_name)
    except MLOpsError as exc:
        _fail(exc)
    table = Table(title="daily-mlops doctor" + (" --repair" if repair else ""))
    for col in ("check", "subject", "finding", "state"):
        table.add_column(col, overflow="fold")
    for check in CHECKS:
        found = [f for f in report.findings if f.check == check]
        if not found:
            table.add_row(check, "-", f"{report.checked.get(check, 0)} checked", "[green]ok[/]")
        for f in found:
            state = ("[green]repaired[/]" if f.repaired else
                     "[yellow]repairable with --repair[/]" if f.repairable else "[red]needs attention[/]")
            table.add_row(check, f.subject, f.detail, state)
    console.print(table)
    problems = len(report.problems)
    console.print("[green]healthy[/]" if not problems else f"[red]{problems} problem(s) remain[/]")
    raise typer.Exit(0 if report.healthy else 1)


@app.command()
def predict(
    input: Path = typer.Option(..., "--input", exists=False, help="CSV of raw rows (the target column is optional)."),
    limit: int = typer.Option(20, help="Rows to print."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Also write every row to this CSV (row, probability, label, unseen, null)."),
) -> None:
    """Score raw rows with the deployed model (loaded without pickle); print probabilities.

    Then one line per column holding categories the model never saw (read as unknown) or nulls (imputed);
    with MLOPS_PREDICT_STRICT=true such rows are refused instead (exit 2, naming the column and the value).
    """
    from daily_mlops.loop.deployment import load_deployed
    from daily_mlops.loop.report import write_predictions
    from daily_mlops.ml.input_flags import STRICT_FIX
    from daily_mlops.ml.schema import read_csv, schema_parts

    settings = _settings()
    try:
        frame = read_csv(input, what="--input")  # the user's file first: its errors name --input
        bundle = load_deployed(settings.deployment_path)
        flags = bundle.preprocessor.input_flags(frame)
        if settings.predict_strict and flags:
            first = flags.refusals()[0]
            raise SchemaError(f"--input {input}: {flags.flagged_rows} of {flags.n_rows} rows refused; row "
                              f"{first['row']}: {first['msg']} (in all: {'; '.join(flags.summary_lines())}); "
                              f"{STRICT_FIX}")
        proba = bundle.predict_proba(frame)
        _, target = schema_parts(bundle.preprocessor.schema)
        positive = str(target["positive_label"])
        negative = next((str(x) for x in target["labels"] if str(x) != positive), "other")
        written = output and write_predictions(output, proba, decision_threshold=bundle.decision_threshold,
                                               positive_label=positive, negative_label=negative,
                                               input_flags=flags.per_row())
    except MLOpsError as exc:
        _fail(exc)
    table = Table(title=f"{bundle.model_name} v{bundle.model_version} predictions",
                  caption=f"P({positive}) per row of {input}; label {positive} when P >= "
                          f"{bundle.decision_threshold:.3f}")
    table.add_column("row", justify="right")
    table.add_column(f"P({positive})", justify="right")
    table.add_column("prediction")
    for i, p in enumerate(proba[:limit]):
        table.add_row(str(i), f"{p:.4f}", positive if p >= bundle.decision_threshold else negative)
    with _reader_may_stop_early():
        console.print(table)
        console.print(f"{len(proba)} rows scored; decision threshold {bundle.decision_threshold:.3f}; "
                      f"mean P({positive}) {float(proba.mean()):.4f}")
        if flags:
            console.print(f"{flags.flagged_rows} of {flags.n_rows} rows hold values the model could not read as "
                          "given (MLOPS_PREDICT_STRICT=true refuses them):", highlight=False, soft_wrap=True)
            for line in flags.summary_lines():
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        if written:
            console.print(f"wrote {len(proba)} rows to {written}", soft_wrap=True)


@app.command()
def rollback(
    to: Optional[int] = typer.Option(None, "--to", min=1, help="Version to deploy (default: the one deployed before)."),
    reason: str = typer.Option("", "--reason", help="Why; recorded in deployment_events and the status history."),
    force: bool = typer.Option(False, "--force", help="Allow a version that was rejected by its evaluation."),
) -> None:
    """Redeploy the previously deployed model version (or --to VERSION) atomically; record who and why."""
    from daily_mlops.loop.rollback import rollback as roll_back
    from daily_mlops.storage.mongo import open_database

    settings = _settings()
    try:
        with open_database(settings) as db:
            event = roll_back(settings, db=db, to_version=to, reason=reason, force=force)
    except MLOpsError as exc:
        _fail(exc)
    console.print(f"[green]rolled back {settings.model_name} from v{event.get('from_version')} to "
                  f"v{event['model_version']}[/] ({event['status']}) in {settings.deployment_path}; recorded as "
                  f"{event['event_type']} for {event['logical_date']} by {event.get('user')}: {event.get('reason')}",
                  soft_wrap=True)


@app.command()
def report(out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (self-contained)."),
           days: int = typer.Option(30, "--days", min=1, help="The last N logical dates to show.")) -> None:
    """Write an HTML report (F1, attempts, deployments, data quality, lineage, model card); print its path."""
    from daily_mlops.loop.report import write_report
    from daily_mlops.storage.mongo import open_database

    settings = _settings()
    try:
        with open_database(settings) as db:
            result = write_report(settings, db=db, out=out, days=days)
    except MLOpsError as exc:
        _fail(exc)
    console.print(str(result["path"]), soft_wrap=True)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
          port: int = typer.Option(8000, min=1, max=65535, help="TCP port.")) -> None:
    """Serve the deployed model over HTTP (/health, /model, /predict); picks up new deployments without a restart."""
    import uvicorn
    from daily_mlops.serving import create_app

    uvicorn.run(create_app(_settings()), host=host, port=port)


@app.command()
def mongo(port: int = typer.Option(27017, help="Loopback port to serve the embedded MongoDB on.")) -> None:
    """Serve the embedded MongoDB (MLOPS_HOME/data/mongo) until Ctrl-C, e.g. for mongosh queries."""
    import signal
    import threading

    from daily_mlops.storage.mongo import MONGOSH_EXAMPLE, embedded_server

    settings = _settings()
    if settings.mongo_uri:
        _fail(MLOpsError("MLOPS_MONGO_URI is set: query that server directly; `mongo` serves the embedded one"))
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
        _fail(exc)


@app.command()
def airflow(
    port: int = typer.Option(8080, help="Port of the Airflow API server and UI."),
) -> None:
    """Run a real Airflow (standalone) with this project's DAGs and the embedded MongoDB; print URL and login."""
    from daily_mlops.orchestration.standalone import run_standalone

    _run_until_stopped(run_standalone, port)


@app.command()
def stack(
    port: int = typer.Option(8080, help="Port of the Airflow API server and UI."),
) -> None:
    """Run the docker-compose topology natively (CeleryExecutor, Postgres, Redis, two workers); print URL and login."""
    from daily_mlops.orchestration.stack import run_stack

    _run_until_stopped(run_stack, port)


def _run_until_stopped(run: Any, port: int) -> None:
    """``run(settings, port=, console=)`` (``run_standalone`` / ``run_stack``); exit with its code, 2 on a user error."""
    settings = _settings()
    try:
        code = run(settings, port=port, console=console)
    except MLOpsError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def config(
    reference: bool = typer.Option(
        False, "--reference",
        help="Print the Markdown reference of every setting (default, allowed values, meaning) instead: the "
        "generator of docs/configuration.md.",
    ),
) -> None:
    """Print every setting: its MLOPS_* variable, the value in effect (secrets redacted) and its source."""
    from daily_mlops.settings.sources import configuration_reference, describe_settings

    if reference:  # defaults and descriptions only: no environment read, nothing to redact
        typer.echo(configuration_reference(), nl=False)
        return
    settings = _settings()
    try:
        rows = describe_settings(settings)
    except MLOpsError as exc:
        _fail(exc)
    table = Table(title="daily-mlops settings (priority: argument > environment > .env > yaml > default)")
    table.add_column("field", no_wrap=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
