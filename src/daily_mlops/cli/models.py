"""``daily-mlops models ...``: commands about model versions in the registry (a typer sub-app).

``card``, ``list``, ``show``, ``export`` and ``import``; their logic lives in
:mod:`daily_mlops.loop.report` and :mod:`daily_mlops.loop.model_versions`.

:mod:`daily_mlops.cli` mounts it with ``app.add_typer``. The settings, one-line
user errors, the console and the tables come from :mod:`daily_mlops.cli.output`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from daily_mlops.cli.output import (
    console,
    database_name,
    fail,
    reader_may_stop_early,
    registry_table,
    run_bootstrap,
    settings_in_effect,
    version_table,
)
from daily_mlops.errors import MLOpsError

__all__ = ["models_app"]

models_app = typer.Typer(no_args_is_help=True, help="Model versions in the registry.")


@models_app.command("card")
def card(
    version: int = typer.Argument(..., help="Model version (see `daily-mlops status`)."),
    out: Path | None = typer.Option(None, "--out", help="Markdown file to write (default: print it)."),
) -> None:
    """Write the model card of VERSION (Markdown, the sections of Mitchell et al. 2019)."""
    from daily_mlops.loop.report import model_card
    from daily_mlops.storage.mongo import open_database

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            text, path = model_card(settings, db=db, model_version=version, out=out)
    except MLOpsError as exc:
        fail(exc)
    with reader_may_stop_early():
        if path is None:
            console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True, end="")
        else:
            console.print(str(path), soft_wrap=True)


@models_app.command("list")
def list_(model_name: str | None = typer.Option(None, "--model-name", help="Only this model family.")) -> None:
    """Every model family and version: status, real-holdout then test-split F1 and ROC-AUC, created / deployed dates."""
    from daily_mlops.loop.model_versions import list_versions
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.registry import ModelRegistry

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            rows = list_versions(ModelRegistry(db), model_name)
    except MLOpsError as exc:
        fail(exc)
    table = registry_table(rows)
    with reader_may_stop_early():
        console.print(table)
        if not rows:
            console.print("no model versions yet; run `daily-mlops bootstrap`")


@models_app.command("show")
def show(
    model_name: str = typer.Argument(..., help="Model family, e.g. tabtransformer."),
    version: str = typer.Argument(..., help="A version number, 'latest' or 'best'."),
    metric: str = typer.Option("f1", "--metric", help="Metric 'best' maximises (test split), e.g. f1 or roc_auc."),
) -> None:
    """Print one model version: status, dates, real/validation/test metrics, calibration, comparisons, lineage."""
    from daily_mlops.loop.model_versions import version_rows
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.registry import ModelRegistry

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            doc = ModelRegistry(db).resolve(model_name, version, metric=metric)
    except MLOpsError as exc:
        fail(exc)
    table = version_table(doc, version_rows(doc))
    with reader_may_stop_early():
        console.print(table, markup=False, highlight=False)


@models_app.command("export")
def export(
    model_name: str = typer.Argument(..., help="Model family, e.g. tabtransformer."),
    version: str = typer.Argument(..., help="A version number, 'latest' or 'best'."),
    out: Path = typer.Option(..., "--out", help="YAML file to write, e.g. model.yaml."),
    metric: str = typer.Option("f1", "--metric", help="Metric 'best' maximises."),
) -> None:
    """Write a version's architecture, hyperparameters, signature, schema, metrics and lineage as YAML (no weights)."""
    from daily_mlops.loop.model_versions import export_model, write_model_file
    from daily_mlops.storage.mongo import open_database
    from daily_mlops.storage.registry import ModelRegistry

    settings = settings_in_effect()
    try:
        with open_database(settings) as db:
            document = export_model(ModelRegistry(db), model_name, version, metric=metric)
        path = write_model_file(document, out)
    except MLOpsError as exc:
        fail(exc)
    console.print(f"{document['model_name']} version {document['model_version']} -> {path}", soft_wrap=True)


@models_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A model file written by `models export`."),
    model_name: str | None = typer.Option(None, "--model-name", help="Family to bootstrap (default: the file's)."),
    reference_data: Path | None = typer.Option(None, "--reference-data", help="CSV of real rows to train on."),
    target_column: str | None = typer.Option(None, "--target-column", help="Its target (default: the file's)."),
    positive_label: str | None = typer.Option(
        None, "--positive-label", help="Positive value (default: the file's)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the settings the bootstrap would use."),
) -> None:
    """Bootstrap a new model family with a model file's architecture and hyperparameters; print the settings used."""
    from daily_mlops.loop.model_versions import bootstrap_overrides, read_model_file, require_new_family
    from daily_mlops.storage.mongo import open_database

    try:
        document = read_model_file(path)
    except MLOpsError as exc:
        fail(exc)
    given = {"model_name": model_name, "reference_data": reference_data, "target_column": target_column,
             "positive_label": positive_label}
    overrides = {**bootstrap_overrides(document), "model_name": document["model_name"],
                 **{k: v for k, v in given.items() if v is not None}}
    settings = settings_in_effect(**overrides)
    console.print(f"settings from {path} (they override MLOPS_* for this bootstrap):", soft_wrap=True)
    for key in overrides:
        console.print(f"  MLOPS_{key.upper()}={getattr(settings, key)}", markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        return
    try:
        with open_database(settings) as db:
            require_new_family(db, settings.model_name, where=database_name(settings))
            run_bootstrap(settings, db)
    except MLOpsError as exc:
        fail(exc)
