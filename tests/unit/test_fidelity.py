"""Unit tests of daily_mlops.ml.fidelity: the stratified real holdout, TSTR/TRTR ROC-AUC and the quality scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from daily_mlops.errors import SchemaError
from daily_mlops.ml.fidelity import (
    classifier_roc_auc,
    fidelity_report,
    holdout_split,
    quality_scores,
    scored_columns,
)
from daily_mlops.ml.synthesis import Synthesizer


def _real(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A table whose label ('bad', 30%) depends on x and c; z is noise."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.3, "bad", "good")
    x = rng.normal(size=n) + np.where(y == "bad", 1.5, 0.0)
    c = np.where(rng.random(n) < np.where(y == "bad", 0.75, 0.25), "a", "b")
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "c": c, "label": y})


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame, Synthesizer]:
    real = _real()
    fit_rows, holdout_rows = holdout_split(real, "label", seed=42)
    fit, holdout = real.iloc[fit_rows].reset_index(drop=True), real.iloc[holdout_rows].reset_index(drop=True)
    return fit, holdout, Synthesizer(seed=42, target_column="label").fit(fit)


def test_holdout_is_stratified_disjoint_and_reproducible() -> None:
    """30% of each class is held out, fit and holdout rows are disjoint and cover all rows, the seed fixes them."""
    real = _real(1000)
    fit, holdout = holdout_split(real, "label", seed=42)
    assert len(holdout) == 300 and len(fit) == 700
    assert not set(fit) & set(holdout) and set(fit) | set(holdout) == set(range(1000))
    for label, n in real["label"].value_counts().items():
        held = int((real["label"].iloc[holdout] == label).sum())
        assert abs(held - 0.3 * n) <= 1, (label, held, n)
    again = holdout_split(real, "label", seed=42)
    assert np.array_equal(again[0], fit) and np.array_equal(again[1], holdout)
    assert not np.array_equal(holdout_split(real, "label", seed=43)[1], holdout)


def test_holdout_refuses_a_class_of_one_row() -> None:
    """A class with a single row cannot be stratified: SchemaError naming the target column."""
    real = _real(50).assign(label=["bad"] + ["good"] * 49)
    with pytest.raises(SchemaError, match="'label'"):
        holdout_split(real, "label", seed=0)


def test_tstr_on_shuffled_labels_is_much_lower(parts) -> None:
    """TSTR of a per-class synthetic batch is near TRTR; the same batch with shuffled labels scores near 0.5."""
    fit, holdout, synth = parts
    batch = synth.generate(2000, seed=1, logical_date="2026-11-01")
    shuffled = batch.assign(label=np.random.default_rng(0).permutation(batch["label"].to_numpy()))
    trtr = classifier_roc_auc(fit, holdout, target="label", positive_label="bad", seed=0)
    tstr = classifier_roc_auc(batch, holdout, target="label", positive_label="bad", seed=0)
    noise = classifier_roc_auc(shuffled, holdout, target="label", positive_label="bad", seed=0)
    assert trtr > 0.75 and tstr > 0.75
    assert noise < 0.62 and tstr - noise > 0.2, (trtr, tstr, noise)


def test_roc_auc_is_none_for_a_single_class() -> None:
    """Training rows of one class make ROC-AUC undefined: None, not an exception."""
    real = _real(200)
    assert classifier_roc_auc(real[real["label"] == "good"], real, target="label", positive_label="bad", seed=0) is None


def test_scored_columns_cap_the_pairs_and_keep_the_target() -> None:
    """99 columns with a cap of 210 pairs: 21 columns (the target among them), same choice for the same seed."""
    columns = [f"f{i}" for i in range(98)] + ["label"]
    chosen = scored_columns(columns, "label", max_column_pairs=210, seed=5)
    assert len(chosen) == 21 and "label" in chosen and len(chosen) * 20 // 2 <= 210
    assert chosen == scored_columns(columns, "label", max_column_pairs=210, seed=5)
    assert chosen == [c for c in columns if c in chosen]  # original order
    assert scored_columns(columns[:10], "f0", max_column_pairs=210, seed=5) == columns[:10]


def test_fidelity_report_figures(parts) -> None:
    """The report carries TSTR, TRTR, their ratio, quality scores in [0, 1], sample sizes and seconds."""
    fit, holdout, synth = parts
    batch = synth.generate(3000, seed=2, logical_date="2026-11-02")
    report = fidelity_report(batch, reference=fit, holdout=holdout, metadata=synth.metadata_, target="label",
                             positive_label="bad", trtr_roc_auc=0.8, seed=3, max_rows=1000, max_column_pairs=3)
    assert report["rows"] == {"synthetic": 1000, "reference": len(fit), "holdout": len(holdout)}
    assert report["ratio"] == round(report["tstr_roc_auc"] / 0.8, 4)
    assert 0 <= report["column_shapes"] <= 1 and 0 <= report["column_pair_trends"] <= 1
    assert report["columns_scored"] == 3 and report["column_pairs"] == 3
    assert report["seconds"]["total"] >= report["seconds"]["tstr"] > 0
    alone = quality_scores(fit, batch, synth.metadata_, target="label")
    assert alone["columns_scored"] == 4 and alone["column_shapes"] > 0.8


# ------------------------------------------------------- a report that degrades, never fails
def _report(batch: pd.DataFrame, parts, *, holdout: pd.DataFrame | None = None) -> dict:
    fit, held, synth = parts
    return fidelity_report(batch, reference=fit, holdout=held if holdout is None else holdout,
                           metadata=synth.metadata_, target="label", positive_label="bad", trtr_roc_auc=0.8, seed=3,
                           max_rows=1000)


def _every_null_part_has_a_reason(report: dict) -> None:
    for part in ("tstr_roc_auc", "ratio", "column_shapes", "column_pair_trends"):
        assert (report[part] is None) == (part in report["errors"]), (part, report)
        if report[part] is None:
            assert isinstance(report["errors"][part], str) and report["errors"][part]


def test_the_classifier_learns_around_an_all_null_column(parts) -> None:
    """A numeric column null in every training row made HistGradientBoostingClassifier.fit raise ValueError
    ("window shape cannot be larger than input array shape"); it is left out and TSTR is computed."""
    fit, holdout, synth = parts
    batch = synth.generate(800, seed=4, logical_date="2026-11-03").assign(x=np.nan)
    auc = classifier_roc_auc(batch, holdout, target="label", positive_label="bad", seed=0)
    assert auc is not None and 0.5 < auc <= 1  # c still carries the label
    report = _report(batch, parts)
    assert report["tstr_roc_auc"] == auc and report["ratio"] == round(auc / 0.8, 4)
    _every_null_part_has_a_reason(report)


@pytest.mark.parametrize("column", ["x", "c"])
def test_a_constant_column_is_reported(parts, column) -> None:
    """A batch whose numeric or categorical column holds one value: every part computed or null with its reason."""
    fit, holdout, synth = parts
    batch = synth.generate(800, seed=5, logical_date="2026-11-04")
    batch[column] = batch[column].iloc[0]
    report = _report(batch, parts)
    assert report["tstr_roc_auc"] is not None and report["rows"]["synthetic"] == 800
    _every_null_part_has_a_reason(report)


def test_a_sample_without_positives_records_tstr_as_null_with_the_reason(parts) -> None:
    """Only 'good' rows in the batch: TSTR and the ratio are null with why; the quality scores are still there."""
    fit, holdout, synth = parts
    batch = synth.generate(800, seed=6, logical_date="2026-11-05").assign(label="good")
    report = _report(batch, parts)
    assert report["tstr_roc_auc"] is None and report["ratio"] is None
    assert "synthetic sample holds a single class (0 of 800 rows are 'bad')" in report["errors"]["tstr_roc_auc"]
    assert report["errors"]["ratio"] == "no TSTR ROC-AUC"
    assert report["column_shapes"] is not None and report["trtr_roc_auc"] == 0.8
    _every_null_part_has_a_reason(report)


def test_a_holdout_of_one_class_records_tstr_as_null_with_the_reason(parts) -> None:
    """A real holdout of one class: TSTR is undefined, the reason names the holdout."""
    fit, holdout, synth = parts
    batch = synth.generate(800, seed=7, logical_date="2026-11-06")
    report = _report(batch, parts, holdout=holdout[holdout["label"] == "bad"])
    assert report["tstr_roc_auc"] is None and "real holdout holds a single class" in report["errors"]["tstr_roc_auc"]
    _every_null_part_has_a_reason(report)


def test_a_failing_classifier_or_quality_report_is_recorded_not_raised(parts, monkeypatch) -> None:
    """When the classifier or SDMetrics raises, that part is null with "<Type>: <message>"; the rest is computed."""
    from daily_mlops.ml import fidelity as fidelity_mod

    fit, holdout, synth = parts
    batch = synth.generate(800, seed=8, logical_date="2026-11-07")

    def broken(*args, **kwargs):
        raise ValueError("window shape cannot be larger than input array shape")

    monkeypatch.setattr(fidelity_mod, "classifier_roc_auc", broken)
    report = _report(batch, parts)
    assert report["tstr_roc_auc"] is None and report["ratio"] is None
    assert report["errors"]["tstr_roc_auc"] == "ValueError: window shape cannot be larger than input array shape"
    assert report["column_shapes"] is not None and report["column_pair_trends"] is not None
    _every_null_part_has_a_reason(report)

    monkeypatch.setattr(fidelity_mod, "quality_scores", broken)
    report = _report(batch, parts)
    assert report["column_shapes"] is None and report["column_pair_trends"] is None and report["column_pairs"] is None
    assert report["errors"]["column_shapes"].startswith("ValueError: window shape")
    _every_null_part_has_a_reason(report)


def test_an_all_null_batch_column_and_a_single_class_together_still_give_a_report(parts) -> None:
    """The worst batch: an all-null column, a constant column and no positives; the report is a dict with reasons."""
    fit, holdout, synth = parts
    batch = synth.generate(500, seed=9, logical_date="2026-11-08").assign(x=np.nan, z=1.0, label="good")
    report = _report(batch, parts)
    assert report["tstr_roc_auc"] is None and report["rows"]["synthetic"] == 500
    _every_null_part_has_a_reason(report)
