"""The evidence behind a promotion: a candidate scored on the day's rows, and compared paired with its baseline.

Which rows do what (:mod:`daily_mlops.ml.splits`):

* ``calibration`` split: every candidate of the day gets its Platt calibrator
  and decision threshold here (:func:`calibrate_on`), the champion's
  recalibration included, so two candidates are always compared at
  thresholds chosen on the same rows;
* ``validation`` split: every decision: the F1 floor (a point estimate), the
  paired champion/challenger F1 interval, the parent of the next attempt;
* ``test`` split: reported only (registry, ``status``, report); nothing chooses on it;
* the real holdout (30% of the reference rows, kept out of the synthesizer's
  fit, the synthesizer's artifact ``holdout``): every candidate's real-row
  score, and the non-inferiority guard on ROC-AUC (:func:`compare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["DayRows", "Scored", "calibrate_on", "compare", "load_day_rows", "real_holdout", "score", "score_metrics"]

#: The splits a candidate is scored on, in the order they are recorded.
SCORED = ("validation", "test", "reference")


@dataclass(frozen=True)
class DayRows:
    """The rows a day's candidates are calibrated, judged and reported on.

    Attributes
    ----------
    calibration, validation, test : EncodedBatch
        The day's splits of those names (see the module docstring).
    reference : EncodedBatch or None
        The real holdout, encoded with the family's preprocessor; ``None`` when the synthesizer
        version kept none (registered before bootstrap kept a holdout).
    batch_sha256 : str
        sha256 of the day's raw batch file: part of every retraining run key, so a rerun on another batch
        trains anew.
    """

    calibration: EncodedBatch
    validation: EncodedBatch
    test: EncodedBatch
    reference: EncodedBatch | None
    batch_sha256: str

    def split(self, name: str) -> EncodedBatch | None:
        return getattr(self, name)


@dataclass(frozen=True)
class Scored:
    """One candidate (weights + calibrator + threshold) scored on :data:`SCORED` splits.

    Attributes
    ----------
    probabilities : dict of str to ndarray of shape (n_rows,)
        Calibrated positive-class probabilities per split.
    metrics : dict of str to dict
        :func:`daily_mlops.ml.metrics.classification_metrics` per split, plus ``brier`` and ``ece``.
    """

    decision_threshold: float
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def labels(self, split: str) -> np.ndarray:
        """Predicted labels (0/1) on ``split`` at this candidate's decision threshold."""
        return (self.probabilities[split] >= self.decision_threshold).astype(np.int64)


def real_holdout(registry: ModelRegistry, model_name: str, preprocessor: TabularPreprocessor) -> EncodedBatch | None:
    """The family's real holdout rows, validated and encoded with ``preprocessor``; ``None`` when none is stored.

    Raises
    ------
    IntegrityError
        When the holdout artifact's sha256 differs from the recorded one.
    """
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.serialization import frame_from_csv
    from daily_mlops.storage.registry import synthesizer_name

    synth_doc = registry.latest(synthesizer_name(model_name), statuses=("approved",))
    if "holdout" not in synth_doc.get("artifacts", {}):
        return None
    frame = frame_from_csv(registry.load_artifact(synth_doc, "holdout"), synth_doc["reference_columns"],
                           what="the synthesizer's holdout artifact")
    return preprocessor.transform(validate_batch(frame, preprocessor.schema))


def load_day_rows(db: Database, registry: ModelRegistry, model_name: str, day: dt.date,
                  preprocessor: TabularPreprocessor) -> DayRows:
    """Load the day's calibration, validation and test splits, the real holdout and the raw batch's sha256.

    Raises
    ------
    NotFoundError
        When a split is missing (run data_pipeline_dag for the date).
    IntegrityError
        When a stored file differs from its recorded sha256.
    """
    from daily_mlops.storage.batches import load_processing_metadata, load_split

    meta = load_processing_metadata(db, day)
    return DayRows(calibration=load_split(db, day, "calibration"), validation=load_split(db, day, "validation"),
                   test=load_split(db, day, "test"), reference=real_holdout(registry, model_name, preprocessor),
                   batch_sha256=str(meta["raw_file"]["sha256"]))


