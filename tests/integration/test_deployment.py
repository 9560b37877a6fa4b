"""Deployment against a real MongoDB-wire server: versioned layout, lifecycle, events, safe loading.

The registry keeps artifacts in GridFS, which mongomock 4.3 cannot do under
pymongo 4.20, so these tests use ``real_db`` (SecantusDB). The plain helpers
(:func:`make_preprocessor`, :func:`tiny_network`, :func:`register_model`,
:func:`build_registry`) are reused by ``tests/faults/test_deployment_faults.py``.
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

from daily_mlops.errors import IntegrityError, MLOpsError, UnsafeArtifactError
from daily_mlops.loop.deployment import deploy_version, load_deployed
from daily_mlops.ml.model_io import state_dict_to_bytes
from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv
from daily_mlops.settings import BUNDLED_REFERENCE_DATA
from daily_mlops.storage import deployment_dir
from daily_mlops.storage.deployment_dir import (
    CONFIG_FILE,
    CURRENT_LINK,
    LOCK_FILE,
    RECORD_FILE,
    VERSION_FILE,
    VERSIONS_DIR,
    WEIGHTS_FILE,
    deployed_version,
)
from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, ModelRegistry

pytestmark = pytest.mark.integration

TARGET = "creditability"
POSITIVE = "bad"
DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)
FILES = (WEIGHTS_FILE, CONFIG_FILE, VERSION_FILE)
#: Everything a deployment directory holds: the three flat paths (symlinks), the switch, the lock, the versions.
LAYOUT = sorted((*FILES, CURRENT_LINK, LOCK_FILE, VERSIONS_DIR))


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


def make_preprocessor(frame: pd.DataFrame) -> TabularPreprocessor:
    """A preprocessor fitted on ``frame``."""
    schema = infer_schema(frame, target_column=TARGET, positive_label=POSITIVE)
    return TabularPreprocessor(schema).fit(frame)


@pytest.fixture(scope="module")
def preprocessor(frame: pd.DataFrame) -> TabularPreprocessor:
    return make_preprocessor(frame)


def tiny_network(pre: TabularPreprocessor, seed: int) -> TabTransformer:
    """A one-layer TabTransformer (d_model 8) for ``pre``'s features, initialised from ``seed``."""
    torch.manual_seed(seed)
    return TabTransformer(
        cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=8, nhead=2, num_layers=1,
        dim_feedforward=16, dropout=0.1,
    ).eval()


@pytest.fixture(scope="module")
def networks(preprocessor: TabularPreprocessor) -> dict[int, TabTransformer]:
    """Two differently initialised networks (different weights, same architecture)."""
    return {1: tiny_network(preprocessor, 1), 2: tiny_network(preprocessor, 2)}


def build_registry(db, preprocessor: TabularPreprocessor, networks: dict[int, TabTransformer]) -> ModelRegistry:
    """A registry with preprocessor v1 and one approved tabtransformer version per network (1, 2, ...)."""
    reg = ModelRegistry(db)
    pre_doc = reg.register(
        PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": preprocessor.to_bytes()},
        status="approved", signature=preprocessor.signature(), extra={"schema": preprocessor.schema},
    )
    for version, net in networks.items():
        doc = register_model(reg, f"run-{version}", net, pre_doc["model_version"], status="approved")
        assert doc["model_version"] == version
    return reg


@pytest.fixture
def registry(real_db, preprocessor: TabularPreprocessor, networks) -> ModelRegistry:
    """A registry with preprocessor v1 and tabtransformer v1 and v2, both approved."""
    return build_registry(real_db, preprocessor, networks)


def register_model(reg: ModelRegistry, run_key: str, net: TabTransformer, pre_version: int, *, status: str):
    """Register ``net`` as the next tabtransformer version with ``status``."""
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

    assert _entries(target) == LAYOUT  # nothing else: no temporary files left behind
    assert os.readlink(target / CURRENT_LINK) == f"{VERSIONS_DIR}/1"
    assert sorted(p.name for p in (target / VERSIONS_DIR).iterdir()) == ["1"]
    assert sorted(p.name for p in (target / VERSIONS_DIR / "1").iterdir()) == sorted((*FILES, RECORD_FILE))
    for name in FILES:  # the flat paths still read, through current
        assert os.readlink(target / name) == f"{CURRENT_LINK}/{name}"
    assert json.loads((target / VERSIONS_DIR / "1" / RECORD_FILE).read_text())["logical_date"] == "2026-11-20"
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
        assert ev["version_in_place"] == 1
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
    assert _entries(target) == LAYOUT


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
    assert _entries(target) == LAYOUT
    assert os.readlink(target / CURRENT_LINK) == f"{VERSIONS_DIR}/2"
    assert sorted(p.name for p in (target / VERSIONS_DIR).iterdir()) == ["1", "2"]  # v1 kept for rollback


