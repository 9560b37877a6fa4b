"""``daily-mlops config``: every setting in effect and where it came from, or the generated reference page."""

from __future__ import annotations

import typer

from daily_mlops.cli.output import console, fail, settings_in_effect, settings_table
from daily_mlops.errors import MLOpsError

__all__ = ["config"]


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
    settings = settings_in_effect()
    try:
        rows = describe_settings(settings)
    except MLOpsError as exc:
        fail(exc)
    console.print(settings_table(rows))
