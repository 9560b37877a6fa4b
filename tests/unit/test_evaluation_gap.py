"""The evaluation gap: computed, recorded in ``processing_metadata.fidelity``, shown by ``status``.

The gap is the champion's ROC-AUC on the day's synthetic test split minus its
ROC-AUC on the real holdout. It is recorded, never gated.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from rich.console import Console

from daily_mlops.errors import NotFoundError
from daily_mlops.ml.fidelity import evaluation_gap
from daily_mlops.reporting.evidence import evaluation_gap_text
from daily_mlops.storage.batches import record_evaluation_gap, store_processing_metadata
from daily_mlops.storage.reports import recent_batch_checks

DAY = dt.date(2026, 11, 3)


def test_the_gap_is_synthetic_test_minus_real_holdout() -> None:
    """A positive gap: the synthetic rows are easier; the figures are kept as floats, the reason is None."""
    gap = evaluation_gap(model_version=1, synthetic_test_roc_auc=0.8612, real_holdout_roc_auc=0.7702)
    assert gap == {"model_version": 1, "synthetic_test_roc_auc": 0.8612, "real_holdout_roc_auc": 0.7702,
                   "gap": 0.091, "reason": None}


@pytest.mark.parametrize("synthetic, real, missing", [(0.86, None, "real holdout"), (math.nan, 0.77, "synthetic"),
                                                      (None, None, "synthetic test split nor the real holdout")])
def test_a_missing_roc_auc_gives_no_gap_and_says_why(synthetic, real, missing) -> None:
    """Without either ROC-AUC (e.g. no real holdout stored, NaN) the gap is None with its reason."""
    gap = evaluation_gap(model_version=2, synthetic_test_roc_auc=synthetic, real_holdout_roc_auc=real)
    assert gap["gap"] is None and missing in gap["reason"]
    assert all(v is None or math.isfinite(v) for v in (gap["synthetic_test_roc_auc"], gap["real_holdout_roc_auc"]))


def test_the_gap_is_set_beside_the_fidelity_report_and_a_rerun_overwrites_it(mock_db) -> None:
    """record_evaluation_gap keeps the rest of fidelity and the document; a second call replaces the gap."""
    store_processing_metadata(mock_db, {"status": "ready", "fidelity": {"tstr_roc_auc": 0.7, "ratio": 0.95}},
                              logical_date=DAY)
    record_evaluation_gap(mock_db, DAY, evaluation_gap(model_version=1, synthetic_test_roc_auc=0.86,
                                                       real_holdout_roc_auc=0.77))
    record_evaluation_gap(mock_db, DAY, evaluation_gap(model_version=1, synthetic_test_roc_auc=0.85,
                                                       real_holdout_roc_auc=0.78))
    doc = mock_db.processing_metadata.find_one({"batch_id": "batch-2026-11-03"})
    assert doc["status"] == "ready" and doc["fidelity"]["tstr_roc_auc"] == 0.7 and doc["fidelity"]["ratio"] == 0.95
    assert doc["fidelity"]["evaluation_gap"]["gap"] == pytest.approx(0.07)


@pytest.mark.parametrize("document", [{"status": "ready", "fidelity": None}, {"status": "ready"}])
def test_a_day_without_a_fidelity_report_still_gets_its_gap(mock_db, document) -> None:
    """fidelity null (no holdout stored) or missing (an old document): the gap becomes fidelity's only key."""
    store_processing_metadata(mock_db, document, logical_date=DAY)
    gap = evaluation_gap(model_version=3, synthetic_test_roc_auc=0.9, real_holdout_roc_auc=None)
    record_evaluation_gap(mock_db, DAY, gap)
    assert mock_db.processing_metadata.find_one({"batch_id": "batch-2026-11-03"})["fidelity"] == {
        "evaluation_gap": gap}


def test_recording_a_gap_for_a_day_without_a_batch_names_the_fix(mock_db) -> None:
    """No processing_metadata for the day: NotFoundError that says to run data_pipeline_dag."""
    with pytest.raises(NotFoundError, match="run data_pipeline_dag for that date first"):
        record_evaluation_gap(mock_db, DAY, evaluation_gap(model_version=1, synthetic_test_roc_auc=0.8,
                                                           real_holdout_roc_auc=0.7))
    assert mock_db.processing_metadata.count_documents({}) == 0


def test_the_gap_reads_as_one_line_and_an_old_document_as_a_dash() -> None:
    """evaluation_gap_text: version, both ROC-AUCs and the signed gap; '-' without a recorded gap."""
    batch = {"fidelity": {"evaluation_gap": evaluation_gap(model_version=1, synthetic_test_roc_auc=0.8612,
                                                           real_holdout_roc_auc=0.7702)}}
    assert evaluation_gap_text(batch) == "v1: synthetic test 0.8612, real holdout 0.7702, gap +0.091"
    no_real = {"fidelity": {"evaluation_gap": evaluation_gap(model_version=2, synthetic_test_roc_auc=0.85,
                                                             real_holdout_roc_auc=None)}}
    assert evaluation_gap_text(no_real) == "v2: synthetic test 0.8500, real holdout -, gap -"
    for old in (None, {}, {"fidelity": None}, {"fidelity": {"tstr_roc_auc": 0.7}}):
        assert evaluation_gap_text(old) == "-"


def test_status_shows_the_gap_of_each_batch_and_a_dash_for_old_ones(mock_db) -> None:
    """daily-mlops status's batch table: the recorded gap on its day, '-' on a day recorded before the field."""
    from daily_mlops.cli.output import batch_checks_table

    old_day = DAY - dt.timedelta(days=1)
    store_processing_metadata(mock_db, {"drift_mode": "none", "quality": {"status": "passed", "message": "ok"},
                                        "fidelity": {"tstr_roc_auc": 0.7}}, logical_date=old_day)
    store_processing_metadata(mock_db, {"drift_mode": "none", "quality": {"status": "passed", "message": "ok"},
                                        "fidelity": {"tstr_roc_auc": 0.7}}, logical_date=DAY)
    record_evaluation_gap(mock_db, DAY, evaluation_gap(model_version=1, synthetic_test_roc_auc=0.8612,
                                                       real_holdout_roc_auc=0.7702))
    console = Console(record=True, width=400)
    console.print(batch_checks_table(recent_batch_checks(mock_db, 10)))
    lines = console.export_text().splitlines()
    assert "champion ROC-AUC: evaluation gap" in "\n".join(lines)
    new = next(line for line in lines if DAY.isoformat() in line)
    old = next(line for line in lines if old_day.isoformat() in line)
    assert "v1: synthetic test 0.8612, real holdout 0.7702, gap +0.091" in new
    assert "synthetic test" not in old and old.rstrip().rstrip("│").rstrip().endswith("-")
