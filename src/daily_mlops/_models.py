"""The one way to load a model: weights + architecture config + preprocessor -> :class:`ModelBundle`.

A model is loaded either from the registry (GridFS artifacts, each verified
against its recorded sha256) or from the deployment directory
(``current_model.pth`` verified against the sha256 in ``current_model.json``).
Both paths end in :func:`assemble`, which loads weights only with
``torch.load(..., weights_only=True)`` (via :mod:`daily_mlops._model_io`) and
the preprocessor only through skops with an explicit list of trusted types.
Nothing is unpickled.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daily_mlops._artifacts import sha256_hex
from daily_mlops.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from daily_mlops._network import TabTransformer
    from daily_mlops._preprocessing import EncodedBatch, TabularPreprocessor
    from daily_mlops._registry import ModelRegistry

__all__ = [
    "CONFIG_FILE",
    "PREPROCESSOR_NAME",
    "VERSION_FILE",
    "WEIGHTS_FILE",
    "ModelBundle",
    "assemble",
    "deployment_config",
    "load_deployed",
    "load_version",
]

#: Registry name of the fitted preprocessor (fit once at bootstrap, reused by every model version).
PREPROCESSOR_NAME = "preprocessor"
WEIGHTS_FILE = "current_model.pth"
CONFIG_FILE = "current_model.json"
VERSION_FILE = "VERSION"


@dataclass(frozen=True)
class ModelBundle:
    """A ready-to-score model: network, preprocessor and decision threshold.

    Attributes
    ----------
    decision_threshold : float
        Probability cut-off in (0, 1) above which a row is predicted positive;
        chosen on the fine-tune split to maximise F1 (never on the test split).
    """

    model: "TabTransformer"
    preprocessor: "TabularPreprocessor"
    decision_threshold: float
    model_name: str
    version: int | None

    def predict_proba_encoded(self, batch: "EncodedBatch") -> np.ndarray:
        """Positive-class probabilities, shape (n_samples,), for already encoded rows."""
        from daily_mlops._training import predict_proba

        return predict_proba(self.model, batch.x_cat, batch.x_num)

    def predict_proba(self, frame: "pd.DataFrame") -> np.ndarray:
        """Positive-class probabilities, shape (n_samples,), for raw rows (target column optional).

        Raises
        ------
        SchemaError
            When a feature column is missing or has the wrong type (names the column).
        """
        from daily_mlops._preprocessing import validate_batch

        clean = validate_batch(frame, self.preprocessor.schema, require_target=False)
        return self.predict_proba_encoded(self.preprocessor.transform(clean))


def assemble(
    *, architecture: dict[str, Any], weights: bytes, preprocessor: bytes, preprocessor_sha256: str,
    decision_threshold: float, model_name: str, version: int | None, source: str,
) -> ModelBundle:
    """Build a :class:`ModelBundle` from verified bytes.

    Raises
    ------
    UnsafeArtifactError
        When ``weights`` carry a pickled object (refused by ``weights_only=True``).
    IntegrityError
        When the preprocessor bytes do not match ``preprocessor_sha256``.
    """
    from daily_mlops._model_io import build_model, load_state_dict_bytes
    from daily_mlops._preprocessing import TabularPreprocessor

    model = build_model(architecture, load_state_dict_bytes(weights, source=source))
    pre = TabularPreprocessor.from_bytes(preprocessor, sha256=preprocessor_sha256)
    return ModelBundle(
        model=model, preprocessor=pre, decision_threshold=float(decision_threshold),
        model_name=model_name, version=version,
    )


def load_version(registry: "ModelRegistry", doc: dict[str, Any]) -> ModelBundle:
    """Load a registry version (its document from :class:`~daily_mlops._registry.ModelRegistry`).

    Raises
    ------
    IntegrityError
        When an artifact is missing or its sha256 differs from the record; nothing is loaded.
    """
    pre_doc = registry.get(PREPROCESSOR_NAME, doc["preprocessor_version"])
    return assemble(
        architecture=doc["architecture"],
        weights=registry.load_artifact(doc, "weights"),
        preprocessor=registry.load_artifact(pre_doc, "preprocessor"),
        preprocessor_sha256=pre_doc["sha256"]["preprocessor"],
        decision_threshold=doc["decision_threshold"],
        model_name=doc["model_name"],
        version=int(doc["version"]),
        source=f"{doc['model_name']} version {doc['version']}",
    )


def deployment_config(doc: dict[str, Any], pre_doc: dict[str, Any], preprocessor: bytes) -> dict[str, Any]:
    """The JSON written beside ``current_model.pth``: architecture, threshold, checksums, preprocessor."""
    return {
        "model_name": doc["model_name"],
        "version": int(doc["version"]),
        "architecture": doc["architecture"],
        "decision_threshold": float(doc["decision_threshold"]),
        "metrics": doc.get("metrics", {}),
        "signature": doc.get("signature", {}),
        "sha256": {"weights": doc["sha256"]["weights"], "preprocessor": pre_doc["sha256"]["preprocessor"]},
        "preprocessor_version": int(pre_doc["version"]),
        "preprocessor": base64.b64encode(preprocessor).decode("ascii"),
    }


def load_deployed(directory: Path) -> ModelBundle:
    """Load the deployed model from ``directory`` (``current_model.pth`` + ``current_model.json``).

    Raises
    ------
    NotFoundError
        When no model is deployed there (run the deployment DAG, or ``daily-mlops demo``).
    IntegrityError
        When ``current_model.pth`` does not hash to the sha256 recorded in the JSON.
    UnsafeArtifactError
        When the weights file carries a pickled object.
    """
    weights_path, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not weights_path.is_file() or not config_path.is_file():
        raise NotFoundError(
            f"no deployed model in {directory} ({WEIGHTS_FILE} and {CONFIG_FILE} expected); "
            "run model_deployment_pipeline or `daily-mlops demo` first, or set MLOPS_DEPLOYMENT_DIR"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    weights = weights_path.read_bytes()
    if sha256_hex(weights) != config["sha256"]["weights"]:
        raise IntegrityError(
            f"{weights_path} has sha256 {sha256_hex(weights)}, but {config_path} records "
            f"{config['sha256']['weights']}; refusing to load it. Redeploy the model."
        )
    return assemble(
        architecture=config["architecture"], weights=weights,
        preprocessor=base64.b64decode(config["preprocessor"]),
        preprocessor_sha256=config["sha256"]["preprocessor"],
        decision_threshold=config["decision_threshold"], model_name=config["model_name"],
        version=int(config["version"]), source=str(weights_path),
    )