def calibrate_on(model: Any, rows: EncodedBatch) -> tuple[dict[str, Any], float]:
    """Fit the Platt calibrator and choose the F1-best decision threshold on ``rows`` (the calibration split).

    Returns
    -------
    (dict, float)
        :func:`daily_mlops.ml.calibration.fit_platt`'s record and the threshold on calibrated probabilities.
    """
    from daily_mlops.ml.calibration import calibrate, fit_platt
    from daily_mlops.ml.metrics import choose_decision_threshold
    from daily_mlops.ml.training import predict_proba

    raw = predict_proba(model, rows.x_cat, rows.x_num)
    calibration = fit_platt(rows.y, raw)
    return calibration, choose_decision_threshold(rows.y, calibrate(calibration, raw))


def score_metrics(y_true: np.ndarray, prob: np.ndarray, decision_threshold: float) -> dict[str, Any]:
    """:func:`daily_mlops.ml.metrics.classification_metrics`, the Brier score, the ECE (10 bins), ``reliability``.

    ``reliability``: the ECE's 10 equal-width bins of ``prob`` on [0, 1] (reliability diagram, Guo et al. 2017):
    per bin ``mean_predicted``, ``observed_rate`` (``None`` for an empty bin) and ``count`` (rows).
    """
    from daily_mlops.ml.calibration import brier_score, expected_calibration_error
    from daily_mlops.ml.metrics import classification_metrics

    p, y = np.asarray(prob, dtype=np.float64), np.asarray(y_true, dtype=np.float64)
    bins = np.minimum((p * 10).astype(np.int64), 9)  # the last bin includes 1
    count = np.bincount(bins, minlength=10)
    # bins are in [0, 9], so each bincount has exactly 10 entries
    per_bin = [[round(float(s / n), 6) if n else None
                for s, n in zip(np.bincount(bins, weights=w, minlength=10), count, strict=True)] for w in (p, y)]
    return {**classification_metrics(y_true, prob, decision_threshold=decision_threshold),
            "brier": brier_score(y_true, prob), "ece": expected_calibration_error(y_true, prob),
            "reliability": {"mean_predicted": per_bin[0], "observed_rate": per_bin[1], "count": count.tolist()}}


def score(bundle: ModelBundle, rows: DayRows) -> Scored:
    """Score ``bundle`` (its calibrator and decision threshold) on the validation, test and real rows."""
    out = Scored(decision_threshold=float(bundle.decision_threshold))
    for name in SCORED:
        part = rows.split(name)
        if part is None:
            continue
        prob = bundle.predict_proba_encoded(part)
        out.probabilities[name] = prob
        out.metrics[name] = score_metrics(part.labels(), prob, bundle.decision_threshold)
    return out


def compare(
    candidate: Scored, baseline: Scored, rows: DayRows, *, baseline_version: int, f1_threshold: float,
    min_improvement: float, real_margin: float, seed: int,
) -> dict[str, Any]:
    """The comparisons that decide a candidate (:func:`daily_mlops.decisions.judge_candidate`), with their noise.

    * floor: the candidate's validation F1 against ``f1_threshold`` (point estimate);
    * champion: validation F1 of candidate minus baseline, paired bootstrap 95% interval
      (:func:`daily_mlops.ml.comparison.paired_difference`); passes when its lower bound exceeds ``min_improvement``;
    * real: real-holdout ROC-AUC of candidate minus baseline, same bootstrap; passes (non-inferior) when its
      lower bound is at least ``-real_margin``. Absent when there is no real holdout.
    """
    from daily_mlops import decisions
    from daily_mlops.ml.comparison import paired_difference

    val = rows.validation
    f1_diff = paired_difference(val.y, candidate.labels("validation"), baseline.labels("validation"), metric="f1",
                                seed=seed)
    real_diff = None
    if rows.reference is not None and "reference" in candidate.probabilities:
        real_diff = paired_difference(rows.reference.y, candidate.probabilities["reference"],
                                      baseline.probabilities["reference"], metric="roc_auc", seed=seed)
    return decisions.judge_candidate(
        f1=candidate.metrics["validation"]["f1"], f1_threshold=f1_threshold, champion_version=baseline_version,
        f1_difference=f1_diff, min_improvement=min_improvement, real_difference=real_diff, real_margin=real_margin)