@pytest.mark.parametrize("call, nth", [("fsync", 1), ("fsync", 4), ("symlink", 1), ("rename", 1), ("replace", 1)])
def test_failed_step_keeps_previous_model_intact_and_leaves_no_temp_files(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, nth: int
):
    """An OSError at any step up to the switch of ``current`` serves the old version, byte-identical, no temp file."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    before = _snapshot(target)

    real = getattr(os, call)
    calls = {"n": 0}

    def fail_nth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            raise OSError(f"simulated failure of os.{call} call {nth}")
        return real(*args, **kwargs)

    monkeypatch.setattr(deployment_dir.os, call, fail_nth)
    with pytest.raises(OSError, match="simulated failure"):
        deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)
    monkeypatch.setattr(deployment_dir.os, call, real)

    assert calls["n"] == nth
    assert _snapshot(target) == before  # byte-identical
    assert _entries(target) == LAYOUT  # no temporary symlink
    assert not [p.name for p in (target / VERSIONS_DIR).iterdir() if p.name.startswith(".")]  # no temporary directory
    assert deployed_version(target) == 1
    assert load_deployed(target).model_version == 1
    # nothing claims v2 went out
    assert registry.get(MODEL_NAME, 1)["status"] == "deployed"
    assert registry.get(MODEL_NAME, 2)["status"] == "approved"
    assert registry.db["deployment_events"].count_documents({"model_version": 2}) == 0

    # the retry succeeds
    assert deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)["status"] == "deployed"
    assert deployed_version(target) == 2
    assert load_deployed(target).model_version == 2


def test_flat_seed_layout_is_read_then_migrated_by_the_next_deploy(registry: ModelRegistry, tmp_path: Path):
    """Real files at the three flat paths are served as they are; the next deploy turns them into symlinks."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in FILES:  # the earlier flat layout, with its writer's leftover temporary file
        (flat / name).write_bytes((target / name).read_bytes())
    (flat / ".current_model.pth.abc123.tmp").write_bytes(b"partial")
    assert deployed_version(flat) == 1
    assert load_deployed(flat).model_version == 1

    event = deploy_version(registry, MODEL_NAME, 2, directory=flat, logical_date=NEXT_DAY)
    assert event["status"] == "deployed" and event["previous_version"] == 1
    assert _entries(flat) == LAYOUT  # the leftover is gone too
    assert all((flat / name).is_symlink() for name in FILES)
    assert deployed_version(flat) == 2
    assert load_deployed(flat).model_version == 2


def test_older_logical_date_does_not_roll_back_a_newer_deployment(registry: ModelRegistry, tmp_path: Path):
    """Deploying v1 for an earlier day over v2 of a later day records superseded and keeps v2 everywhere."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)
    event = deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    assert event["status"] == "superseded"
    assert event["model_version"] == 1
    assert event["version_in_place"] == 2
    assert event["superseded_by"] == {"model_version": 2, "logical_date": NEXT_DAY.isoformat()}
    assert deployed_version(target) == 2
    assert registry.get(MODEL_NAME, 2)["status"] == "deployed"
    assert registry.get(MODEL_NAME, 1)["status"] == "approved"
    # the same day, or a later one, does deploy (a rerun of the day converges to its own approved version)
    assert deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=NEXT_DAY)["status"] == "deployed"
    assert deployed_version(target) == 1


def test_old_versions_are_pruned_beyond_keep_versions_never_the_current_one(
    registry: ModelRegistry, tmp_path: Path, preprocessor
):
    """With keep_versions=2 only the current and the previously deployed version directories remain."""
    for seed in (3, 4):
        register_model(registry, f"run-{seed}", tiny_network(preprocessor, seed), 1, status="approved")
    target = tmp_path / "deployed"
    for offset, version in enumerate((1, 2, 3)):
        deploy_version(registry, MODEL_NAME, version, directory=target, logical_date=DAY + dt.timedelta(days=offset),
                       keep_versions=2)
    assert sorted(p.name for p in (target / VERSIONS_DIR).iterdir()) == ["2", "3"]
    deploy_version(registry, MODEL_NAME, 4, directory=target, logical_date=DAY + dt.timedelta(days=3), keep_versions=1)
    assert sorted(p.name for p in (target / VERSIONS_DIR).iterdir()) == ["4"]
    assert load_deployed(target).model_version == 4


@pytest.mark.parametrize("status", ["rejected", "candidate"])
def test_unapproved_version_cannot_be_deployed(
    registry: ModelRegistry, tmp_path: Path, preprocessor, status: str
):
    """A rejected (or candidate) version raises MLOpsError; no file and no event is written."""
    doc = register_model(registry, f"bad-{status}", tiny_network(preprocessor, 3), 1, status=status)
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
    doc = register_model(registry, "bad", tiny_network(preprocessor, 4), 1, status="rejected")
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
