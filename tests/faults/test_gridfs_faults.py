"""GridFS faults on the real server: killed and failed uploads leave no chunks, two runs of one day converge, doctor.

Rows 6 and 7 of the measured failures: an upload that dies before its files
document left its chunks forever; the same day generated twice at once
crashed one writer with ``gridfs.errors.NoFile`` and left two raw files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bson import Binary, ObjectId
from typer.testing import CliRunner

from daily_mlops.storage.artifacts import get_artifact, orphan_chunks, put_artifact
from daily_mlops.storage.doctor import check_storage
from daily_mlops.storage.mongo import ARTIFACTS_BUCKET, RAW_DATA_BUCKET, UPLOADS_JOURNAL

HARNESS = Path(__file__).with_name("gridfs_harness.py")
SRC = Path(__file__).resolve().parents[2] / "src"
FILENAME = "tabtransformer/kill-test/weights"
CHUNK = 255 * 1024  # pymongo's default GridFS chunk size (bytes)
KILL_AFTER = 10  # chunks written before the child SIGKILLs itself


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def _harness(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HARNESS), *args], env=_child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _orphans(db, bucket: str) -> int:
    return sum(g["chunks"] for g in orphan_chunks(db, bucket))


def _kill_an_upload(mongo_uri: str, db) -> None:
    child = _harness("kill-upload", mongo_uri, db.name, ARTIFACTS_BUCKET, FILENAME, str(KILL_AFTER))
    out, err = child.communicate(timeout=120)
    assert child.returncode == -9, f"the child was not SIGKILLed: rc={child.returncode}\n{out}\n{err}"


def _doctor(monkeypatch, tmp_path: Path, mongo_uri: str, db, *args: str):
    from daily_mlops.cli import app

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MLOPS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLOPS_MONGO_URI", mongo_uri)
    monkeypatch.setenv("MLOPS_MONGO_DB", db.name)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    return CliRunner().invoke(app, ["doctor", *args])


def test_killed_upload_leaves_orphans_that_the_rerun_removes(mongo_uri, real_db, tmp_path):
    """A writer SIGKILLed after 10 of 33 chunks leaves 10 orphans; doctor reports them; the rerun leaves zero."""
    from gridfs_harness import artifact_data

    _kill_an_upload(mongo_uri, real_db)
    before = orphan_chunks(real_db, ARTIFACTS_BUCKET)
    print(f"\nrow 6 killed: orphan chunks after the kill: {_orphans(real_db, ARTIFACTS_BUCKET)}")
    assert [(g["chunks"], g["bytes"], g["in_flight"]) for g in before] == [(KILL_AFTER, KILL_AFTER * CHUNK, False)]
    assert real_db[f"{ARTIFACTS_BUCKET}.files"].count_documents({}) == 0
    assert real_db[UPLOADS_JOURNAL].count_documents({"filename": FILENAME}) == 1

    report = check_storage(real_db, tmp_path / "deployed")
    assert not report.healthy
    assert [(f.check, f.subject) for f in report.problems if f.check == "orphan chunks"] == [
        ("orphan chunks", f"bucket {ARTIFACTS_BUCKET}")]
    assert f"{KILL_AFTER} chunks ({KILL_AFTER * CHUNK} bytes)" in report.problems[0].detail

    ref = put_artifact(real_db, ARTIFACTS_BUCKET, FILENAME, artifact_data(), replace=True)
    print(f"row 6 killed: orphan chunks after the rerun: {_orphans(real_db, ARTIFACTS_BUCKET)}")
    assert _orphans(real_db, ARTIFACTS_BUCKET) == 0
    assert real_db[UPLOADS_JOURNAL].count_documents({}) == 0
    assert real_db[f"{ARTIFACTS_BUCKET}.files"].count_documents({"filename": FILENAME}) == 1
    assert real_db[f"{ARTIFACTS_BUCKET}.chunks"].count_documents({}) == 33  # ceil(8 MiB / 255 KiB)
    assert get_artifact(real_db, ref) == artifact_data()
    assert check_storage(real_db, tmp_path / "deployed").healthy


def test_killed_upload_orphans_are_removed_by_doctor_repair(mongo_uri, real_db, tmp_path, monkeypatch):
    """`daily-mlops doctor` exits 1 naming the orphan chunks of a killed upload; `--repair` deletes them, exit 0."""
    _kill_an_upload(mongo_uri, real_db)
    assert _orphans(real_db, ARTIFACTS_BUCKET) == KILL_AFTER

    found = _doctor(monkeypatch, tmp_path, mongo_uri, real_db)
    assert found.exit_code == 1, found.output
    assert f"{KILL_AFTER} chunks ({KILL_AFTER * CHUNK} bytes)" in found.output
    assert "repairable with --repair" in found.output
    assert _orphans(real_db, ARTIFACTS_BUCKET) == KILL_AFTER  # a check alone deletes nothing

    repaired = _doctor(monkeypatch, tmp_path, mongo_uri, real_db, "--repair")
    print(f"\nrow 6 doctor: orphan chunks before --repair: {KILL_AFTER}, after: {_orphans(real_db, ARTIFACTS_BUCKET)}")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired" in repaired.output and "healthy" in repaired.output
    assert real_db[f"{ARTIFACTS_BUCKET}.chunks"].count_documents({}) == 0
    assert real_db[UPLOADS_JOURNAL].count_documents({}) == 0


def test_failed_files_insert_leaves_no_chunks(mongo_uri, real_db):
    """The files-document insert fails (SecantusDB failCommand) after the chunks were written: none remain."""
    from pymongo import MongoClient, monitoring
    from pymongo.errors import OperationFailure

    from daily_mlops.storage.mongo import database

    class Inserts(monitoring.CommandListener):
        def __init__(self) -> None:
            self.names: dict[int, str] = {}
            self.outcome: list[tuple[str, str]] = []

        def started(self, event):  # type: ignore[no-untyped-def,override]
            if event.command_name == "insert":
                self.names[event.request_id] = event.command["insert"]

        def succeeded(self, event):  # type: ignore[no-untyped-def]
            if event.request_id in self.names:
                self.outcome.append((self.names[event.request_id], "ok"))

        def failed(self, event):  # type: ignore[no-untyped-def]
            if event.request_id in self.names:
                self.outcome.append((self.names[event.request_id], "failed"))

    inserts = Inserts()
    app_name = f"gridfs-fault-{real_db.name}"
    client = MongoClient(mongo_uri, tz_aware=True, appname=app_name, event_listeners=[inserts])
    db = database(client, real_db.name)
    admin = real_db.client.admin
    # inserts of this client: 1 journal entry, 2 chunks (one insert_many), 3 the files document -> fail the third
    admin.command({"configureFailPoint": "failCommand", "mode": {"skip": 2, "times": 1},
                   "data": {"failCommands": ["insert"], "errorCode": 8, "appName": app_name}})
    try:
        with pytest.raises(OperationFailure, match="failCommand"):
            put_artifact(db, RAW_DATA_BUCKET, "batch-2026-11-01.csv", os.urandom(1024 * 1024), replace=True)
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    assert inserts.outcome == [(UPLOADS_JOURNAL, "ok"), (f"{RAW_DATA_BUCKET}.chunks", "ok"),
                               (f"{RAW_DATA_BUCKET}.files", "failed")]
    print(f"\nrow 6 failed insert: chunks left: {real_db[f'{RAW_DATA_BUCKET}.chunks'].count_documents({})}")
    assert real_db[f"{RAW_DATA_BUCKET}.chunks"].count_documents({}) == 0
    assert real_db[f"{RAW_DATA_BUCKET}.files"].count_documents({}) == 0
    assert real_db[UPLOADS_JOURNAL].count_documents({}) == 0
    ref = put_artifact(db, RAW_DATA_BUCKET, "batch-2026-11-01.csv", b"a,b\n1,2\n", replace=True)
    assert get_artifact(real_db, ref) == b"a,b\n1,2\n"
    client.close()


def _register_synthesizer(settings, db) -> None:
    """Register the synthesizer with loop/bootstrap.py's own function; generate_data needs nothing else."""
    from daily_mlops.loop.bootstrap import register_synthesizer
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.storage.registry import ModelRegistry

    reference = read_csv(settings.require_reference_data())
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    register_synthesizer(ModelRegistry(db), validate_batch(reference, schema), schema, seed=settings.seed)


