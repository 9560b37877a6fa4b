"""The data-quality gate on a table with a ``%d%b%Y`` date column, against a real MongoDB-wire server (GridFS).

The fidelity report is recorded, never gated, so a report that cannot be computed leaves its parts
``null`` with a reason and the gate still gives its verdict; the date column is compared with the
reference in one encoding, whatever the raw batch holds. Only the synthesizer and the preprocessor are
registered (no model is trained): the gate needs nothing else.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 5, 4)


@pytest.fixture
def dated_day(tmp_path, real_db) -> dict:
    """A 1,000-row CSV (``open_date`` like ``30NOV2024``, ``income``, ``grade``, target ``default``), its
    synthesizer and preprocessor registered, and a ``none`` day's 1,500-row batch generated."""
    from daily_mlops.loop import data
    from daily_mlops.loop.bootstrap import register_preprocessor, register_synthesizer
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.storage.registry import ModelRegistry

    rng = np.random.default_rng(0)
    n = 1000
    opened = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 2500, n), unit="D")
    income = rng.normal(50_000, 15_000, n)
    pd.DataFrame({
        "open_date": pd.DatetimeIndex(opened).strftime("%d%b%Y").str.upper(), "income": income.round(2),
        "grade": rng.choice(list("ABCD"), n), "default": np.where(income + rng.normal(0, 1e4, n) < 42_000, "yes", "no"),
    }).to_csv(tmp_path / "loans.csv", index=False)
    settings = Settings(home=tmp_path, reference_data=tmp_path / "loans.csv", target_column="default",
                        positive_label="yes", daily_rows=1500, _env_file=None)
    reference = read_csv(settings.reference_data)
    schema = infer_schema(reference, target_column="default", positive_label="yes")
    reference = validate_batch(reference, schema)
    registry = ModelRegistry(real_db)
    register_synthesizer(registry, reference, schema, seed=settings.seed)
    register_preprocessor(registry, reference, schema)
    data.generate_data(settings, logical_date=DAY, db=real_db, drift="none")
    return {"settings": settings, "db": real_db}


def _gate(dated_day: dict) -> tuple[dict, dict]:
    from daily_mlops.loop.quality import check_data_quality

    result = check_data_quality(dated_day["settings"], logical_date=DAY, db=dated_day["db"])
    return result, dated_day["db"].processing_metadata.find_one({"logical_date": DAY.isoformat()}, {"_id": 0})


def _restore_raw(db, change) -> None:
    """Replace the day's raw batch with ``change(batch)`` and point processing_metadata at it."""
    from daily_mlops.storage.batches import load_raw_batch, record_raw_batch, store_raw_batch

    meta = db.processing_metadata.find_one({"logical_date": DAY.isoformat()}, {"_id": 0})
    store_raw_batch(db, change(load_raw_batch(db, meta["raw_file"])), logical_date=DAY)
    record_raw_batch(db, {k: v for k, v in meta.items() if k not in ("raw_file", "batch_id", "logical_date")},
                     logical_date=DAY)


def test_a_failing_fidelity_classifier_leaves_the_gate_its_verdict(dated_day, monkeypatch, caplog) -> None:
    """The report's classifier raises as on the 99-column table: the gate still passes the batch, records quality
    and drift, and fidelity holds TSTR and the ratio as null with the reason (logged at WARNING), the quality
    scores kept."""
    import logging

    from daily_mlops.ml import fidelity as fidelity_mod

    def broken(*args, **kwargs):
        raise ValueError("window shape cannot be larger than input array shape")

    monkeypatch.setattr(fidelity_mod, "classifier_roc_auc", broken)
    with caplog.at_level(logging.WARNING, logger="daily_mlops.loop"):
        result, doc = _gate(dated_day)
    assert result["status"] == "passed" and doc["quality"]["status"] == "passed"
    fidelity = doc["fidelity"]
    assert fidelity["tstr_roc_auc"] is None and fidelity["ratio"] is None
    assert fidelity["errors"]["tstr_roc_auc"] == "ValueError: window shape cannot be larger than input array shape"
    assert fidelity["errors"]["ratio"] == "no TSTR ROC-AUC"
    assert 0 < fidelity["column_shapes"] <= 1 and fidelity["trtr_roc_auc"] is not None
    assert "tstr_roc_auc not computed" in caplog.text


@pytest.mark.parametrize("encoding", ["as_generated", "source_text"])
def test_the_date_column_does_not_drift_on_a_none_day(dated_day, encoding) -> None:
    """The raw batch as generate_data wrote it, or with the dates as the source writes them (30NOV2024): the date's
    drift score is at least 0.9, and so is the day's mean; the fidelity report is computed in full."""
    if encoding == "source_text":
        _restore_raw(dated_day["db"], lambda b: b.assign(open_date=b["open_date"].dt.strftime("%d%b%Y").str.upper()))
    result, doc = _gate(dated_day)
    assert result["status"] == "passed"
    drift = doc["drift"]
    assert drift["columns"]["open_date"] >= 0.9 and drift["score"] >= 0.9, drift
    assert doc["quality"]["validity"]["open_date"] >= 0.9
    assert doc["fidelity"]["errors"] == {} and doc["fidelity"]["tstr_roc_auc"] > 0.5


BREAKERS = {
    "no_positives": lambda b: b.assign(default="no"),
    "all_null_income": lambda b: b.assign(income=float("nan")),
    "constant_grade": lambda b: b.assign(grade="A"),
}


@pytest.mark.parametrize("breaker", sorted(BREAKERS))
def test_a_batch_built_to_break_the_report_still_gets_its_verdict(dated_day, breaker) -> None:
    """A raw batch without positives, with an all-null column or a constant column: the gate records its verdict
    (an all-null income fails the null-share check) and the fidelity report, each null part with its reason."""
    db = dated_day["db"]
    _restore_raw(db, BREAKERS[breaker])
    result, doc = _gate(dated_day)
    assert result["status"] == doc["quality"]["status"] == ("failed" if breaker == "all_null_income" else "passed")
    fidelity = doc["fidelity"]
    for part in ("tstr_roc_auc", "ratio", "column_shapes", "column_pair_trends"):
        assert (fidelity[part] is None) == (part in fidelity["errors"]), (part, fidelity)
    if breaker == "no_positives":
        assert fidelity["tstr_roc_auc"] is None and "single class" in fidelity["errors"]["tstr_roc_auc"]
    else:
        assert fidelity["tstr_roc_auc"] is not None  # the all-null column is left out of the classifier
