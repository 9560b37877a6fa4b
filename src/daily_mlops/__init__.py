"""daily-mlops: a daily MLOps loop on Apache Airflow 3 and MongoDB.

The public API is re-exported here. Heavy names (torch, scikit-learn, SDV,
pandas and the MongoDB driver behind them) load on first use through PEP 562
``__getattr__``, so ``import daily_mlops`` stays cheap enough for Airflow's DAG
parsing. Subpackages: :mod:`daily_mlops.storage` (MongoDB, GridFS, the
registry), :mod:`daily_mlops.ml` (schema, preprocessing, synthesis, network,
training, metrics), :mod:`daily_mlops.loop` (one module per DAG, plus
bootstrap), :mod:`daily_mlops.orchestration` (Airflow wiring, the local
runner), :mod:`daily_mlops.reporting` (documents to figures, HTML and model
cards), :mod:`daily_mlops.settings` (every reader of configuration) and
:mod:`daily_mlops.cli` (the ``daily-mlops`` command); modules
:mod:`daily_mlops.decisions` (the pure branch and approval rules),
:mod:`daily_mlops.errors`, :mod:`daily_mlops.dates`,
:mod:`daily_mlops.checksums` and :mod:`daily_mlops.serving` (``daily-mlops
serve``'s app).
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

#: Lazily imported public names, by the module that defines them.
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "daily_mlops.settings": ("Settings", "load_settings"),
    "daily_mlops.storage.registry": ("ModelRegistry",),
    "daily_mlops.ml.bundle": ("ModelBundle",),
    "daily_mlops.loop.deployment": ("load_deployed",),
    "daily_mlops.loop._common": ("load_model_version",),
    "daily_mlops.ml.network": ("TabTransformer",),
    "daily_mlops.ml.preprocessing": ("TabularPreprocessor",),
    "daily_mlops.ml.synthesis": ("Synthesizer",),
    "daily_mlops.ml.metrics": ("classification_metrics", "choose_decision_threshold"),
}
#: Attribute -> the module that defines it.
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}

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
