"""Champion/challenger, ``f1_threshold: auto`` and ``finetuned_from`` against a real MongoDB-wire server.

One small bootstrap on the bundled data, one day's batch, then the evaluation
DAG's task functions called as the DAG calls them (the XCom chain passed by hand).
The bootstrap and the batch are built once per module; each test gets its own
copy of that database and of its MLOPS_HOME (``day_ready``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daily_mlops.loop import bootstrap as boot_mod
from daily_mlops.loop import data, evaluation
from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 3)


def _small(home: Path) -> Settings:
    """Small, fast settings on the bundled data (defaults for f1_threshold: auto, f1_tolerance 0.05)."""
    return Settings(home=home, daily_rows=800, num_layers=1, d_model=8, nhead=2, dim_feedforward=16,
                    pretrain_epochs=0, finetune_epochs=2, retrain_epochs=1, batch_size=128, _env_file=None)


def _copy_database(source, target) -> None:
    """Insert every document of every collection of ``source`` into the same collection of ``target`` (same
    ``_id``; GridFS buckets are collections too, so artifact references stay valid)."""
    for name in source.list_collection_names():
        documents = list(source[name].find())
        if documents:
            target[name].insert_many(documents)


@pytest.fixture
def small(tmp_path) -> Settings:
    """:func:`_small` settings in this test's MLOPS_HOME."""
    return _small(tmp_path)


@pytest.fixture(scope="module")
def bootstrapped_day(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object, dict]]:
    """Bootstrap, then the day's batch generated, preprocessed and recorded, once per module.

    Yields (MLOPS_HOME, database, bootstrap's result); the database is dropped after the module.
    """
    from pymongo import MongoClient

    from daily_mlops.storage.mongo import database

    home = tmp_path_factory.mktemp("challenger_home")
    settings = _small(home)
    client = MongoClient(mongo_uri, tz_aware=True)
    name = f"t_{uuid.uuid4().hex[:10]}"
    try:
        db = database(client, name)
        boot = boot_mod.bootstrap(settings, db=db)
        data.generate_data(settings, logical_date=DAY, db=db)
        data.preprocess_data(settings, logical_date=DAY, db=db)
        data.store_processing_metadata(settings, logical_date=DAY, db=db)
        yield home, db, boot
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def day_ready(small, real_db, bootstrapped_day) -> dict:
    """Bootstrapped registry and the day's processed batch (the module's, copied into this test's database and
    MLOPS_HOME); returns bootstrap's result."""
    home, db, boot = bootstrapped_day
    _copy_database(db, real_db)
    shutil.copytree(home, small.home, dirs_exist_ok=True)
    return copy.deepcopy(boot)


def test_auto_threshold_is_stored_at_bootstrap_and_resolved_by_the_tasks(small, real_db, day_ready) -> None:
    """Bootstrap stores the auto floor (F1 on its held-out floor sample - 0.05) on version 1 and in
    MLOPS_HOME/f1_floor.json; evaluate_model
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
    assert set(sizes) == {"pretrain", "finetune", "calibration", "validation", "test"}
    assert sizes["calibration"] == pytest.approx(0.10 * small.daily_rows, abs=1)
    assert v1["calibration"]["method"] == "platt" and v1["lineage_kind"] == "bootstrap"
    assert {"validation", "test", "reference"} <= set(v1["metrics"])  # every version's real-holdout score
    written = json.loads((small.home / "f1_floor.json").read_text())["tabtransformer"]
    assert written["bootstrap_f1"] == pytest.approx(floor["bootstrap_f1"]) and written["model_version"] == 1

    result = evaluation.evaluate_model(small, model_version=1, logical_date=DAY, f1_threshold="auto", db=real_db)
    assert result["f1_threshold"] == pytest.approx(floor["f1_threshold"])
    assert result["f1_threshold_note"].startswith("auto: bootstrap F1 ")
    assert (result["champion_version"], result["champion_f1"]) == (1, result["f1"])
    record = real_db.performance_metrics.find_one({"logical_date": DAY.isoformat(), "model_version": 1})
    assert record["f1_threshold_mode"] == "auto"
    assert record["floor"]["threshold"] == pytest.approx(floor["f1_threshold"])


def test_the_champions_evaluation_gap_is_recorded_beside_the_fidelity_report(small, real_db, day_ready) -> None:
    """evaluate_model sets processing_metadata.fidelity.evaluation_gap: the champion's ROC-AUC on the day's synthetic
    test split, on the real holdout, and their difference; the gate's fidelity report is kept; a rerun of the
    evaluation converges to the same document; daily-mlops status's batch table shows the line."""
    from rich.console import Console

    from daily_mlops.cli.output import batch_checks_table
    from daily_mlops.loop.quality import check_data_quality
    from daily_mlops.storage.reports import recent_batch_checks

    check_data_quality(small, logical_date=DAY, db=real_db)
    query = {"batch_id": f"batch-{DAY}"}
    before = real_db.processing_metadata.find_one(query)["fidelity"]
    assert before and "evaluation_gap" not in before
    result = evaluation.evaluate_model(small, model_version=1, logical_date=DAY, f1_threshold=0.0, db=real_db)
    fidelity = real_db.processing_metadata.find_one(query)["fidelity"]
    gap = fidelity.pop("evaluation_gap")
    assert fidelity == before
    assert 0.0 < result["test_roc_auc"] <= 1.0 and 0.0 < result["real_roc_auc"] <= 1.0
    assert gap == {"model_version": 1, "synthetic_test_roc_auc": pytest.approx(result["test_roc_auc"]),
                   "real_holdout_roc_auc": pytest.approx(result["real_roc_auc"]),
                   "gap": pytest.approx(result["test_roc_auc"] - result["real_roc_auc"], abs=1e-4), "reason": None}
    evaluation.evaluate_model(small, model_version=1, logical_date=DAY, f1_threshold=0.0, db=real_db)
    assert real_db.processing_metadata.find_one(query)["fidelity"]["evaluation_gap"] == gap
    console = Console(record=True, width=400)
    console.print(batch_checks_table(recent_batch_checks(real_db, 5)))
    assert f"v1: synthetic test {result['test_roc_auc']:.4f}, real holdout {result['real_roc_auc']:.4f}" in (
        console.export_text())


