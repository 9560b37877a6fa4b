"""Champion/challenger, ``f1_threshold: auto`` and ``finetuned_from`` against a real MongoDB-wire server.

One small bootstrap on the bundled data, one day's batch, then the evaluation
DAG's task functions called as the DAG calls them (the XCom chain passed by hand).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from daily_mlops.loop import bootstrap as boot_mod, data, evaluation
from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 3)


@pytest.fixture
def small(tmp_path) -> Settings:
    """Small, fast settings on the bundled data (defaults for f1_threshold: auto, f1_tolerance 0.05)."""
    return Settings(home=tmp_path, daily_rows=800, num_layers=1, d_model=8, nhead=2, dim_feedforward=16,
                    pretrain_epochs=0, finetune_epochs=2, retrain_epochs=1, batch_size=128, _env_file=None)


@pytest.fixture
def day_ready(small, real_db) -> dict:
    """Bootstrapped registry and the day's processed batch; returns bootstrap's result."""
    boot = boot_mod.bootstrap(small, db=real_db)
    data.generate_data(small, logical_date=DAY, db=real_db)
    data.preprocess_data(small, logical_date=DAY, db=real_db)
    data.store_processing_metadata(small, logical_date=DAY, db=real_db)
    return boot


def test_auto_threshold_is_stored_at_bootstrap_and_resolved_by_the_tasks(small, real_db, day_ready) -> None:
    """Bootstrap stores the auto floor (F1 on its held-out floor sample - 0.05) on version 1 and in MLOPS_HOME/f1_floor.json; evaluate_model
    with f1_threshold 'auto' uses that value and records where it came from; a decision threshold is chosen on a
    calibration part (its size is recorded)."""
    v1 = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": 1})
    floor = v1["f1_threshold_auto"]
    from daily_mlops.loop.bootstrap import floor_rows

    # measured on a separate held-out sample (twice the day's rows), not on the 15% test split
    assert floor["split"] == f"floor sample ({floor_rows(small.daily_rows)} rows)"
    assert 0.0 < floor["bootstrap_f1"] <= 1.0
    assert floor["f1_threshold"] == pytest.approx(max(0.0, floor["bootstrap_f1"] - 0.05))
    assert day_ready["f1_threshold_auto"] == floor
    sizes = v1["split_sizes"]
    assert sizes["finetune_fit"] + sizes["calibration"] == sizes["finetune"]
    assert sizes["calibration"] == pytest.approx(0.2 * sizes["finetune"], abs=1)
    written = json.loads((small.home / "f1_floor.json").read_text())["tabtransformer"]
    assert written["bootstrap_f1"] == pytest.approx(floor["bootstrap_f1"]) and written["model_version"] == 1

    result = evaluation.evaluate_model(small, model_version=1, logical_date=DAY, f1_threshold="auto", db=real_db)
    assert result["f1_threshold"] == pytest.approx(floor["f1_threshold"])
    assert result["f1_threshold_note"].startswith("auto: bootstrap F1 ")
    assert (result["champion_version"], result["champion_f1"]) == (1, result["f1"])
    record = real_db.performance_metrics.find_one({"logical_date": DAY.isoformat(), "model_version": 1})
    assert record["f1_threshold_mode"] == "auto" and record["floor"]["threshold"] == pytest.approx(floor["f1_threshold"])


def test_challenger_reaching_the_floor_but_not_beating_the_champion_is_rejected(small, real_db, day_ready) -> None:
    """With floor 0 every challenger reaches it; with min_improvement 1 none can beat the champion by it: the
    retrained version is rejected and both comparisons are on its registry record and in performance_metrics.
    It carries finetuned_from (the original design's field) besides parent_version, so the original query finds it;
    the alert then says the floor was reached but no challenger beat the champion."""
    champion = evaluation.evaluate_model(small, model_version=1, logical_date=DAY, f1_threshold=0.0, attempt=0,
                                         run_id="day__test", db=real_db)
    out = evaluation.retrain_model(small, logical_date=DAY, attempt=1, previous=champion, f1_threshold=0.0,
                                   min_improvement=1.0, run_id="day__test", db=real_db)
    assert out["passed"] is False and out["champion_version"] == 1
    doc = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": out["model_version"]})
    assert doc["status"] == "rejected"
    floor, versus = doc["comparisons"]["floor"], doc["comparisons"]["champion"]
    assert floor == {"value": pytest.approx(out["f1"]), "threshold": 0.0, "passed": True}
    assert versus["champion_version"] == 1 and versus["champion_f1"] == pytest.approx(champion["f1"])
    assert versus["delta"] == pytest.approx(out["f1"] - champion["f1"])
    assert versus["min_improvement"] == 1.0 and versus["passed"] is False
    assert "does not beat" in doc["status_history"][-1]["reason"]
    perf = real_db.performance_metrics.find_one({"logical_date": DAY.isoformat(), "model_version": doc["model_version"]})
    assert perf["passed"] is False and perf["floor"]["passed"] is True and perf["champion"]["passed"] is False

    retrained = list(real_db.model_metadata.find({"finetuned_from": {"$exists": True}}))
    assert [(d["model_version"], d["finetuned_from"], d["parent_version"]) for d in retrained] == [
        (doc["model_version"], 1, 1)]

    alert = evaluation.send_alert(small, logical_date=DAY, last=out, f1_threshold=0.0, run_id="day__test",
                                  db=real_db)
    assert "reached 0.0000 (fixed) but no retrained version beat the champion" in alert["message"]
    assert any("vs champion v1" in line for line in alert["details"])
