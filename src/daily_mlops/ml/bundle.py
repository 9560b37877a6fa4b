"""The model bundle: weights + architecture config + preprocessor -> :class:`ModelBundle`.

A model is loaded either from the registry (GridFS artifacts, each verified
against its recorded sha256; :func:`daily_mlops.loop._common.load_model_version`)
or from the deployment directory (``current_model.pth`` verified against the
sha256 in ``current_model.json``; :func:`daily_mlops.loop.deployment.load_deployed`).
Both paths end in :func:`assemble`, which loads weights only with
``torch.load(..., weights_only=True)`` (via :mod:`daily_mlops.ml.model_io`) and
the preprocessor only through skops with an explicit list of trusted types.
Nothing is unpickled.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.network import TabTransformer
    from daily_mlops.ml.preprocessing import TabularPreprocessor

__all__ = ["ModelBundle", "assemble", "deployment_config"]

@dataclass(frozen=True)
class ModelBundle:
    """A ready-to-score model: network, preprocessor, calibrator and decision threshold.

    Attributes
    ----------
    decision_threshold : float
        Probability cut-off in (0, 1) above which a row is predicted positive,
        on the calibrated probability; chosen to maximise F1 on the day's
        ``calibration`` split (never on the validation or test split).
    calibration : dict or None
        The Platt calibrator (:func:`daily_mlops.ml.calibration.fit_platt`);
        ``None`` for versions registered before calibration (scores are used as they are).
    """

    model: TabTransformer
    preprocessor: TabularPreprocessor
    decision_threshold: float
    model_name: str
    model_version: int | None
    calibration: dict[str, Any] | None = None

    def scores_encoded(self, batch: EncodedBatch) -> np.ndarray:
        """The network's uncalibrated positive-class scores (softmax), shape (n_samples,), for encoded rows."""
        from daily_mlops.ml.training import predict_proba

        return predict_proba(self.model, batch.x_cat, batch.x_num)

    def predict_proba_encoded(self, batch: EncodedBatch) -> np.ndarray:
        """Calibrated positive-class probabilities, shape (n_samples,), for already encoded rows."""
        from daily_mlops.ml.calibration import calibrate

        return calibrate(self.calibration, self.scores_encoded(batch))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probabilities, shape (n_samples,), for raw rows (target column optional).

        Raises
        ------
        SchemaError
            When a feature column is missing or has the wrong type (names the column).
        """
        from daily_mlops.ml.schema import validate_batch

        clean = validate_batch(frame, self.preprocessor.schema, require_target=False)
        return self.predict_proba_encoded(self.preprocessor.transform(clean))


def assemble(
    *, architecture: dict[str, Any], weights: bytes, preprocessor: bytes, preprocessor_sha256: str,
    decision_threshold: float, model_name: str, model_version: int | None, source: str,
    calibration: dict[str, Any] | None = None,
) -> ModelBundle:
    """Build a :class:`ModelBundle` from verified bytes.

    Raises
    ------
    UnsafeArtifactError
        When ``weights`` carry a pickled object (refused by ``weights_only=True``).
    IntegrityError
        When the preprocessor bytes do not match ``preprocessor_sha256``.
    """
    from daily_mlops.ml.model_io import build_model, load_state_dict_bytes
    from daily_mlops.ml.preprocessing import TabularPreprocessor

    model = build_model(architecture, load_state_dict_bytes(weights, source=source))
    pre = TabularPreprocessor.from_bytes(preprocessor, sha256=preprocessor_sha256)
    return ModelBundle(
        model=model, preprocessor=pre, decision_threshold=float(decision_threshold),
        model_name=model_name, model_version=model_version, calibration=calibration,
    )


def deployment_config(doc: dict[str, Any], pre_doc: dict[str, Any], preprocessor: bytes) -> dict[str, Any]:
    """The JSON written beside ``current_model.pth``: architecture, threshold, calibrator, checksums, preprocessor."""
    return {
        "model_name": doc["model_name"],
        "model_version": int(doc["model_version"]),
        "architecture": doc["architecture"],
        "decision_threshold": float(doc["decision_threshold"]),
        "calibration": doc.get("calibration"),
        "metrics": doc.get("metrics", {}),
        "signature": doc.get("signature", {}),
        "sha256": {"weights": doc["sha256"]["weights"], "preprocessor": pre_doc["sha256"]["preprocessor"]},
        "preprocessor_version": int(pre_doc["model_version"]),
        "preprocessor": base64.b64encode(preprocessor).decode("ascii"),
    }
