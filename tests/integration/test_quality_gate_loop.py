"""The data-quality gate task and the drift param through the loop's task functions, against a real MongoDB-wire server.

One small bootstrap (1,200 rows, one pretraining epoch) per module; each test
then runs generate_data -> preprocess_data -> check_data_quality for its own
logical date, as the data DAG does.
"""

from __future__ import annotations

import datetime as dt

import pytest

from daily_mlops.loop import bootstrap as boot_mod
from daily_mlops.loop import data
from daily_mlops.loop.quality import check_data_quality, day_drift_summary, day_quality
from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loop(mongo_uri, tmp_path_factory) -> dict:
    """A bootstrapped database (dropped afterwards) and its small settings."""
    import uuid

    from pymongo import MongoClient

    from daily_mlops.storage.mongo import database

    settings = Settings(home=tmp_path_factory.mktemp("gate"), daily_rows=1200, num_layers=1, pretrain_epochs=0,
                        finetune_epochs=1, batch_size=256, _env_file=None)
    client = MongoClient(mongo_uri, tz_aware=True)
    name = f"gate_{uuid.uuid4().hex[:8]}"
    db = database(client, name)
    boot_mod.bootstrap(settings, db=db)
    try:
        yield {"settings": settings, "db": db}
    finally:
        client.drop_database(name)
        client.close()


def _day(loop: dict, day: dt.date, drift: str) -> dict:
    settings, db = loop["settings"], loop["db"]
    generated = data.generate_data(settings, logical_date=day, db=db, drift=drift)
    data.preprocess_data(settings, logical_date=day, db=db)
    return {"generated": generated, "gate": check_data_quality(settings, logical_date=day, db=db)}


def test_a_normal_day_passes_and_records_quality_and_drift(loop):
    """drift none: status passed; quality (with status, floors, per-column figures) and drift are in
    processing_metadata, and store_processing_metadata keeps them when it marks the batch ready."""
    day = dt.date(2026, 6, 1)
    result = _day(loop, day, "none")["gate"]
    assert result["status"] == "passed" and result["reason"].endswith("checks within their floors")
    data.store_processing_metadata(loop["settings"], logical_date=day, db=loop["db"])
    doc = loop["db"].processing_metadata.find_one({"logical_date": day.isoformat()})
    assert doc["status"] == "ready" and doc["drift_mode"] == "none"
    quality, drift = doc["quality"], doc["drift"]
    assert quality["status"] == "passed" and quality["failures"] == 0 and quality["rows"] == 1200
    assert quality["diagnostic"]["score"] == 1.0 and quality["min_validity"] == 1.0
    assert quality["max_unseen_share"] == 0.0 and set(quality["validity"]) >= set(quality["unseen_share"])
    assert max(quality["null_increase"].values()) <= 0.0 + 1e-9
    assert len(quality["worst"]) == 3 and not any(w["failed"] for w in quality["worst"])
    assert drift["param"] == "none" and drift["score"] > 0.8 and "creditability" in drift["columns"]
    assert 0.1 < drift["positive_rate"] < 0.5
    assert day_quality(loop["db"], day)["quality_status"] == "passed"
    assert day_drift_summary(loop["settings"], logical_date=day, db=loop["db"]).startswith("drift score")
    assert day_drift_summary(loop["settings"], logical_date=dt.date(2030, 1, 1), db=loop["db"]) is None


def test_a_broken_day_fails_the_gate_naming_the_worst_columns(loop):
    """drift broken: status failed, the reason names the unseen-category column and its share; recorded as
    quality_failed, with the batch's fidelity report; no model version is registered by the gate."""
    day = dt.date(2026, 6, 2)
    versions = loop["db"].model_metadata.count_documents({})
    result = _day(loop, day, "broken")["gate"]
    assert result["status"] == "failed"
    doc = loop["db"].processing_metadata.find_one({"logical_date": day.isoformat()})
    assert doc["status"] == "quality_failed" and doc["quality"]["status"] == "failed"
    worst = doc["quality"]["worst"][0]
    assert worst["failed"] and worst["value"] > 0.7
    assert f"{worst['column']} " in result["reason"] and f"{worst['value']:.3f}" in result["reason"]
    assert "status_of_existing_checking_account unseen-category share 0.8" in result["reason"]
    assert "no model is judged" in result["reason"]
    assert loop["db"].model_metadata.count_documents({}) == versions
    summary = day_quality(loop["db"], day)
    assert summary["quality_status"] == "failed" and "status_of_existing_checking_account" in summary["quality_reason"]
    fidelity = doc["fidelity"]  # recorded, never gated: also on a day that fails the gate
    assert fidelity["rows"]["synthetic"] == 1200 and 0 < fidelity["column_shapes"] <= 1
    assert fidelity["tstr_roc_auc"] is not None and fidelity["trtr_roc_auc"] is not None


def test_a_drifted_day_is_the_same_on_a_rerun(loop):
    """drift label_noise twice for one day gives the same raw file (sha256): the draws are seeded by the day."""
    day = dt.date(2026, 6, 3)
    first = data.generate_data(loop["settings"], logical_date=day, db=loop["db"], drift="label_noise")
    again = data.generate_data(loop["settings"], logical_date=day, db=loop["db"], drift="label_noise")
    plain = data.generate_data(loop["settings"], logical_date=day, db=loop["db"], drift="none")
    assert first["raw_sha256"] == again["raw_sha256"] != plain["raw_sha256"]
