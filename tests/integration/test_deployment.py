"""Deployment against a real MongoDB-wire server: atomic files, lifecycle, events, safe loading.

The registry keeps artifacts in GridFS, which mongomock 4.3 cannot do under
pymongo 4.20, so these tests use ``real_db`` (SecantusDB).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from daily_mlops.storage import deployment_dir
from daily_mlops.loop.deployment import deploy_version, load_deployed
from daily_mlops.ml.model_io import state_dict_to_bytes
from daily_mlops.storage.deployment_dir import CONFIG_FILE, VERSION_FILE, WEIGHTS_FILE, deployed_version
from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv
from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, ModelRegistry
from daily_mlops.errors import IntegrityError, MLOpsError, UnsafeArtifactError
from daily_mlops.settings import BUNDLED_REFERENCE_DATA

pytestmark = pytest.mark.integration

TARGET = "creditability"
POSITIVE = "bad"
DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)
FILES = (WEIGHTS_FILE, CONFIG_FILE, VERSION_FILE)


class _CreatesFile:
    """A pickle payload that, when unpickled, opens (creates) ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """200 real rows of the bundled reference data (target included)."""
    return read_csv(BUNDLED_REFERENCE_DATA).head(200).reset_index(drop=True)


@pytest.fixture(scope="module")
def preprocessor(frame: pd.DataFrame) -> TabularPreprocessor:
    schema = infer_schema(frame, target_column=TARGET, positive_label=POSITIVE)
    return TabularPreprocessor(schema).fit(frame)


def _network(pre: TabularPreprocessor, seed: int) -> TabTransformer:
    torch.manual_seed(seed)
    return TabTransformer(
        cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=8, nhead=2, num_layers=1,
        dim_feedforward=16, dropout=0.1,
    ).eval()


@pytest.fixture(scope="module")
def networks(preprocessor: TabularPreprocessor) -> dict[int, TabTransformer]:
    """Two differently initialised networks (different weights, same architecture)."""
    return {1: _network(preprocessor, 1), 2: _network(preprocessor, 2)}


@pytest.fixture
def registry(real_db, preprocessor: TabularPreprocessor, networks) -> ModelRegistry:
    """A registry with preprocessor v1 and tabtransformer v1 and v2, both approved."""
    reg = ModelRegistry(real_db)
    pre_doc = reg.register(
        PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": preprocessor.to_bytes()},
        status="approved", signature=preprocessor.signature(), extra={"schema": preprocessor.schema},
    )
    for version, net in networks.items():
        doc = _register_model(reg, f"run-{version}", net, pre_doc["model_version"], status="approved")
        assert doc["model_version"] == version
    return reg


