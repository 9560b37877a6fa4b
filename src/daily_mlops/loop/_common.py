"""What every task function of the loop shares: the database argument, timing, loading a model version."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

log = logging.getLogger("daily_mlops.loop")
R = TypeVar("R")

#: The Settings fields recorded as a model version's hyperparameters.
HYPERPARAMETER_FIELDS = ("architecture", "d_model", "nhead", "num_layers", "dim_feedforward", "dropout",
                         "encoder_dropout", "batch_size", "learning_rate", "pretrain_epochs", "tab_pretrain_epochs",
                         "finetune_epochs", "retrain_epochs", "temperature", "mask_probability", "seed")


def with_database(fn: Callable[..., R]) -> Callable[..., R]:
    """Open the Airflow connection's database when the caller passes no ``db=``.

    Inside Airflow the database comes from the ``mongo_default`` connection
    (MongoHook, :func:`daily_mlops.storage.mongo.airflow_database`); tests and
    the CLI pass ``db=`` explicitly. The wrapper's ``db`` is optional where ``fn``'s is required, which
    a type cannot say, so callers' arguments are not checked; the return type is kept.
    """

    @functools.wraps(fn)
    def wrapper(settings: Settings, *args: Any, db: Database | None = None, **kwargs: Any) -> R:
        if db is not None:
            return fn(settings, *args, db=db, **kwargs)
        from daily_mlops.storage.mongo import airflow_database

        with airflow_database(settings) as opened:
            return fn(settings, *args, db=opened, **kwargs)

    return wrapper


@contextlib.contextmanager
def timed(label: str) -> Iterator[dict[str, float]]:
    """Measure the block's wall time; ``out["seconds"]`` (rounded to ms) is set when it exits."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = round(time.perf_counter() - start, 3)
    log.info("%s took %.2f s", label, out["seconds"])


def hyperparameters(settings: Settings) -> dict[str, Any]:
    """The model and training settings recorded with a version (:data:`HYPERPARAMETER_FIELDS`)."""
    return {k: getattr(settings, k) for k in HYPERPARAMETER_FIELDS}


def load_model_version(registry: ModelRegistry, doc: dict[str, Any]) -> ModelBundle:
    """Load a registry version (its ``model_metadata`` document) as a ready-to-score bundle.

    Raises
    ------
    IntegrityError
        When an artifact is missing or its sha256 differs from the record; nothing is loaded.
    UnsafeArtifactError
        When the weights or preprocessor carry anything but tensors / allowed types.
    """
    from daily_mlops.ml.bundle import assemble
    from daily_mlops.storage.registry import preprocessor_name

    pre_doc = registry.get(preprocessor_name(doc["model_name"]), doc["preprocessor_version"])
    return assemble(
        architecture=doc["architecture"],
        weights=registry.load_artifact(doc, "weights"),
        preprocessor=registry.load_artifact(pre_doc, "preprocessor"),
        preprocessor_sha256=pre_doc["sha256"]["preprocessor"],
        decision_threshold=doc["decision_threshold"],
        model_name=doc["model_name"],
        model_version=int(doc["model_version"]),
        source=f"{doc['model_name']} version {doc['model_version']}",
        calibration=doc.get("calibration"),
    )
