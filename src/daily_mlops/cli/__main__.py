"""``python -m daily_mlops.cli``: the same as the ``daily-mlops`` command."""

from daily_mlops.cli import app

app()
