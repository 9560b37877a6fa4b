"""Infra validation before deployment, against a real MongoDB-wire server and a real fresh process.

A registry like ``test_deployment.py``'s (preprocessor, tiny TabTransformers),
plus a synthesizer version whose ``holdout`` artifact holds real rows of the
bundled data (the canary), and versions whose ``metrics.reference`` is computed
as evaluation computes it (:func:`daily_mlops.loop.evidence.real_holdout`,
:func:`daily_mlops.loop.evidence.score_metrics`).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from daily_mlops.loop.deployment import deploy_model
from daily_mlops.loop.evidence import real_holdout, score_metrics
from daily_mlops.loop.infra_validation import LATENCY_CALLS, validate_infra
from daily_mlops.ml.bundle import ModelBundle
from daily_mlops.ml.model_io import state_dict_to_bytes
from daily_mlops.ml.schema import read_csv
from daily_mlops.ml.serialization import frame_columns, frame_to_csv
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings
from daily_mlops.storage.deployment_dir import deployed_version
from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, SYNTHESIZER_NAME, ModelRegistry

pytestmark = pytest.mark.integration

_HELPERS = Path(__file__).resolve().parent / "test_deployment.py"
_spec = importlib.util.spec_from_file_location("deployment_test_helpers", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # make_preprocessor, tiny_network

DAY = dt.date(2026, 11, 20)
THRESHOLD = 0.42


@pytest.fixture(scope="module")
def reference():
    """The bundled reference rows: the first 200 fit the preprocessor, the next 150 are the real holdout."""
    frame = read_csv(BUNDLED_REFERENCE_DATA)
    return frame.head(200).reset_index(drop=True), frame.iloc[200:350].reset_index(drop=True)


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(home=tmp_path, deployment_dir=tmp_path / "deployed", _env_file=None, **overrides)


def _register_version(reg: ModelRegistry, run_key: str, net, pre_version: int, synth_version: int,
                      reference_metrics: dict | None) -> dict:
    return reg.register(
        MODEL_NAME, run_key=run_key, artifacts={"weights": state_dict_to_bytes(net)}, status="approved",
        metrics={"f1": 0.8, **({"reference": reference_metrics} if reference_metrics else {})},
        n_parameters=net.n_parameters,
        extra={"architecture": net.config, "decision_threshold": THRESHOLD, "preprocessor_version": pre_version,
               "synthesizer_version": synth_version},
    )


@pytest.fixture
def family(real_db, reference):
    """Registry: synthesizer v1 (real holdout), preprocessor v1; tabtransformer v1 scored on the holdout as
    evaluation scores it. Returns (registry, preprocessor, v1's recorded reference metrics)."""
    fit_rows, holdout = reference
    reg = ModelRegistry(real_db)
    synth = reg.register(SYNTHESIZER_NAME, run_key="bootstrap", artifacts={"holdout": frame_to_csv(holdout)},
                         status="approved", extra={"reference_columns": frame_columns(holdout)})
    pre = helpers.make_preprocessor(fit_rows)
    pre_doc = reg.register(PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": pre.to_bytes()},
                           status="approved", signature=pre.signature(), extra={"schema": pre.schema})
    net = helpers.tiny_network(pre, 1)
    bundle = ModelBundle(model=net, preprocessor=pre, decision_threshold=THRESHOLD, model_name=MODEL_NAME,
                         model_version=None)
    rows = real_holdout(reg, MODEL_NAME, pre)
    recorded = score_metrics(rows.y, bundle.predict_proba_encoded(rows), THRESHOLD)
    doc = _register_version(reg, "run-1", net, pre_doc["model_version"], synth["model_version"], recorded)
    assert doc["model_version"] == 1
    return reg, pre, recorded


def test_a_good_version_passes_records_latency_and_size_and_then_deploys(family, tmp_path: Path):
    """A version whose files load as serve loads them scores the canary exactly as evaluation did: it passes,
    its p95 single-row latency (ms) and artifact size (bytes) are recorded, nothing is deployed until deploy_model."""
    reg, _, recorded = family
    settings = _settings(tmp_path)

    result = validate_infra(settings, logical_date=DAY, model_version=1, db=reg.db)

    assert result["status"] == "passed", result
    assert result["check"] is None and result["reason"] is None
    assert result["roc_auc"] == pytest.approx(recorded["roc_auc"], abs=1e-6)
    assert result["f1"] == pytest.approx(recorded["f1"], abs=1e-6)
    assert 0 < result["p95_ms"] < settings.max_predict_p95_ms
    stored = reg.get(MODEL_NAME, 1)["infra_validation"]
    assert stored["status"] == "passed"
    assert stored["p95_ms"] == result["p95_ms"] and stored["latency_calls"] == LATENCY_CALLS
    assert stored["artifact_bytes"] == sum(stored["artifact_sizes"].values()) == result["artifact_bytes"]
    assert stored["artifact_sizes"]["weights"] > 1000
    assert stored["canary"]["rows"] == 150 and stored["canary"]["compared"] is True
    print(f"\ninfra validation of a tiny version: p95 {result['p95_ms']} ms, {result['artifact_bytes']} bytes")
    assert not settings.deployment_path.exists()  # validation stages elsewhere, deploys nothing
    assert reg.db["deployment_events"].count_documents({}) == 0

    assert deploy_model(settings, logical_date=DAY, model_version=1, db=reg.db)["status"] == "deployed"


def test_a_version_whose_schema_does_not_match_the_reference_rows_is_refused(family, reference, tmp_path: Path):
    """A version whose preprocessor expects a column the real rows lack fails the schema check in the fresh
    process: refused with a message naming the version, the check and the fix; nothing deployed; a
    refused_by_infra_validation event; the version stays approved."""
    reg, _, recorded = family
    fit_rows, _ = reference
    other = fit_rows.assign(branch_code=[f"b{i % 7}" for i in range(len(fit_rows))])  # not in the reference rows
    pre2 = helpers.make_preprocessor(other)
    pre_doc = reg.register(PREPROCESSOR_NAME, run_key="other-schema", artifacts={"preprocessor": pre2.to_bytes()},
                           status="approved", signature=pre2.signature(), extra={"schema": pre2.schema})
    doc = _register_version(reg, "run-2", helpers.tiny_network(pre2, 2), pre_doc["model_version"], 1, recorded)
    version = doc["model_version"]
    settings = _settings(tmp_path)

    result = validate_infra(settings, logical_date=DAY, model_version=version, db=reg.db)

    assert result["status"] == "refused" and result["check"] == "schema", result
    reason = result["reason"]
    assert f"{MODEL_NAME} v{version}" in reason and "schema check failed" in reason and "branch_code" in reason
    assert "fix:" in reason and "Nothing deployed" in reason
    assert not settings.deployment_path.exists()
    assert deployed_version(settings.deployment_path) is None
    events = list(reg.db["deployment_events"].find({}, {"_id": 0}))
    assert [(e["status"], e["model_version"], e["check"]) for e in events] == [
        ("refused_by_infra_validation", version, "schema")]
    stored = reg.get(MODEL_NAME, version)
    assert stored["status"] == "approved"
    assert stored["infra_validation"]["status"] == "refused" and stored["infra_validation"]["check"] == "schema"

    again = validate_infra(settings, logical_date=DAY, model_version=version, db=reg.db)  # a rerun converges
    assert again["status"] == "refused"
    assert reg.db["deployment_events"].count_documents({}) == 1


def test_scores_that_differ_from_evaluation_are_refused(family, tmp_path: Path):
    """A version whose recorded real-holdout ROC-AUC is not what its files score is refused by the scores check."""
    reg, pre, recorded = family
    wrong = {**recorded, "roc_auc": recorded["roc_auc"] - 0.01}
    doc = _register_version(reg, "run-3", helpers.tiny_network(pre, 1), 1, 1, wrong)
    settings = _settings(tmp_path)

    result = validate_infra(settings, logical_date=DAY, model_version=doc["model_version"], db=reg.db)

    assert result["status"] == "refused" and result["check"] == "scores", result
    assert "roc_auc" in result["reason"] and not settings.deployment_path.exists()