def _register_model(reg: ModelRegistry, run_key: str, net: TabTransformer, pre_version: int, *, status: str):
    return reg.register(
        MODEL_NAME, run_key=run_key, artifacts={"weights": state_dict_to_bytes(net)}, status=status,
        metrics={"f1": 0.8}, n_parameters=net.n_parameters,
        extra={"architecture": net.config, "decision_threshold": 0.42, "preprocessor_version": pre_version},
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- deploy
def test_deploy_writes_three_files_marks_deployed_and_records_event(registry: ModelRegistry, tmp_path: Path):
    """deploy_version writes current_model.pth/.json/VERSION, marks the version deployed, records the event."""
    target = tmp_path / "deployed"
    event = deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    doc = registry.get(MODEL_NAME, 1)

    assert _entries(target) == sorted(FILES)  # nothing else: no temporary files left behind
    weights = (target / WEIGHTS_FILE).read_bytes()
    assert hashlib.sha256(weights).hexdigest() == doc["sha256"]["weights"]
    assert (target / VERSION_FILE).read_text().strip() == "1"
    config = json.loads((target / CONFIG_FILE).read_text(encoding="utf-8"))
    assert config["model_version"] == 1
    assert config["model_name"] == MODEL_NAME
    assert config["architecture"] == doc["architecture"]
    assert config["decision_threshold"] == pytest.approx(0.42)
    assert config["sha256"]["weights"] == doc["sha256"]["weights"]
    assert deployed_version(target) == 1

    assert doc["status"] == "deployed"
    assert [h["status"] for h in doc["status_history"]] == ["approved", "deployed"]
    assert registry.get(MODEL_NAME, 2)["status"] == "approved"

    stored = registry.db["deployment_events"].find_one({"model_version": 1}, {"_id": 0})
    for ev in (event, stored):
        assert ev["event_type"] == "model_deployed"
        assert ev["model_id"] == "tabtransformer:v1"
        assert ev["model_version"] == 1
        assert ev["deployment_path"] == str(target / WEIGHTS_FILE)
        assert ev["sha256"] == doc["sha256"]["weights"]
        assert ev["status"] == "deployed"
        assert ev["logical_date"] == "2026-11-20"
        assert isinstance(ev["timestamp"], dt.datetime)
        assert ev["timestamp"].tzinfo is not None
    assert event["previous_version"] is None
    assert registry.db["deployment_events"].count_documents({}) == 1


def test_deploying_the_same_version_again_is_a_recorded_no_op(registry: ModelRegistry, tmp_path: Path):
    """A second deploy of the deployed version changes no file and records status already_deployed."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    before = _snapshot(target)
    mtimes = {name: (target / name).stat().st_mtime_ns for name in FILES}

    again = deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    assert again["status"] == "already_deployed"
    assert again["model_version"] == 1
    assert again["previous_version"] == 1
    assert _snapshot(target) == before
    assert {name: (target / name).stat().st_mtime_ns for name in FILES} == mtimes
    assert registry.get(MODEL_NAME, 1)["status"] == "deployed"

    events = registry.db["deployment_events"]
    assert events.count_documents({"model_version": 1, "status": "deployed"}) == 1  # the original is kept
    assert events.count_documents({"model_version": 1, "status": "already_deployed"}) == 1
    # a third call on the same day converges (upsert), it does not add documents
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    assert events.count_documents({}) == 2
    assert _entries(target) == sorted(FILES)


def test_deploying_a_second_version_retires_the_first(registry: ModelRegistry, tmp_path: Path, networks):
    """Deploying approved v2 replaces the files and moves v1 from deployed to retired."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    event = deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)

    assert event["status"] == "deployed"
    assert event["previous_version"] == 1
    assert (target / VERSION_FILE).read_text().strip() == "2"
    assert (target / WEIGHTS_FILE).read_bytes() == state_dict_to_bytes(networks[2])
    assert deployed_version(target) == 2
    v1, v2 = registry.get(MODEL_NAME, 1), registry.get(MODEL_NAME, 2)
    assert v1["status"] == "retired"
    assert v1["status_history"][-1]["reason"] == "replaced by version 2"
    assert v2["status"] == "deployed"
    assert [d["model_version"] for d in registry.list(MODEL_NAME) if d["status"] == "deployed"] == [2]
    assert registry.champion()["model_version"] == 2
    assert _entries(target) == sorted(FILES)


def test_interrupted_deploy_leaves_previous_model_intact(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A crash between the temporary writes and os.replace keeps the old three files and no temp files."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    before = _snapshot(target)

    real_replace = os.replace
    calls = {"n": 0}

    def crash_first(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("simulated crash before the first os.replace")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(deployment_dir.os, "replace", crash_first)
    with pytest.raises(OSError, match="simulated crash"):
        deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)
    monkeypatch.setattr(deployment_dir.os, "replace", real_replace)

    assert calls["n"] == 1
    assert _snapshot(target) == before  # byte-identical
    assert _entries(target) == sorted(FILES)  # no .tmp files
    assert deployed_version(target) == 1
    assert load_deployed(target).model_version == 1
    # nothing claims v2 went out
    assert registry.get(MODEL_NAME, 1)["status"] == "deployed"
    assert registry.get(MODEL_NAME, 2)["status"] == "approved"
    assert registry.db["deployment_events"].count_documents({"model_version": 2}) == 0

    # the retry succeeds
    assert deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)["status"] == "deployed"
    assert deployed_version(target) == 2


def test_crash_between_replaces_is_detected_and_repaired(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A crash after the weights were replaced but before the JSON is never served; the next deploy repairs it."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)

    real_replace = os.replace
    calls = {"n": 0}

    def crash_second(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("simulated crash between replaces")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(deployment_dir.os, "replace", crash_second)
    with pytest.raises(OSError):
        deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)
    monkeypatch.setattr(deployment_dir.os, "replace", real_replace)

    assert _entries(target) == sorted(FILES)  # temp files removed
    assert deployed_version(target) is None  # weights and JSON disagree: not a valid deployment
    with pytest.raises(IntegrityError):
        load_deployed(target)
    deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)
    assert deployed_version(target) == 2
    assert load_deployed(target).model_version == 2


@pytest.mark.parametrize("status", ["rejected", "candidate"])
def test_unapproved_version_cannot_be_deployed(
    registry: ModelRegistry, tmp_path: Path, preprocessor, status: str
):
    """A rejected (or candidate) version raises MLOpsError; no file and no event is written."""
    doc = _register_model(registry, f"bad-{status}", _network(preprocessor, 3), 1, status=status)
    target = tmp_path / "deployed"
    with pytest.raises(MLOpsError, match=status):
        deploy_version(registry, MODEL_NAME, doc["model_version"], directory=target, logical_date=DAY)
    assert not target.exists() or _entries(target) == []
    assert registry.db["deployment_events"].count_documents({}) == 0
    assert registry.get(MODEL_NAME, doc["model_version"])["status"] == status


def test_rejected_version_leaves_deployed_model_untouched(registry: ModelRegistry, tmp_path: Path, preprocessor):
    """Trying to deploy a rejected version over a deployed one changes nothing."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    before = _snapshot(target)
    doc = _register_model(registry, "bad", _network(preprocessor, 4), 1, status="rejected")
    with pytest.raises(MLOpsError):
        deploy_version(registry, MODEL_NAME, doc["model_version"], directory=target, logical_date=NEXT_DAY)
    assert _snapshot(target) == before
    assert registry.get(MODEL_NAME, 1)["status"] == "deployed"


def test_tampered_registry_weights_are_not_deployed(registry: ModelRegistry, tmp_path: Path):
    """When the GridFS weights no longer match their sha256, deploy raises IntegrityError and writes nothing."""
    from bson import ObjectId

    ref = registry.get(MODEL_NAME, 2)["artifacts"]["weights"]
    result = registry.db["artifacts.chunks"].update_one(
        {"files_id": ObjectId(ref["file_id"]), "n": 0}, {"$set": {"data": b"tampered"}}
    )
    assert result.modified_count == 1
    target = tmp_path / "deployed"
    with pytest.raises(IntegrityError):
        deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=DAY)
    assert not target.exists() or _entries(target) == []
    assert registry.get(MODEL_NAME, 2)["status"] == "approved"
    assert registry.db["deployment_events"].count_documents({}) == 0


# --------------------------------------------------------------------------- load_deployed
def test_load_deployed_predicts_probabilities_for_raw_rows(
    registry: ModelRegistry, tmp_path: Path, frame: pd.DataFrame, networks, preprocessor
):
    """load_deployed rebuilds the deployed model; it scores raw rows (no target) in [0, 1] like the original."""
    from daily_mlops.ml.training import predict_proba

    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    bundle = load_deployed(target)
    assert bundle.model_version == 1
    assert bundle.model_name == MODEL_NAME
    assert bundle.decision_threshold == pytest.approx(0.42)

    raw = frame.drop(columns=[TARGET]).head(25)
    proba = bundle.predict_proba(raw)
    assert proba.shape == (25,)
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    encoded = preprocessor.transform(frame.head(25))
    expected = predict_proba(networks[1], encoded.x_cat, encoded.x_num)
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)


def test_tampered_weights_file_raises_integrity_error(registry: ModelRegistry, tmp_path: Path):
    """Changing one byte of current_model.pth makes load_deployed refuse it."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    weights = bytearray((target / WEIGHTS_FILE).read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    (target / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(IntegrityError, match="sha256"):
        load_deployed(target)
    assert deployed_version(target) is None


def test_pickle_payload_in_weights_file_is_refused_and_not_run(registry: ModelRegistry, tmp_path: Path):
    """A pickle with a __reduce__ payload in current_model.pth is refused and its side effect never happens."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    marker = tmp_path / "pwned.txt"
    (target / WEIGHTS_FILE).write_bytes(pickle.dumps(_CreatesFile(marker)))
    with pytest.raises((IntegrityError, UnsafeArtifactError)):
        load_deployed(target)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_payload_with_matching_checksum_is_still_refused(
    registry: ModelRegistry, tmp_path: Path, writer: str
):
    """Even when the attacker also rewrites the recorded sha256, weights_only loading refuses the payload."""
    import io

    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    marker = tmp_path / "pwned.txt"
    if writer == "pickle":
        payload = pickle.dumps(_CreatesFile(marker))
    else:
        buffer = io.BytesIO()
        torch.save({"weight": _CreatesFile(marker)}, buffer)
        payload = buffer.getvalue()
    assert not marker.exists()
    (target / WEIGHTS_FILE).write_bytes(payload)
    config = json.loads((target / CONFIG_FILE).read_text(encoding="utf-8"))
    config["sha256"]["weights"] = hashlib.sha256(payload).hexdigest()
    (target / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")

    with pytest.raises(UnsafeArtifactError):
        load_deployed(target)
    assert not marker.exists()


def test_pickled_preprocessor_in_config_is_refused_and_not_run(registry: ModelRegistry, tmp_path: Path):
    """A pickle put in place of the preprocessor in current_model.json (checksum updated too) is refused."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_CreatesFile(marker))
    config = json.loads((target / CONFIG_FILE).read_text(encoding="utf-8"))
    config["preprocessor"] = base64.b64encode(payload).decode("ascii")
    config["sha256"]["preprocessor"] = hashlib.sha256(payload).hexdigest()
    (target / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UnsafeArtifactError):
        load_deployed(target)
    assert not marker.exists()