def _chain(small, db, *, f1_threshold: float, min_improvement: float, champion: int = 1, run_id: str = "day__test"):
    """The evaluation DAG's chain called as the DAG calls it: champion, its recalibration, attempt 1."""
    first = evaluation.evaluate_model(small, model_version=champion, logical_date=DAY, f1_threshold=f1_threshold,
                                      attempt=0, run_id=run_id, db=db)
    recal = evaluation.recalibrate_champion(small, logical_date=DAY, previous=first, f1_threshold=f1_threshold,
                                            min_improvement=min_improvement, run_id=run_id, db=db)
    out = evaluation.retrain_model(small, logical_date=DAY, attempt=1, previous=recal, f1_threshold=f1_threshold,
                                   min_improvement=min_improvement, run_id=run_id, db=db)
    return first, recal, out


def test_challenger_reaching_the_floor_but_not_beating_the_champion_is_rejected(small, real_db, day_ready) -> None:
    """With floor 0 every candidate reaches it; with min_improvement 1 no interval can lie above it: the
    recalibrated champion and the fine-tuned challenger are rejected and the three comparisons (floor, paired F1
    interval, real-holdout guard) are on their registry records and in performance_metrics. The challenger carries
    finetuned_from (the original design's field) besides parent_version; its baseline is the recalibrated champion;
    the alert says the floor was reached but no candidate beat its baseline beyond the noise."""
    champion, recal, out = _chain(small, real_db, f1_threshold=0.0, min_improvement=1.0)
    assert recal["stage"] == "recalibrated" and recal["passed"] is False and recal["parent_version"] == 1
    assert out["passed"] is False and out["champion_version"] == 1 and out["baseline_version"] == recal["model_version"]
    recal_doc = real_db.model_metadata.find_one({"model_name": "tabtransformer",
                                                 "model_version": recal["model_version"]})
    assert recal_doc["lineage_kind"] == "recalibrated" and recal_doc["parent_version"] == 1
    version_1 = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": 1})
    assert recal_doc["sha256"]["weights"] == version_1["sha256"]["weights"]
    doc = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": out["model_version"]})
    assert doc["status"] == "rejected" and doc["lineage_kind"] == "finetuned"
    floor, versus, real = (doc["comparisons"][k] for k in ("floor", "champion", "real"))
    assert floor == {"value": pytest.approx(out["f1"]), "threshold": 0.0, "passed": True, "split": "validation"}
    assert versus["champion_version"] == recal["model_version"] and versus["f1"] == pytest.approx(out["f1"])
    assert versus["delta"] == pytest.approx(out["f1"] - versus["champion_f1"])
    low, high = versus["interval"]
    assert low <= versus["delta"] <= high and versus["n_resamples"] == 1000 and versus["confidence_level"] == 0.95
    assert "paired bootstrap" in versus["method"]
    assert versus["min_improvement"] == 1.0 and versus["passed"] is False
    assert real["metric"] == "roc_auc" and real["margin"] == small.real_margin and real["n_rows"] == 300
    assert "not > min_improvement" in doc["status_history"][-1]["reason"]
    perf = real_db.performance_metrics.find_one({"logical_date": DAY.isoformat(),
                                                 "model_version": doc["model_version"]})
    assert perf["passed"] is False and perf["floor"]["passed"] is True and perf["champion"]["passed"] is False
    assert perf["split"] == "validation" and perf["test"]["n_samples"] > 0 and perf["reference"]["n_samples"] == 300
    assert perf["champion"]["interval"] == versus["interval"]

    retrained = list(real_db.model_metadata.find({"finetuned_from": {"$exists": True}}))
    assert [(d["model_version"], d["finetuned_from"]) for d in retrained] == [
        (recal["model_version"], 1), (doc["model_version"], out["parent_version"])]

    alert = evaluation.send_alert(small, logical_date=DAY, last=out, f1_threshold=0.0, run_id="day__test",
                                  db=real_db)
    assert "reached 0.0000 (fixed) but no candidate beat its baseline beyond the noise" in alert["message"]
    assert any(f"vs v{recal['model_version']}" in line for line in alert["details"])
    stored = real_db.alerts.find_one({"logical_date": DAY.isoformat()})
    assert real_db.alerts.count_documents({"retry_attempts": 1}) == 1 and stored["retrain_attempts"] == 1
    assert [c["model_version"] for c in stored["candidates"]] == [1, recal["model_version"], out["model_version"]]


