"""Bootstrap keeps a stratified real holdout out of the synthesizer's fit; each day's batch records its fidelity.

Against a real MongoDB-wire server (GridFS artifacts): the holdout artifact is
the 30% of the reference rows not in the synthesizer's fit rows, version 1's
real-row metrics are computed on it, and the data-quality gate
(``check_data_quality``) writes TSTR, TRTR, their ratio and the SDMetrics
scores of the batch's first rows under ``fidelity`` in the day's
``processing_metadata``, kept when the day becomes ``ready``.
"""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 1)


def test_bootstrap_holdout_and_fidelity_in_processing_metadata(settings, real_db) -> None:
    """Holdout: stored with sha256, disjoint from the fit rows, 30% of each class; version 1's metrics.reference
    counts the holdout rows; the day's processing_metadata carries the fidelity figures, computed by the gate on the
    rows generate_data sampled first (the report of the synthesizer's own batch for the day, with the day's seed)."""
    from daily_mlops.dates import day_seed
    from daily_mlops.loop import data
    from daily_mlops.loop.bootstrap import bootstrap
    from daily_mlops.loop.quality import check_data_quality
    from daily_mlops.ml.fidelity import MAX_ROWS, fidelity_report
    from daily_mlops.ml.schema import read_csv
    from daily_mlops.ml.serialization import frame_from_csv
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.storage.registry import SYNTHESIZER_NAME, ModelRegistry

    result = bootstrap(settings, db=real_db)
    registry = ModelRegistry(real_db)
    synth_doc = registry.latest(SYNTHESIZER_NAME, statuses=("approved",))
    holdout = frame_from_csv(registry.load_artifact(synth_doc, "holdout"), synth_doc["reference_columns"], what="t")
    fit = frame_from_csv(registry.load_artifact(synth_doc, "synthesizer"), synth_doc["reference_columns"], what="t")
    reference = read_csv(settings.require_reference_data())
    assert len(synth_doc["sha256"]["holdout"]) == 64
    assert (len(fit), len(holdout)) == (700, 300) == (synth_doc["n_reference_rows"], synth_doc["holdout"]["n_rows"])
    key = list(reference.columns)
    assert not set(map(tuple, fit[key].astype(str).to_numpy())) & set(map(tuple, holdout[key].astype(str).to_numpy()))
    assert (holdout["creditability"] == "bad").sum() == 90  # 30% of the 300 'bad' rows
    assert synth_doc["synthesis"] == "per_class" and 0.6 < synth_doc["trtr_roc_auc"] < 0.95
    version = registry.get(settings.model_name, result["model_version"])
    assert version["metrics"]["reference"]["n_samples"] == 300 == result["real_metrics"]["n_samples"]
    assert result["trtr_roc_auc"] == synth_doc["trtr_roc_auc"]

    data.generate_data(settings, logical_date=DAY, db=real_db)
    assert "fidelity" not in real_db.processing_metadata.find_one({"batch_id": f"batch-{DAY}"})
    data.preprocess_data(settings, logical_date=DAY, db=real_db)
    assert check_data_quality(settings, logical_date=DAY, db=real_db)["status"] == "passed"
    data.store_processing_metadata(settings, logical_date=DAY, db=real_db)
    meta = real_db.processing_metadata.find_one({"batch_id": f"batch-{DAY}"})
    fidelity = meta["fidelity"]
    synth = Synthesizer.from_reference(registry.load_artifact(synth_doc, "synthesizer"),
                                       sha256=synth_doc["sha256"]["synthesizer"], record=synth_doc)
    expected = fidelity_report(synth.generate(settings.daily_rows, seed=settings.seed, logical_date=DAY).head(MAX_ROWS),
                               reference=fit, holdout=holdout, metadata=synth_doc["sdv_metadata"],
                               target="creditability",
                               positive_label="bad", trtr_roc_auc=synth_doc["trtr_roc_auc"],
                               seed=day_seed(settings.seed, DAY))
    def without_seconds(report: dict) -> dict:
        return {k: v for k, v in report.items() if k != "seconds"}

    assert without_seconds(fidelity) == without_seconds(expected)
    assert meta["status"] == "ready"
    assert fidelity["trtr_roc_auc"] == synth_doc["trtr_roc_auc"]
    assert 0.5 < fidelity["tstr_roc_auc"] <= 1 and fidelity["ratio"] == round(
        fidelity["tstr_roc_auc"] / fidelity["trtr_roc_auc"], 4)
    assert 0 < fidelity["column_shapes"] <= 1 and 0 < fidelity["column_pair_trends"] <= 1
    assert fidelity["rows"] == {"synthetic": settings.daily_rows, "reference": 700, "holdout": 300}
    assert fidelity["column_pairs"] == 210 and fidelity["seconds"]["total"] > 0
