"""``daily-mlops explain DATE`` against a real MongoDB-wire server.

The collections are seeded through the storage functions the DAG tasks write
with, with the figures a ``make demo`` recorded (commit 34579ac): 2026-11-02,
the shift day (champion v1 below the floor, recalibrated v2 and fine-tuned v3
rejected, v4 approved and deployed), and 2026-11-04, the day the data-quality
gate stopped (drift param ``broken``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daily_mlops.cli import app
from daily_mlops.loop.explain import NO_EVALUATION, explain_day, version_in_place
from daily_mlops.orchestration.runner import day_story, summarise_day
from daily_mlops.storage.batches import store_processing_metadata
from daily_mlops.storage.events import record_deployment, record_evaluation_event, record_performance
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry
from daily_mlops.storage.reports import load_day_records

pytestmark = pytest.mark.integration

SHIFT, BROKEN, NO_RUN = dt.date(2026, 11, 2), dt.date(2026, 11, 4), dt.date(2026, 10, 1)
RUN_ID = "manual__2026-12-07T06:26:48.524643+00:00"
FLOOR = 0.638626907073509
NOTE = "auto: bootstrap F1 0.6886 - f1_tolerance 0.05"
GATE_MESSAGE = ("4 check(s) past the floor: status_of_existing_checking_account unseen-category share 0.793 > 0.05 "
                "(quality_max_unseen_share); duration_in_month null-share increase 0.793 > 0.1 "
                "(quality_max_null_increase)")


def _metrics(f1: float, roc_auc: float, n: int) -> dict:
    return {"f1": f1, "roc_auc": roc_auc, "accuracy": 0.78, "precision": 0.62, "recall": 0.72,
            "confusion_matrix": [[852, 198], [124, 326]], "n_samples": n, "positive_rate": 0.3}


def _comparison(delta: float, interval: list[float], versus: int, passed: bool, **fields) -> dict:
    return {"delta": delta, "interval": interval, "confidence_level": 0.95, "champion_version": versus,
            "passed": passed, **fields}


def _batch(db, day: dt.date, *, drift: str, gate: str, message: str, worst: list[dict]) -> None:
    store_processing_metadata(db, {
        "n_rows": 10000, "status": "quality_failed" if gate == "failed" else "ready", "drift_mode": drift,
        "quality": {"status": gate, "message": message, "worst": worst, "failures": sum(w["failed"] for w in worst)},
        "drift": {"score": 0.83, "min": 0.16, "param": drift, "positive_rate": 0.295, "reference_positive_rate": 0.3,
                  "worst": [{"column": "credit_amount", "score": 0.160585, "metric": "KSComplement"}]},
        "fidelity": {"tstr_roc_auc": 0.6511, "trtr_roc_auc": 0.7362, "ratio": 0.8844, "column_shapes": 0.832,
                     "column_pair_trends": 0.81, "seconds": {"total": 1.2}},
    }, logical_date=day)


def _seed(db) -> None:
    """The demo's shift day and gate day, as the DAG tasks recorded them."""
    reg = ModelRegistry(db)
    reg.register(MODEL_NAME, run_key="bootstrap", artifacts={"weights": b"v1"}, status="approved",
                 extra={"lineage_kind": "bootstrap"})
    reg.set_status(MODEL_NAME, 1, "deployed", reason="deployed", logical_date="2026-11-01")
    record_deployment(db, {"event_type": "model_deployed", "model_name": MODEL_NAME, "model_version": 1,
                           "status": "deployed", "logical_date": "2026-11-01", "previous_version": None,
                           "version_in_place": 1, "deployment_path": "/tmp/d", "sha256": "0" * 64})
    _batch(db, SHIFT, drift="shift", gate="passed", message="all 56 checks within their floors",
           worst=[{"column": "credit_history", "check": "unseen_share", "value": 0.0, "floor": 0.05, "failed": False}])

    def evaluate(version, attempt, stage, f1, parent, passed, **fields):
        record_performance(db, logical_date=SHIFT, model_name=MODEL_NAME, model_version=version,
                           metrics=_metrics(f1, 0.85, 1500), attempt=attempt, f1_threshold=FLOOR,
                           batch_id="batch-2026-11-02", split="validation", run_id=RUN_ID, passed=passed, stage=stage,
                           f1_threshold_note=NOTE, parent_version=parent, test=_metrics(f1 + 0.02, 0.88, 1000),
                           reference=_metrics(0.58, 0.7666, 300),
                           floor={"value": f1, "threshold": FLOOR, "passed": f1 >= FLOOR, "split": "validation"},
                           **fields)

    evaluate(1, 0, "champion", 0.6187, None, False)
    chain = [  # version, attempt, stage, F1, parent, ΔF1 vs baseline, its interval, interval above 0
        (2, 0, "recalibrated", 0.6318, 1, 0.0131, [0.0010, 0.0258], True),
        (3, 1, "finetuned", 0.6407, 2, 0.0089, [-0.0198, 0.0409], False),
        (4, 2, "finetuned", 0.6694, 3, 0.0376, [0.0115, 0.0643], True),
    ]
    for version, attempt, stage, f1, parent, delta, interval, above in chain:
        reg.register(MODEL_NAME, run_key=f"{stage}-{version}", artifacts={"weights": b"w%d" % version},
                     parent_version=parent, extra={"lineage_kind": stage, "attempt": attempt})
        passed = above and f1 >= FLOOR
        baseline = 1 if version == 2 else 2
        evaluate(version, attempt, stage, f1, parent, passed,
                 champion=_comparison(delta, interval, baseline, above, metric="f1", min_improvement=0.0),
                 real=_comparison(-0.0113, [-0.0547, 0.0277], baseline, True, metric="roc_auc", margin=0.06))
        reg.set_status(MODEL_NAME, version, "approved" if passed else "rejected", logical_date=SHIFT.isoformat(),
                       reason=f"ΔF1 {delta:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}] 95% (run {RUN_ID})")
    record_evaluation_event(db, "evaluation_passed", logical_date=SHIFT, model_version=None, approved_version=4,
                            stage="finetuned", f1=0.6694, f1_threshold=FLOOR, retrain_attempts=2,
                            versions_tried=[1, 2, 3, 4])
    reg.set_status(MODEL_NAME, 1, "retired", reason="replaced by version 4", logical_date=SHIFT.isoformat())
    reg.set_status(MODEL_NAME, 4, "deployed", reason="deployed", logical_date=SHIFT.isoformat())
    record_deployment(db, {"event_type": "model_deployed", "model_name": MODEL_NAME, "model_version": 4,
                           "status": "deployed", "logical_date": SHIFT.isoformat(), "previous_version": 1,
                           "version_in_place": 4, "deployment_path": "/tmp/d", "sha256": "1" * 64})
    _batch(db, BROKEN, drift="broken", gate="failed", message=GATE_MESSAGE, worst=[
        {"column": "status_of_existing_checking_account", "check": "unseen_share", "value": 0.7931, "floor": 0.05,
         "failed": True},
        {"column": "duration_in_month", "check": "null_increase", "value": 0.7931, "floor": 0.1, "failed": True}])


