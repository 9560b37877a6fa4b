"""The Celery workers' configuration: the Celery provider's default, plus the task libraries imported once per worker.

Under the CeleryExecutor (``docker-compose.yml``, ``daily-mlops stack``) a task process is not a fresh
interpreter: the worker's prefork pool child runs the workload, and Airflow's supervisor starts the task
process with ``os.fork()``. A module the worker imported before that fork is already in every task
process. Celery's ``imports`` setting is imported by the **main** worker process, in
``WorkController.__init__`` (``app.loader.init_worker()``), before the pool children are forked from it;
a pool child's own ``init_worker`` is then a no-op. So the modules below are imported once per worker,
shared copy-on-write by its pool children, and inherited by every task process they fork, including
the children of a replaced pool process. (A ``worker_process_init`` handler would run in each pool
child instead, once per child, and Celery kills a child that is not up within
``worker_proc_alive_timeout``, 4 s by default: less than these imports take on a busy machine.)

Airflow loads this dict through ``[celery] celery_config_options``
(``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=daily_mlops.orchestration.celery_config.CELERY_CONFIG``, set in
``docker-compose.yml``'s ``x-airflow-common`` environment). The scheduler and the workers import this
module to build the Celery app, so it imports nothing heavy itself: the preloading happens only when a
worker starts.

Fork safety: the listed modules are only imported, never run. torch starts no thread when imported;
its intra-op thread pool (OpenMP) starts at the first parallel operation, which happens in the task
process (``ml.training`` sets one thread per fit and per prediction), so no thread pool is copied
half-initialised into a fork. NumPy's and SciPy's OpenBLAS threads are stopped around ``fork`` by
OpenBLAS itself (the provider preloads NumPy the same way).

The preloaded modules are some 600,000 objects. :func:`freeze_preloaded` moves them out of the garbage
collector's reach (``gc.freeze()``) once they are imported (``worker_init``, in the main process before
the pool forks) and again in each pool process (``worker_process_init``; a replaced pool process is
forked after the provider's ``worker_ready`` handler unfroze the main process). Otherwise every full
collection in a task process walks them all, about 0.45 s, and copies the pages it touches.

``python -m benchmarks tasks`` starts a stand-in worker from this same dict (the provider's app built
with it, then ``app.loader.init_worker()``) and forks every task from it.
"""

from __future__ import annotations

import gc
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init, worker_process_init

__all__ = ["CELERY_CONFIG", "PRELOAD_MODULES", "freeze_preloaded"]

#: Modules a worker imports at start, in this order: the libraries of the tasks that sample, encode, check,
#: score and train (torch's ``_dynamo`` is what the first ``AdamW`` step imports), MongoDB's client, GridFS
#: and the hook, the DAG files' operator modules, and the project's modules the tasks import (all pure at
#: import: no setting read, no connection, no thread).
PRELOAD_MODULES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "torch",
    "torch._dynamo",
    "sdv.single_table",
    "sdmetrics.reports",
    "sdmetrics.single_column",
    "skops.io",
    "pymongo",
    "gridfs",
    "pydantic_settings",
    "airflow.providers.mongo.hooks.mongo",
    "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.providers.standard.sensors.external_task",
    "daily_mlops.ml.synthesis",
    "daily_mlops.ml.preprocessing",
    "daily_mlops.ml.quality",
    "daily_mlops.ml.fidelity",
    "daily_mlops.ml.serialization",
    "daily_mlops.ml.preprocessor_io",
    "daily_mlops.ml.drift_scenarios",
    "daily_mlops.settings.typed",
    "daily_mlops.ml.training",
    "daily_mlops.ml.calibration",
    "daily_mlops.ml.comparison",
    "daily_mlops.ml.metrics",
    "daily_mlops.storage.registry",
    "daily_mlops.storage.batches",
    "daily_mlops.loop.data",
    "daily_mlops.loop.evaluation",
    "daily_mlops.loop.deployment",
)

#: The Celery configuration of every worker: the provider's ``DEFAULT_CELERY_CONFIG`` (built from Airflow's
#: ``[celery]`` settings) with :data:`PRELOAD_MODULES` appended to Celery's ``imports``.
CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOAD_MODULES),
}


@worker_init.connect
@worker_process_init.connect
def freeze_preloaded(**_signal: Any) -> None:
    """Celery signal handler: ``gc.freeze()``, so the objects imported so far are never collected nor walked."""
    gc.freeze()