def test_two_concurrent_runs_of_one_day_converge(mongo_uri, real_db, settings, tmp_path):
    """Two generate_data processes, one date, uploads overlapping: both exit 0, one raw file, metadata points at it."""
    from daily_mlops.storage.batches import load_raw_batch

    _register_synthesizer(settings, real_db)
    day = "2026-11-01"
    (tmp_path / "barrier").mkdir()
    children = [_harness("generate", mongo_uri, real_db.name, day, str(tmp_path / f"home{i}"),
                         str(tmp_path / "barrier"))
                for i in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, f"a writer failed:\n{out}\n{err[-3000:]}"
    results = [json.loads(line[7:]) for out, _ in outputs for line in out.splitlines() if line.startswith("RESULT ")]
    nofile = sum(out.count("NOFILE") for out, _ in outputs)
    files = list(real_db[f"{RAW_DATA_BUCKET}.files"].find({"filename": f"batch-{day}.parquet"}))
    metas = list(real_db.processing_metadata.find({"batch_id": f"batch-{day}"}))
    print(f"\nrow 7: exit codes {[c.returncode for c in children]}, NoFile raised and tolerated {nofile}x, "
          f"raw files {len(files)}, processing_metadata documents {len(metas)}, "
          f"orphan chunks {_orphans(real_db, RAW_DATA_BUCKET)}")
    assert len(results) == 2 and results[0]["raw_sha256"] == results[1]["raw_sha256"]
    assert nofile >= 1  # both cleanups saw both files: one found the older one already deleted
    assert len(files) == 1 and len(metas) == 1
    assert metas[0]["raw_file"]["file_id"] == str(files[0]["_id"])
    assert metas[0]["raw_file"]["sha256"] == results[0]["raw_sha256"] == files[0]["metadata"]["sha256"]
    assert len(load_raw_batch(real_db, metas[0]["raw_file"])) == 300  # verifies the sha256 before parsing
    assert _orphans(real_db, RAW_DATA_BUCKET) == 0 and real_db[UPLOADS_JOURNAL].count_documents({}) == 0


def test_doctor_reports_each_problem_and_repairs_only_the_orphan(mongo_uri, real_db, tmp_path, monkeypatch):
    """Healthy: exit 0. Orphan chunk, tampered chunk, deleted artifact, stale deployment: each reported, exit 1;
    --repair deletes the orphan chunk only and still exits 1."""
    import gridfs
    import pandas as pd

    from daily_mlops.storage.batches import record_raw_batch, store_raw_batch
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    registry = ModelRegistry(real_db)
    intact = registry.register(MODEL_NAME, run_key="intact", artifacts={"weights": b"w" * 5000}, status="approved")
    day = dt.date(2026, 11, 1)
    store_raw_batch(real_db, pd.DataFrame({"a": [1, 2], "creditability": ["good", "bad"]}), logical_date=day)
    record_raw_batch(real_db, {"status": "raw", "n_rows": 2}, logical_date=day)
    healthy = _doctor(monkeypatch, tmp_path, mongo_uri, real_db)
    assert healthy.exit_code == 0, healthy.output
    assert "healthy" in healthy.output

    tampered = registry.register(MODEL_NAME, run_key="tampered", artifacts={"weights": b"t" * 5000}, status="approved")
    missing = registry.register(MODEL_NAME, run_key="missing", artifacts={"weights": b"m" * 5000}, status="approved")
    chunks = real_db[f"{ARTIFACTS_BUCKET}.chunks"]
    tampered_id = ObjectId(tampered["artifacts"]["weights"]["file_id"])
    chunks.update_one({"files_id": tampered_id, "n": 0}, {"$set": {"data": Binary(b"T" * 5000)}})
    bucket = gridfs.GridFSBucket(real_db, bucket_name=ARTIFACTS_BUCKET)
    bucket.delete(ObjectId(missing["artifacts"]["weights"]["file_id"]))
    orphan_id = ObjectId()
    chunks.insert_one({"files_id": orphan_id, "n": 0, "data": Binary(b"o" * 100)})
    registry.set_status(MODEL_NAME, intact["model_version"], "deployed", reason="test: nothing in the directory")
    n_versions = real_db.model_metadata.count_documents({})

    found = _doctor(monkeypatch, tmp_path, mongo_uri, real_db)
    assert found.exit_code == 1, found.output
    assert found.output.count("needs attention") == 3 and found.output.count("repairable with --repair") == 1
    assert "4 problem(s) remain" in found.output
    report = check_storage(real_db, tmp_path / "models" / "deployed")
    assert sorted((f.check, f.subject.split(" (")[0]) for f in report.problems) == [
        ("deployment", str(tmp_path / "models" / "deployed")),
        ("missing artifact", f"{MODEL_NAME} v{missing['model_version']} weights"),
        ("orphan chunks", f"bucket {ARTIFACTS_BUCKET}"),
        ("sha256 mismatch", f"{MODEL_NAME} v{tampered['model_version']} weights"),
    ]
    details = {f.check: f.detail for f in report.problems}
    assert details["orphan chunks"].startswith("1 chunks (100 bytes) of 1 upload(s)")
    assert "is missing from GridFS bucket 'artifacts'" in details["missing artifact"]
    assert f"but {tampered['sha256']['weights']} was recorded" in details["sha256 mismatch"]
    assert "deployed tabtransformer version is 1, the directory holds no valid model" in details["deployment"]

    repaired = _doctor(monkeypatch, tmp_path, mongo_uri, real_db, "--repair")
    assert repaired.exit_code == 1, repaired.output
    assert "repaired" in repaired.output and "3 problem(s) remain" in repaired.output
    assert chunks.count_documents({"files_id": orphan_id}) == 0
    assert chunks.count_documents({"files_id": tampered_id}) == 1  # referenced artifacts are never deleted
    assert real_db.model_metadata.count_documents({}) == n_versions
    remaining = sorted(f.check for f in check_storage(real_db, tmp_path / "models" / "deployed").problems)
    print(f"\ndoctor: problems before --repair 4, remaining after: {remaining}")
    assert remaining == ["deployment", "missing artifact", "sha256 mismatch"]
