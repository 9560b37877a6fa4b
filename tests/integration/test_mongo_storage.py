"""Storage against a real MongoDB-wire server (SecantusDB): GridFS, checksums, indexes."""

from __future__ import annotations

import os

import pytest

from daily_mlops.errors import IntegrityError
from daily_mlops.storage.artifacts import get_artifact, put_artifact
from daily_mlops.storage.mongo import BUCKETS, INDEXES, ensure_schema
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = pytest.mark.integration


def test_gridfs_round_trip_of_a_large_artifact(real_db):
    """A 3 MB artifact comes back byte for byte with its recorded sha256."""
    data = os.urandom(3 * 1024 * 1024)
    ref = put_artifact(real_db, "raw_data", "batch-2026-01-01.csv", data, metadata={"logical_date": "2026-01-01"})
    assert ref["size"] == len(data)
    assert get_artifact(real_db, ref) == data


def test_an_artifact_streamed_from_a_file_equals_its_bytes(real_db, tmp_path):
    """put_artifact of an open file records the sha256 and size of its bytes; download_artifact streams it back."""
    import io

    from daily_mlops.storage.artifacts import download_artifact

    data = os.urandom(2 * 1024 * 1024 + 17)
    (tmp_path / "blob").write_bytes(data)
    with (tmp_path / "blob").open("rb") as file:
        ref = put_artifact(real_db, "processed_data", "blob.parquet", file)
    assert ref["sha256"] == put_artifact(real_db, "artifacts", "blob", data)["sha256"] and ref["size"] == len(data)
    sink = io.BytesIO()
    assert download_artifact(real_db, ref, sink) == len(data) and sink.getvalue() == data


def test_replace_keeps_one_file_per_name(real_db):
    """Re-putting with replace=True leaves exactly one file under that name."""
    put_artifact(real_db, "raw_data", "batch-x.csv", b"one", replace=True)
    ref = put_artifact(real_db, "raw_data", "batch-x.csv", b"two", replace=True)
    assert real_db["raw_data.files"].count_documents({"filename": "batch-x.csv"}) == 1
    assert get_artifact(real_db, ref) == b"two"


def test_sha256_mismatch_is_detected(real_db):
    """Bytes altered in GridFS after the checksum was recorded are refused."""
    ref = put_artifact(real_db, "artifacts", "w.pth", b"weights" * 100)
    real_db["artifacts.chunks"].update_many({}, {"$set": {"data": b"tampered"}})
    with pytest.raises(IntegrityError, match=ref["sha256"]):
        get_artifact(real_db, ref)


def test_registry_reports_a_tampered_version(real_db):
    """The registry's verify() names the sha256 problem of a tampered version."""
    reg = ModelRegistry(real_db)
    doc = reg.register(MODEL_NAME, run_key="k", artifacts={"weights": b"abc" * 1000})
    assert reg.verify(doc) == []
    real_db["artifacts.chunks"].update_many({}, {"$set": {"data": b"x"}})
    problems = reg.verify(doc)
    assert len(problems) == 1 and "sha256" in problems[0]


def test_index_creation_is_idempotent(real_db):
    """ensure_schema twice leaves the same indexes, all collections and the GridFS buckets' files/chunks."""
    first = {name: real_db[name].index_information() for name, _, _ in INDEXES}
    ensure_schema(real_db)
    second = {name: real_db[name].index_information() for name, _, _ in INDEXES}
    assert first == second
    assert "model_name_1_run_key_1" in second["model_metadata"]
    assert second["model_metadata"]["model_name_1_run_key_1"].get("unique") is True
    names = real_db.list_collection_names()
    for name in ("alerts", "deployment_events", "processing_metadata", "notifications"):
        assert name in names
    for bucket in BUCKETS:
        assert f"{bucket}.files" in names and f"{bucket}.chunks" in names
    assert "processed_data" not in names  # the bucket replaced the per-row collection