@pytest.fixture
def explain(real_db, mongo_uri: str, tmp_path: Path):
    """``daily-mlops explain ARGS...`` on the seeded ``real_db``; returns typer's result."""
    _seed(real_db)
    env = {"MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": real_db.name, "MLOPS_HOME": str(tmp_path)}
    return lambda *args: CliRunner().invoke(app, ["explain", *args], env=env)


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_the_shift_day_tells_the_deployed_version_and_every_candidates_interval(explain):
    """explain 2026-11-02 names v4 approved and deployed by the deployment DAG in place of v1, the champion below
    the floor with its real-holdout score, each candidate's ΔF1 interval vs its baseline and why v2 and v3 were
    rejected (the floor, the interval), and that nothing was rejected by a reviewer."""
    result = explain("2026-11-02")
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert out.startswith("2026-11-02: v4 approved and deployed")
    assert "drift param shift; data-quality gate passed" in out
    assert "champion v1 bootstrap: below the floor" in out and "real holdout F1 0.5800 ROC-AUC 0.7666 (300 rows)" in out
    assert "candidate v2 recalibrated from v1: rejected (failed the F1 floor)" in out
    assert ("candidate v3 finetuned from v2, attempt 1: rejected (failed the paired ΔF1 interval vs its baseline)"
            in out)
    assert "candidate v4 finetuned from v3, attempt 2: approved" in out
    for interval in ("[+0.001, +0.026] 95% vs v1", "[−0.020, +0.041] 95% vs v2", "[+0.011, +0.064] 95% vs v2"):
        assert interval in out
    assert "real ΔROC-AUC −0.011 [−0.055, +0.028] 95%, margin 0.06: ok" in out
    assert "deployment: v4 deployed, replacing v1, by the deployment DAG" in out
    assert "in place after 2026-11-02: v4" in out and "alert: none" in out and "missing:" not in out


def test_the_gate_day_prints_the_gates_verdict_and_names_the_missing_evaluation(explain):
    """explain 2026-11-04 leads with the gate's stop, prints its verdict and the failed worst columns, and
    names the evaluation that never ran; the version in place stays v4."""
    result = explain("2026-11-04")
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert out.startswith("the data-quality gate stopped 2026-11-04: 4 check(s) past the floor")
    assert f"drift param broken; data-quality gate failed: {GATE_MESSAGE}" in out
    assert "status_of_existing_checking_account unseen_share 0.7931 (floor 0.05) FAILED" in out
    assert f"missing: {NO_EVALUATION}: the data-quality gate stopped the day" in out
    assert "in place after 2026-11-04: v4" in out


def test_a_date_with_no_run_exits_2_with_one_line(explain):
    """A logical date nothing was recorded for exits 2 and says so in one line, naming the date and the fix."""
    result = explain("2026-10-01")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "nothing was recorded for logical date 2026-10-01" in result.output
    assert "daily-mlops run --date 2026-10-01" in result.output


def test_json_round_trips_to_the_story_the_pure_function_returns(explain, real_db):
    """`explain --json` prints one JSON document equal to explain_day() of the same records, and it carries the
    deployed version and the candidates' intervals."""
    result = explain("2026-11-02", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    records = load_day_records(real_db, SHIFT, model_name=MODEL_NAME)
    summary = summarise_day(real_db, SHIFT, model_name=MODEL_NAME)
    expected = explain_day(records, outcome=day_story({**summary, "live_version": version_in_place(records)}))
    assert printed == expected
    assert printed["approved_version"] == 4 and printed["version_in_place"] == 4
    assert [d["model_version"] for d in printed["deployments"]] == [4]
    assert [c["comparisons"]["champion"]["interval"] for c in printed["candidates"]] == [
        [0.0010, 0.0258], [-0.0198, 0.0409], [0.0115, 0.0643]]
    assert printed["batch"]["gate"]["status"] == "passed" and printed["missing"] == []
