"""The loop's task functions on a non-German-credit CSV with messy columns, against a real MongoDB-wire server.

Nothing about the bundled data is hard-coded: a CSV with another binary target,
date-like strings, missing values, a high-cardinality id, a constant column and
an all-null column goes through bootstrap, generate, preprocess and evaluate.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_mlops.errors import SchemaError
from daily_mlops.loop import bootstrap as boot_mod
from daily_mlops.loop import data, evaluation
from daily_mlops.settings import Settings
from daily_mlops.storage.batches import record_raw_batch, store_raw_batch

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 5, 4)


@pytest.fixture
def messy_settings(csv_settings) -> Settings:
    """Settings pointing at a messy 600-row CSV whose target is `defaulted` with positive label `yes`."""
    rng = np.random.default_rng(0)
    n = 600
    income = rng.normal(50_000, 15_000, n)
    frame = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in rng.integers(0, 400, n)],
        "income": np.where(rng.random(n) < 0.1, np.nan, income),
        "opened": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
        "region": rng.choice(["north", "south", "east", None], n),
        "constant": "same",
        "empty": None,
        "defaulted": np.where(income + rng.normal(0, 10_000, n) < 45_000, "yes", "no"),
    })
    frame["opened"] = frame["opened"].dt.strftime("%Y-%m-%d")
    return csv_settings(frame, target_column="defaulted", daily_rows=800, num_layers=1, pretrain_epochs=1,
                        finetune_epochs=2, retrain_epochs=1, batch_size=128)


def test_another_csv_runs_through_the_loop(messy_settings, real_db):
    """bootstrap, generate_data, preprocess_data, store_processing_metadata and evaluate_model work on it."""
    boot = boot_mod.bootstrap(messy_settings, db=real_db)
    assert boot["created"] and boot["model_version"] == 1
    assert 0.0 <= boot["metrics"]["f1"] <= 1.0
    schema = real_db.model_metadata.find_one({"model_name": "preprocessor"})["schema"]
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    assert kinds["opened"] == "datetime" and kinds["constant"] == "dropped" and kinds["empty"] == "dropped"
    assert schema["target"]["column"] == "defaulted" and schema["target"]["positive_label"] == "yes"

    generated = data.generate_data(messy_settings, logical_date=DAY, db=real_db)
    assert generated["n_rows"] == 800
    processed = data.preprocess_data(messy_settings, logical_date=DAY, db=real_db)
    assert sum(processed["rows"].values()) == 800
    from daily_mlops.loop.quality import check_data_quality

    gate = check_data_quality(messy_settings, logical_date=DAY, db=real_db)  # nulls like the reference's: passes
    assert gate["status"] == "passed", gate["reason"]
    meta = data.store_processing_metadata(messy_settings, logical_date=DAY, db=real_db)
    assert meta["n_rows"] == 800 and 0.0 < meta["positive_rate"] < 1.0
    result = evaluation.evaluate_model(messy_settings, model_version=1, logical_date=DAY, f1_threshold=0.5, db=real_db)
    assert result["model_version"] == 1 and isinstance(result["f1"], float)


def test_a_bad_raw_batch_is_rejected_and_nothing_is_written(messy_settings, real_db):
    """A raw batch missing a column fails preprocess_data with the column's name; no split file is stored."""
    boot_mod.bootstrap(messy_settings, db=real_db)
    data.generate_data(messy_settings, logical_date=DAY, db=real_db)
    bad = pd.read_csv(messy_settings.reference_data).drop(columns=["income"])
    store_raw_batch(real_db, bad, logical_date=DAY)
    record_raw_batch(real_db, {"status": "raw", "n_rows": len(bad)}, logical_date=DAY)
    with pytest.raises(SchemaError, match="income"):
        data.preprocess_data(messy_settings, logical_date=DAY, db=real_db)
    assert real_db["processed_data.files"].count_documents({"metadata.logical_date": DAY.isoformat()}) == 0
    assert "processed" not in real_db.processing_metadata.find_one({"logical_date": DAY.isoformat()})


def test_a_tampered_raw_batch_is_refused(messy_settings, real_db):
    """Raw bytes that no longer match their recorded sha256 are refused before parsing."""
    from daily_mlops.errors import IntegrityError

    boot_mod.bootstrap(messy_settings, db=real_db)
    data.generate_data(messy_settings, logical_date=DAY, db=real_db)
    real_db["raw_data.chunks"].update_many({}, {"$set": {"data": b"x"}})
    with pytest.raises(IntegrityError):
        data.preprocess_data(messy_settings, logical_date=DAY, db=real_db)
    assert real_db["processed_data.files"].count_documents({"metadata.logical_date": DAY.isoformat()}) == 0
