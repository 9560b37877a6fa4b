"""Child processes for tests/faults/test_gridfs_faults.py (run as ``python gridfs_harness.py <mode> ...``).

The fault hooks live here, in the child only; the code under test is unchanged:

* ``kill-upload URI DB BUCKET FILENAME N``: ``put_artifact`` of an 8 MiB
  artifact whose chunk insert writes the first ``N`` chunks and then the
  process SIGKILLs itself (before the files document exists).
* ``generate URI DB DATE HOME BARRIER_DIR``: ``generate_data`` for ``DATE``
  with 300 rows; two such children meet at a file barrier right before and
  right after their GridFS upload, so both uploads overlap and both
  clean-ups see both files; they meet again before deleting, so both
  delete the same older file at once. Every ``gridfs.errors.NoFile``
  raised by a delete is printed as ``NOFILE`` before it propagates.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

ARTIFACT_BYTES = 8 * 1024 * 1024


def artifact_data() -> bytes:
    """The 8 MiB artifact both the child and the test write (seeded, so identical)."""
    return random.Random(7).randbytes(ARTIFACT_BYTES)


def _db(uri: str, name: str):
    from pymongo import MongoClient

    from daily_mlops.storage.mongo import database

    return database(MongoClient(uri, tz_aware=True), name)


def kill_upload(uri: str, name: str, bucket: str, filename: str, n_chunks: int) -> None:
    from pymongo.synchronous.collection import Collection

    from daily_mlops.storage.artifacts import put_artifact

    original = Collection.insert_many

    def insert_many(self, documents, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == f"{bucket}.chunks":
            original(self, list(documents)[:n_chunks], *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, documents, *args, **kwargs)

    Collection.insert_many = insert_many  # type: ignore[method-assign]
    put_artifact(_db(uri, name), bucket, filename, artifact_data(), replace=True)
    print("upload finished without being killed", flush=True)


def _barrier(directory: Path, step: str, parties: int = 2, timeout: float = 60.0) -> None:
    (directory / f"{step}.{os.getpid()}").touch()
    deadline = time.monotonic() + timeout
    while len(list(directory.glob(f"{step}.*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {step!r}: the other writer never arrived")
        time.sleep(0.01)


def generate(uri: str, name: str, day: str, home: str, barrier_dir: str) -> None:
    import gridfs

    from daily_mlops.loop.data import generate_data
    from daily_mlops.settings import Settings

    barrier = Path(barrier_dir)
    upload, delete = gridfs.GridFSBucket.upload_from_stream_with_id, gridfs.GridFSBucket.delete

    def upload_together(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _barrier(barrier, "before-upload")
        upload(self, *args, **kwargs)
        _barrier(barrier, "after-upload")

    def delete_reporting(self, file_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        _barrier(barrier, "before-delete")
        try:
            return delete(self, file_id, *args, **kwargs)
        except gridfs.errors.NoFile:
            print(f"NOFILE {file_id}", flush=True)
            raise

    gridfs.GridFSBucket.upload_from_stream_with_id = upload_together  # type: ignore[method-assign]
    gridfs.GridFSBucket.delete = delete_reporting  # type: ignore[method-assign]
    settings = Settings(home=Path(home), daily_rows=300, _env_file=None)
    result = generate_data(settings, logical_date=dt.date.fromisoformat(day), db=_db(uri, name))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "kill-upload":
        kill_upload(*args[:4], int(args[4]))
    elif mode == "generate":
        generate(*args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
