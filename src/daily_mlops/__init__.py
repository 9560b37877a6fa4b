"""daily-mlops: a daily MLOps loop on Apache Airflow 3 and MongoDB.

The public API is re-exported here. Heavy names (torch, scikit-learn, SDV,
pandas and the MongoDB driver behind them) load on first use through PEP 562
``__getattr__``, so ``import daily_mlops`` stays cheap enough for Airflow's DAG
parsing. Subpackages: :mod:`daily_mlops.storage` (MongoDB, GridFS, the
registry), :mod:`daily_mlops.ml` (schema, preprocessing, synthesis, network,
training, metrics), :mod:`daily_mlops.loop` (one module per DAG, plus
bootstrap), :mod:`daily_mlops.orchestration` (Airflow wiring, the local
runner), and :mod:`daily_mlops.decisions` (the pure branch and approval rules).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from daily_mlops.decisions import next_step
from daily_mlops.errors import ConfigError, IntegrityError, MLOpsError, NotFoundError, SchemaError, UnsafeArtifactError

try:
    __version__ = version("daily-mlops")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

#: Lazily imported public names: attribute -> module that defines it.
_LAZY: dict[str, str] = {
    "Settings": "daily_mlops.settings",
    "load_settings": "daily_mlops.settings",
    "ModelRegistry": "daily_mlops.storage.registry",
    "ModelBundle": "daily_mlops.ml.bundle",
    "load_deployed": "daily_mlops.loop.deployment",
    "load_model_version": "daily_mlops.loop._common",
    "TabTransformer": "daily_mlops.ml.network",
    "TabularPreprocessor": "daily_mlops.ml.preprocessing",
    "Synthesizer": "daily_mlops.ml.synthesis",
    "classification_metrics": "daily_mlops.ml.metrics",
    "choose_decision_threshold": "daily_mlops.ml.metrics",
}

__all__ = [
    "ConfigError",
    "IntegrityError",
    "MLOpsError",
    "ModelBundle",
    "ModelRegistry",
    "NotFoundError",
    "SchemaError",
    "Settings",
    "Synthesizer",
    "TabTransformer",
    "TabularPreprocessor",
    "UnsafeArtifactError",
    "__version__",
    "choose_decision_threshold",
    "classification_metrics",
    "load_deployed",
    "load_model_version",
    "load_settings",
    "next_step",
]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'daily_mlops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
