"""``daily-mlops predict``, ``serve`` and ``rollback``: the deployed model, scored, served or replaced."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from daily_mlops.cli.output import console, fail, predictions_table, reader_may_stop_early, settings_in_effect
from daily_mlops.errors import MLOpsError, SchemaError

__all__ = ["predict", "rollback", "serve"]


def predict(
    input: Path = typer.Option(..., "--input", exists=False, help="CSV of raw rows (the target column is optional)."),
    limit: int = typer.Option(20, help="Rows to print."),
    output: Path | None = typer.Option(
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

    settings = settings_in_effect()
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
        fail(exc)
    table = predictions_table(proba[:limit], title=f"{bundle.model_name} v{bundle.model_version} predictions",
                              source=input, decision_threshold=bundle.decision_threshold, positive=positive,
                              negative=negative)
    with reader_may_stop_early():
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


def rollback(
    to: int | None = typer.Option(None, "--to", min=1, help="Version to deploy (default: the one deployed before)."),
    reason: str = typer.Option("", "--reason", help="Why; recorded in deployment_events and the status history."),
    force: bool = typer.Option(False, "--force", help="Allow a version that was rejected by its evaluation."),
) -> None:
    """Redeploy the previously deployed model version (or --to VERSION) atomically; record who and why."""
    from daily_mlops.loop.rollback import rollback as roll_back
    from daily_mlops.storage.mongo import open_database

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            event = roll_back(settings, db=db, to_version=to, reason=reason, force=force)
    except MLOpsError as exc:
        fail(exc)
    console.print(f"[green]rolled back {settings.model_name} from v{event.get('from_version')} to "
                  f"v{event['model_version']}[/] ({event['status']}) in {settings.deployment_path}; recorded as "
                  f"{event['event_type']} for {event['logical_date']} by {event.get('user')}: {event.get('reason')}",
                  soft_wrap=True)


def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
          port: int = typer.Option(8000, min=1, max=65535, help="TCP port.")) -> None:
    """Serve the deployed model over HTTP (/health, /model, /predict); picks up new deployments without a restart."""
    import uvicorn

    from daily_mlops.serving import create_app

    uvicorn.run(create_app(settings_in_effect()), host=host, port=port)
