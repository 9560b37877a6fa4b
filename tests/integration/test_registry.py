"""Model registry against a real MongoDB-wire server: versions, lineage, lifecycle, integrity.

GridFS needs a real server: mongomock 4.3's GridFS shim fails under pymongo 4.20.
"""

from __future__ import annotations

import pytest

from daily_mlops.errors import IntegrityError, MLOpsError, NotFoundError
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = pytest.mark.integration


def _register(reg: ModelRegistry, run_key: str, f1: float, parent: int | None = None, status: str = "candidate"):
    return reg.register(
        MODEL_NAME, run_key=run_key, artifacts={"weights": f"w-{run_key}".encode()}, status=status,
        parent_version=parent, metrics={"f1": f1}, trained_on=[f"batch-{run_key}"], n_parameters=10,
    )


def test_versions_are_sequential_integers_per_model(real_db):
    """Each registration takes the next integer version of its model name."""
    reg = ModelRegistry(real_db)
    assert _register(reg, "a", 0.5)["model_version"] == 1
    assert _register(reg, "b", 0.6, parent=1)["model_version"] == 2
    other = reg.register("synthesizer", run_key="a", artifacts={"synthesizer": b"x"})
    assert other["model_version"] == 1
    assert [d["model_version"] for d in reg.list(MODEL_NAME)] == [1, 2]


def test_same_run_key_returns_existing_version(real_db):
    """Registering the same run key twice creates no second version."""
    reg = ModelRegistry(real_db)
    first = _register(reg, "bootstrap", 0.5, status="approved")
    again = _register(reg, "bootstrap", 0.9, status="approved")
    assert again["model_version"] == first["model_version"] == 1
    assert again["metrics"]["f1"] == 0.5
    assert real_db.model_metadata.count_documents({}) == 1


def test_lineage_and_parent(real_db):
    """A retrained version records its parent and the chain back to the root."""
    reg = ModelRegistry(real_db)
    _register(reg, "a", 0.5)
    _register(reg, "b", 0.6, parent=1)
    third = _register(reg, "c", 0.7, parent=2)
    assert third["parent_version"] == 2
    assert third["lineage"] == [1, 2]
    assert "parent_version" not in reg.get(MODEL_NAME, 1)
    with pytest.raises(NotFoundError, match="version 9"):
        _register(reg, "d", 0.1, parent=9)


def test_latest_best_and_champion(real_db):
    """latest/best/champion pick the right versions."""
    reg = ModelRegistry(real_db)
    _register(reg, "a", 0.5, status="approved")
    _register(reg, "b", 0.8)
    _register(reg, "c", 0.6)
    assert reg.latest(MODEL_NAME)["model_version"] == 3
    assert reg.best(MODEL_NAME, metric="f1")["model_version"] == 2
    assert reg.champion()["model_version"] == 1
    reg.set_status(MODEL_NAME, 1, "deployed", reason="test")
    reg.set_status(MODEL_NAME, 2, "approved", reason="test")
    assert reg.champion()["model_version"] == 1  # deployed beats approved
    with pytest.raises(NotFoundError):
        reg.latest("nope")


def test_status_lifecycle(real_db):
    """Status moves only along the lifecycle and records its history."""
    reg = ModelRegistry(real_db)
    _register(reg, "a", 0.5)
    doc = reg.set_status(MODEL_NAME, 1, "rejected", reason="f1 too low")
    assert doc["status"] == "rejected"
    assert [h["status"] for h in doc["status_history"]] == ["candidate", "rejected"]
    with pytest.raises(MLOpsError, match="cannot become 'deployed'"):
        reg.set_status(MODEL_NAME, 1, "deployed", reason="x")


def test_artifact_integrity(real_db):
    """A tampered or missing artifact is reported and never loaded."""
    reg = ModelRegistry(real_db)
    doc = _register(reg, "a", 0.5)
    assert reg.verify(doc) == []
    assert reg.load_artifact(doc, "weights") == b"w-a"
    file_id = doc["artifacts"]["weights"]["file_id"]
    from bson import ObjectId

    real_db["artifacts.chunks"].update_one({"files_id": ObjectId(file_id)}, {"$set": {"data": b"evil"}})
    assert any("sha256" in p for p in reg.verify(doc))
    with pytest.raises(IntegrityError, match="was not loaded"):
        reg.load_artifact(doc, "weights")
    real_db["artifacts.files"].delete_many({})
    real_db["artifacts.chunks"].delete_many({})
    with pytest.raises(IntegrityError, match="missing"):
        reg.load_artifact(doc, "weights")
    with pytest.raises(NotFoundError, match="no artifact 'nope'"):
        reg.load_artifact(doc, "nope")
