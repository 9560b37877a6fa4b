"""The ``daily-mlops`` command line (typer + rich): ``app``, the console entry point.

Commands, by topic (one module each):

* :mod:`~daily_mlops.cli.loop`: ``bootstrap``, ``run``, ``demo``;
* :mod:`~daily_mlops.cli.inspection`: ``status``, ``explain``, ``doctor``, ``report``;
* :mod:`~daily_mlops.cli.deployed`: ``predict``, ``rollback``, ``serve``;
* :mod:`~daily_mlops.cli.stack`: ``mongo``, ``airflow``, ``stack``;
* :mod:`~daily_mlops.cli.config`: ``config``;
* :mod:`~daily_mlops.cli.models`: the sub-app ``models`` (``card``, ``list``, ``show``, ``export``, ``import``).

What they print (the console, the tables, one-line user errors) lives in :mod:`~daily_mlops.cli.output`.
Without ``MLOPS_MONGO_URI`` every command starts the embedded MongoDB-wire
server (SecantusDB) persisted under ``MLOPS_HOME/data/mongo``. A command
imports torch, pandas and the rest of the loop only when it runs, so
``daily-mlops --help`` stays fast.

Exit codes: 0 when everything ran as designed (an alert day is an outcome, not
an error); 1 when a task failed unexpectedly; 2 for a user error (bad config,
bad input, missing model), printed as one line without a traceback. A reader
that stops early (``daily-mlops predict ... | head``) is not an error for the
commands that only print (``predict``, ``status``, ``explain``): they exit 0 quietly.
"""

from __future__ import annotations

import typer

from daily_mlops.cli import config, deployed, inspection, loop, models, stack

__all__ = ["app"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "daily-mlops: a daily MLOps loop on Airflow and MongoDB. Bootstrap a model, run days (synthetic data, "
    "evaluation, retraining, deployment), then inspect, report on and serve the results."))

# In the order of `daily-mlops --help`.
for _command in (loop.bootstrap, loop.run, loop.demo, inspection.status, inspection.explain, inspection.doctor,
                 deployed.predict, deployed.rollback, inspection.report, deployed.serve, stack.mongo, stack.airflow,
                 stack.stack, config.config):
    app.command()(_command)
app.add_typer(models.models_app, name="models")
