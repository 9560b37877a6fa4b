"""A CSV with ``%d%b%Y`` date strings and an ID column bootstraps and runs one data day (real MongoDB-wire server).

What it checks: the dates become numeric features, the ID is dropped, and
both are listed under ``columns`` in the day's ``processing_metadata``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_mlops.loop import bootstrap as boot_mod
from daily_mlops.loop import data
from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 5, 4)


@pytest.fixture
def dated_settings(csv_settings) -> Settings:
    """Small settings on a 400-row CSV: ``loan_id`` (unique), ``open_date`` like ``30NOV2024``, target ``default``."""
    rng = np.random.default_rng(0)
    n = 400
    opened = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 2500, n), unit="D")
    income = rng.normal(50_000, 15_000, n)
    frame = pd.DataFrame({
        "loan_id": [f"LN{i:07d}" for i in rng.permutation(n)],
        "open_date": pd.DatetimeIndex(opened).strftime("%d%b%Y").str.upper(),
        "income": income.round(2),
        "grade": rng.choice(list("ABCD"), n),
        "default": np.where(income + rng.normal(0, 10_000, n) < 42_000, "yes", "no"),
    })
    return csv_settings(frame, daily_rows=300, num_layers=1, d_model=8, nhead=2, dim_feedforward=16,
                        pretrain_epochs=0, finetune_epochs=1, retrain_epochs=1, batch_size=128)


def test_dated_csv_with_an_id_bootstraps_and_lists_its_columns(dated_settings, real_db):
    """open_date becomes days-since-epoch and month features, loan_id is dropped; both are in processing_metadata."""
    boot = boot_mod.bootstrap(dated_settings, db=real_db)
    assert boot["created"]
    listed = {a["column"]: a for a in boot["columns"]}
    assert set(listed) == {"loan_id", "open_date"}
    assert listed["loan_id"]["action"] == "dropped" and "id" in listed["loan_id"]["reason"]
    assert listed["open_date"]["action"] == "date" and listed["open_date"]["format"] == "%d%b%Y"

    pre_doc = real_db.model_metadata.find_one({"model_name": "preprocessor"})
    x_num = pre_doc["signature"]["inputs"]["x_num"]["features"]
    x_cat = pre_doc["signature"]["inputs"]["x_cat"]["features"]
    assert x_num == ["open_date", "open_date__month", "income"] and x_cat == ["grade"]
    synth_doc = real_db.model_metadata.find_one({"model_name": "synthesizer"})
    assert "loan_id" not in [c["name"] for c in synth_doc["reference_columns"]]
    sdv_column = synth_doc["sdv_metadata"]["tables"]["reference"]["columns"]["open_date"]
    assert sdv_column["sdtype"] == "datetime" and sdv_column["datetime_format"] == "%d%b%Y"

    assert data.generate_data(dated_settings, logical_date=DAY, db=real_db)["n_rows"] == 300
    data.preprocess_data(dated_settings, logical_date=DAY, db=real_db)
    data.store_processing_metadata(dated_settings, logical_date=DAY, db=real_db)
    meta = real_db.processing_metadata.find_one({"logical_date": DAY.isoformat()}, {"_id": 0})
    assert meta["status"] == "ready"
    assert meta["columns"] == boot["columns"]
    assert meta["processed"]["columns"]["x_num"] == x_num

    # the mongosh query of docs/operations.md finds both
    found = real_db.processing_metadata.find_one(
        {"logical_date": DAY.isoformat(), "columns.column": "loan_id"}, {"_id": 0, "columns": 1})
    assert found is not None and len(found["columns"]) == 2
