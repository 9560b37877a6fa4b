"""``daily-mlops models ...``: commands about model versions in the registry (a typer sub-app).

Kept beside :mod:`daily_mlops.cli` (which mounts it with ``app.add_typer``) so
that registry commands can be added here without growing the main CLI module.
The shared helpers (settings, one-line user errors, the console) come from
:mod:`daily_mlops.cli`, imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

__all__ = ["models_app"]

models_app = typer.Typer(no_args_is_help=True, help="Model versions in the registry.")


@models_app.command("card")
def card(
    version: int = typer.Argument(..., help="Model version (see `daily-mlops status`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Markdown file to write (default: print it)."),
) -> None:
    """Write the model card of VERSION (Markdown, the sections of Mitchell et al. 2019)."""
    from daily_mlops.cli_output import _fail, _reader_may_stop_early, _settings, console
    from daily_mlops.errors import MLOpsError
    from daily_mlops.loop.report import model_card
    from daily_mlops.storage.mongo import open_database

    settings = _settings()
    try:
        with open_database(settings) as db:
            text, path = model_card(settings, db=db, model_version=version, out=out)
    except MLOpsError as exc:
        _fail(exc)
    with _reader_may_stop_early():
        if path is None:
            console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True, end="")
        else:
            console.print(str(path), soft_wrap=True)