def test_a_challenger_that_wins_on_synthetic_rows_but_loses_on_real_rows_is_rejected(small, real_db, day_ready,
                                                                                     monkeypatch) -> None:
    """A fine-tuned challenger whose scores are perfect on the day's synthetic validation and test splits but
    inverted on the real holdout (as a version that learnt a mislabelled batch could be) beats its baseline on
    synthetic rows by a clear interval, yet its real-holdout ROC-AUC is worse beyond MLOPS_REAL_MARGIN: it is
    rejected, and both comparisons, with their intervals, are in its registry record and in performance_metrics."""
    import numpy as np

    from daily_mlops.loop import evidence

    real_score = evidence.score

    def rigged(bundle, rows):
        scored = real_score(bundle, rows)
        if bundle.model_version is None:  # the new challenger, before registration
            for split in ("validation", "test", "reference"):
                y = rows.split(split).y
                scored.probabilities[split] = np.where(y == 1, 0.9, 0.1) if split != "reference" else \
                    np.where(y == 1, 0.1, 0.9)
                scored.metrics[split] = {**scored.metrics[split], **evidence.score_metrics(
                    y, scored.probabilities[split], bundle.decision_threshold)}
        return scored

    champion, recal, out = _chain(small, real_db, f1_threshold=0.0, min_improvement=0.0)
    monkeypatch.setattr(evidence, "score", rigged)
    again = evaluation.retrain_model(small, logical_date=DAY, attempt=2, previous=out, f1_threshold=0.0,
                                     min_improvement=0.0, run_id="day__test", db=real_db)
    doc = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": again["model_version"]})
    test_f1 = doc["metrics"]["test"]["f1"]
    version_1 = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": 1})
    assert test_f1 == 1.0 and test_f1 > version_1["metrics"]["test"]["f1"]
    versus, real = doc["comparisons"]["champion"], doc["comparisons"]["real"]
    assert versus["passed"] is True and versus["interval"][0] > 0  # wins on synthetic rows, beyond the noise
    assert real["passed"] is False and real["interval"][0] < -small.real_margin and real["delta"] < -0.5
    assert doc["comparisons"]["floor"]["passed"] is True and doc["comparisons"]["passed"] is False
    assert doc["status"] == "rejected" and again["passed"] is False
    assert "real holdout ΔROC-AUC" in doc["status_history"][-1]["reason"]
    perf = real_db.performance_metrics.find_one({"logical_date": DAY.isoformat(),
                                                 "model_version": doc["model_version"]})
    assert perf["champion"]["passed"] is True and perf["real"]["passed"] is False and perf["passed"] is False


def test_a_rerun_after_the_batch_changed_or_a_rollback_trains_anew(small, real_db, day_ready) -> None:
    """A rerun of the same day with the same batch and champion reuses its versions (idempotent); after the day's
    batch changed (regenerated with drift shift) the recalibration and the attempt are trained anew; after a
    rollback (another champion) too. The old versions keep their records."""
    def versions():
        return {d["model_version"]: d for d in real_db.model_metadata.find({"model_name": "tabtransformer"},
                                                                           {"_id": 0, "status_history": 0})}

    _, recal, out = _chain(small, real_db, f1_threshold=2.0, min_improvement=0.0)
    first = versions()
    _, recal_again, out_again = _chain(small, real_db, f1_threshold=2.0, min_improvement=0.0)
    assert (recal_again["model_version"], out_again["model_version"]) == (recal["model_version"], out["model_version"])
    assert set(versions()) == set(first)

    data.generate_data(small, logical_date=DAY, db=real_db, drift="shift")  # the day's batch changes
    data.preprocess_data(small, logical_date=DAY, db=real_db)
    data.store_processing_metadata(small, logical_date=DAY, db=real_db)
    _, recal_shift, out_shift = _chain(small, real_db, f1_threshold=2.0, min_improvement=0.0)
    assert recal_shift["model_version"] not in first and out_shift["model_version"] not in first
    after_shift = versions()
    assert after_shift[out_shift["model_version"]]["batch_sha256"] != first[out["model_version"]]["batch_sha256"]
    for version, doc in first.items():  # the old versions keep their records
        assert after_shift[version]["run_key"] == doc["run_key"] and after_shift[version]["sha256"] == doc["sha256"]

    # a rollback: the day's champion is another version; its recalibration and attempt train anew
    _, recal_rb, out_rb = _chain(small, real_db, f1_threshold=2.0, min_improvement=0.0,
                                 champion=out_shift["model_version"])
    assert recal_rb["model_version"] not in after_shift and out_rb["model_version"] not in after_shift
    assert recal_rb["parent_version"] == out_shift["model_version"]
