"""The one way to store an artifact: GridFS files with a recorded sha256, and no orphan chunks.

Every artifact (a raw daily batch, a processed split, model weights, a fitted
preprocessor, the fitted synthesizer) is written with :func:`put_artifact`
(from bytes, or streamed from a binary file), which returns an
:class:`ArtifactRef`: a small JSON-able record of bucket, file id, filename,
sha256 and size. Whoever keeps the reference (the registry, the processing
metadata) keeps the checksum; :func:`get_artifact` reads the bytes back
(:func:`download_artifact` streams them into a file) and refuses them unless
their sha256 matches the recorded one. Nothing loaded from storage is
deserialised without that check.

No orphan chunks
----------------
A GridFS upload writes its chunks first and its ``files`` document last
(GridFS specification), so a writer that dies in between leaves chunks
that no file owns. Chunks carry only ``files_id``, not the filename, so
each upload is announced first in the journal collection
``gridfs_uploads``::

    {_id: <file id>, bucket, filename, started_at, host, pid}

1. :func:`put_artifact` inserts that entry, uploads with that explicit file
   id (``GridFSBucket.upload_from_stream_with_id``), then deletes the entry.
2. When the upload raises (a failed insert, a lost connection, an
   interrupt), the chunks and any ``files`` document of that id are deleted
   before the error propagates; if even that fails, the entry stays.
3. When the writer is killed (SIGKILL, OOM, a lost worker), the entry stays.
   The next :func:`put_artifact` of the same bucket and filename, and
   ``daily-mlops doctor --repair``, delete the chunks of every *abandoned*
   entry whose ``files`` document is missing, then the entry.

An entry is abandoned when its writer ran on this host and its pid no
longer exists, or when it is older than :data:`STALE_UPLOAD_SECONDS` (a
writer on another host cannot be probed; an upload takes seconds, not an
hour). An entry that may still be live is never touched, so a concurrent
upload of the same filename keeps its chunks. A pid reused by another
process only delays the cleanup to the age limit.

Two writers of one filename
---------------------------
With ``replace=True`` the newest file of the filename survives, decided the
same way by every writer: highest ``uploadDate``, ties by highest ``_id``.
Each writer, after its own upload, deletes every other file of that name
(tolerating :class:`gridfs.errors.NoFile` when the other writer deleted it
first) and returns the survivor's reference, which may be the other
writer's upload. A file is only deleted by a writer that has seen a newer
one, so the newest file is never deleted.

Source: GridFS specification, pymongo ``gridfs.GridFSBucket``
(https://pymongo.readthedocs.io/en/stable/api/gridfs/).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import socket
from typing import IO, TYPE_CHECKING, Any, TypedDict

from daily_mlops.checksums import check_sha256, sha256_hex
from daily_mlops.errors import IntegrityError
from daily_mlops.storage.mongo import UPLOADS_JOURNAL

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = [
    "STALE_UPLOAD_SECONDS", "ArtifactRef", "OrphanChunks", "abandoned_uploads", "check_sha256", "download_artifact",
    "get_artifact",
    "keep_newest", "newest_file", "orphan_chunks", "put_artifact", "remove_abandoned_uploads",
    "remove_orphan_chunks", "remove_other_files", "sha256_hex", "verify_artifact",
]

log = logging.getLogger(__name__)

#: Age (seconds) after which a journalled upload counts as abandoned even if its writer cannot be probed.
STALE_UPLOAD_SECONDS = 3600.0
#: Bytes read at a time when hashing or copying a streamed artifact.
_STREAM_BLOCK = 1 << 20


class ArtifactRef(TypedDict):
    """Where an artifact lives and what its bytes must hash to.

    Keys: ``bucket`` (GridFS bucket name), ``file_id`` (str of the ObjectId),
    ``filename``, ``sha256`` (hex digest of the bytes), ``size`` (bytes).
    """

    bucket: str
    file_id: str
    filename: str
    sha256: str
    size: int


class OrphanChunks(TypedDict):
    """Chunks of one ``files_id`` that has no ``files`` document.

    Keys: ``files_id``, ``chunks`` (count), ``bytes`` (payload bytes),
    ``in_flight`` (true when a journalled upload of that id may still be running).
    """

    files_id: Any
    chunks: int
    bytes: int
    in_flight: bool


def put_artifact(
    db: Database, bucket: str, filename: str, data: bytes | IO[bytes], *, metadata: dict[str, Any] | None = None,
    replace: bool = False,
) -> ArtifactRef:
    """Upload ``data`` to GridFS bucket ``bucket`` and return its reference.

    Before uploading, abandoned uploads of the same ``bucket``/``filename``
    are removed (:func:`remove_abandoned_uploads`). The upload is journalled
    and leaves no chunks behind when it fails (module docstring).

    Parameters
    ----------
    data : bytes or binary file
        The artifact; its sha256 and size (bytes) go into the file's metadata.
        A file (seekable, e.g. a temporary file) is hashed from its start,
        rewound and streamed to GridFS, so the artifact never has to fit in
        memory.
    replace : bool
        When true, keep only the newest file named ``filename`` once this one
        is written (:func:`keep_newest`), so a rerun converges to one file and
        a crash never leaves none. The returned reference is then the
        survivor's, possibly a concurrent writer's upload of the same name.

    Raises
    ------
    pymongo.errors.PyMongoError
        When the upload fails; its chunks were deleted first.
    """
    import gridfs
    from bson import ObjectId

    if isinstance(data, bytes | bytearray | memoryview):
        digest, size = sha256_hex(bytes(data)), len(data)
    else:
        digest, size = _hash_file(data)
    fs = gridfs.GridFSBucket(db, bucket_name=bucket)
    meta = {**(metadata or {}), "sha256": digest, "size": size}
    remove_abandoned_uploads(db, bucket=bucket, filename=filename)
    file_id = ObjectId()
    db[UPLOADS_JOURNAL].insert_one({
        "_id": file_id, "bucket": bucket, "filename": filename, "started_at": _now(),
        "host": socket.gethostname(), "pid": os.getpid(),
    })
    try:
        fs.upload_from_stream_with_id(file_id, filename, data, metadata=meta)
    except BaseException:
        _discard_upload(db, bucket, file_id)
        raise
    db[UPLOADS_JOURNAL].delete_one({"_id": file_id})
    ref = ArtifactRef(bucket=bucket, file_id=str(file_id), filename=filename, sha256=digest, size=size)
    if replace:
        return keep_newest(db, bucket, filename) or ref
    return ref


def _hash_file(file: IO[bytes]) -> tuple[str, int]:
    """sha256 hex digest and size (bytes) of ``file`` from its start; leaves it rewound to the start."""
    file.seek(0)
    digest, size = hashlib.sha256(), 0
    while block := file.read(_STREAM_BLOCK):
        digest.update(block)
        size += len(block)
    file.seek(0)
    return digest.hexdigest(), size


def _discard_upload(db: Database, bucket: str, file_id: Any) -> None:
    """Delete what a failed upload wrote (files document, chunks), then its journal entry."""
    from pymongo.errors import PyMongoError

    try:
        db[f"{bucket}.files"].delete_one({"_id": file_id})
        db[f"{bucket}.chunks"].delete_many({"files_id": file_id})
        db[UPLOADS_JOURNAL].delete_one({"_id": file_id})
    except PyMongoError as exc:
        log.warning("could not remove the chunks of failed upload %s in bucket %r (%s); the next write of "
                    "that filename or `daily-mlops doctor --repair` removes them", file_id, bucket, exc)


def _ref_of(bucket: str, doc: dict[str, Any]) -> ArtifactRef:
    meta = doc.get("metadata") or {}
    return ArtifactRef(bucket=bucket, file_id=str(doc["_id"]), filename=doc["filename"],
                       sha256=str(meta.get("sha256", "")), size=int(meta.get("size", doc.get("length", 0))))


def newest_file(db: Database, bucket: str, filename: str) -> ArtifactRef | None:
    """The reference of the newest file named ``filename`` (highest ``uploadDate``, then ``_id``), or ``None``.

    The sha256 comes from the file's metadata as written by :func:`put_artifact`.
    """
    doc = db[f"{bucket}.files"].find_one(
        {"filename": filename}, {"filename": 1, "length": 1, "metadata": 1},
        sort=[("uploadDate", -1), ("_id", -1)],
    )
    return None if doc is None else _ref_of(bucket, doc)


def remove_other_files(db: Database, bucket: str, filename: str, *, keep: Any) -> int:
    """Delete every file named ``filename`` except the one with id ``keep``; return how many this call deleted.

    A file another writer deletes at the same moment is skipped
    (:class:`gridfs.errors.NoFile`), so concurrent calls do not fail.
    """
    import gridfs
    from bson import ObjectId

    keep_id = ObjectId(keep) if isinstance(keep, str) and ObjectId.is_valid(keep) else keep
    fs = gridfs.GridFSBucket(db, bucket_name=bucket)
    deleted = 0
    for old in db[f"{bucket}.files"].find({"filename": filename, "_id": {"$ne": keep_id}}, {"_id": 1}):
        try:
            fs.delete(old["_id"])
            deleted += 1
        except gridfs.errors.NoFile:  # the other writer deleted it first (its chunks are gone too)
            pass
    return deleted


def keep_newest(db: Database, bucket: str, filename: str) -> ArtifactRef | None:
    """Delete all but the newest file named ``filename``; return the survivor's reference (``None``: no file)."""
    survivor = newest_file(db, bucket, filename)
    if survivor is not None:
        remove_other_files(db, bucket, filename, keep=survivor["file_id"])
    return survivor


def get_artifact(db: Database, ref: ArtifactRef | dict[str, Any]) -> bytes:
    """Read an artifact and verify it against the sha256 recorded in ``ref``.

    Raises
    ------
    IntegrityError
        When the file is missing from its bucket or its bytes do not hash to
        ``ref["sha256"]``. The message names the file and both digests.
    """
    buffer = io.BytesIO()
    download_artifact(db, ref, buffer)
    return buffer.getvalue()


def download_artifact(db: Database, ref: ArtifactRef | dict[str, Any], file: IO[bytes]) -> int:
    """Stream an artifact into the binary ``file``, hashing as it goes; verify the sha256 recorded in ``ref``.

    Memory stays at one GridFS chunk whatever the artifact's size. The bytes
    are written before the digest is known: on an error, discard ``file``.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    IntegrityError
        When the file is missing from its bucket or its bytes do not hash to
        ``ref["sha256"]``. The message names the file and both digests.
    """
    import gridfs
    from bson import ObjectId

    fs = gridfs.GridFSBucket(db, bucket_name=ref["bucket"])
    digest, size = hashlib.sha256(), 0
    try:
        with fs.open_download_stream(ObjectId(ref["file_id"])) as stream:
            while block := stream.readchunk():
                digest.update(block)
                file.write(block)
                size += len(block)
    except gridfs.errors.NoFile:
        raise IntegrityError(
            f"artifact {ref['filename']!r} (id {ref['file_id']}) is missing from GridFS bucket "
            f"{ref['bucket']!r}; it cannot be loaded. Re-create it (e.g. rerun the task or `daily-mlops bootstrap`)."
        ) from None
    except gridfs.errors.CorruptGridFile as exc:
        raise IntegrityError(
            f"artifact {ref['filename']!r} (id {ref['file_id']}) in bucket {ref['bucket']!r} is corrupt ({exc}); "
            f"its sha256 cannot match the recorded {ref['sha256']} and it was not loaded. Re-create it from its source."
        ) from None
    actual = digest.hexdigest()
    if actual != ref["sha256"]:
        raise IntegrityError(
            f"artifact {ref['filename']!r} (id {ref['file_id']}) in bucket {ref['bucket']!r} has sha256 "
            f"{actual}, but {ref['sha256']} was recorded; it was not loaded. The stored file was altered or "
            "corrupted: re-create it from its source."
        )
    return size


def verify_artifact(db: Database, ref: ArtifactRef | dict[str, Any]) -> str | None:
    """Return ``None`` when the artifact is present and intact, else the problem as text."""
    try:
        get_artifact(db, ref)
    except IntegrityError as exc:
        return str(exc)
    return None


# -- the upload journal -------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the pid exists, owned by someone else
        return True
    return True


def _abandoned(entry: dict[str, Any], *, now: dt.datetime, stale_after: float) -> bool:
    started = entry.get("started_at")
    if isinstance(started, dt.datetime):
        if started.tzinfo is None:  # a client without tz_aware=True reads naive UTC
            started = started.replace(tzinfo=dt.UTC)
        if (now - started).total_seconds() > stale_after:
            return True
    if entry.get("host") != socket.gethostname() or not isinstance(entry.get("pid"), int):
        return False
    return not _pid_alive(entry["pid"])


def abandoned_uploads(
    db: Database, *, bucket: str | None = None, filename: str | None = None,
    stale_after: float = STALE_UPLOAD_SECONDS,
) -> list[dict[str, Any]]:
    """Journal entries (optionally of one bucket/filename) whose writer is gone or older than ``stale_after``
    seconds."""
    query: dict[str, Any] = {}
    if bucket is not None:
        query["bucket"] = bucket
    if filename is not None:
        query["filename"] = filename
    now = _now()
    return [e for e in db[UPLOADS_JOURNAL].find(query) if _abandoned(e, now=now, stale_after=stale_after)]


def remove_abandoned_uploads(
    db: Database, *, bucket: str | None = None, filename: str | None = None,
    stale_after: float = STALE_UPLOAD_SECONDS,
) -> dict[str, int]:
    """Delete the chunks of abandoned uploads that never got a ``files`` document, then their journal entries.

    A complete file (its ``files`` document exists) is kept; only its stale
    entry goes. Returns ``{"uploads": entries removed, "chunks": chunks deleted}``.
    """
    removed = {"uploads": 0, "chunks": 0}
    for entry in abandoned_uploads(db, bucket=bucket, filename=filename, stale_after=stale_after):
        name = entry["bucket"]
        if db[f"{name}.files"].find_one({"_id": entry["_id"]}, {"_id": 1}) is None:
            removed["chunks"] += db[f"{name}.chunks"].delete_many({"files_id": entry["_id"]}).deleted_count
        removed["uploads"] += db[UPLOADS_JOURNAL].delete_one({"_id": entry["_id"]}).deleted_count
    if removed["uploads"]:
        log.info("removed %d abandoned upload(s) (%d orphan chunks)", removed["uploads"], removed["chunks"])
    return removed


def orphan_chunks(db: Database, bucket: str, *, stale_after: float = STALE_UPLOAD_SECONDS) -> list[OrphanChunks]:
    """Chunk groups of ``bucket`` whose ``files_id`` has no ``files`` document, one entry per id.

    ``in_flight`` marks a group whose journal entry is not abandoned: an
    upload that may still finish. The ``files`` documents are read again
    after the journal, so an upload that completes meanwhile is not listed.
    Groups without a journal entry were not written by :func:`put_artifact`
    in progress (it journals before the first chunk): they are orphans.
    """
    files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
    ids = chunks.distinct("files_id")
    present = {d["_id"] for d in files.find({"_id": {"$in": ids}}, {"_id": 1})} if ids else set()
    candidates = [i for i in ids if i not in present]
    if not candidates:
        return []
    journal = {e["_id"]: e for e in db[UPLOADS_JOURNAL].find({"_id": {"$in": candidates}})}
    completed = {d["_id"] for d in files.find({"_id": {"$in": candidates}}, {"_id": 1})}
    orphans = [i for i in candidates if i not in completed]
    now = _now()
    groups = chunks.aggregate([
        {"$match": {"files_id": {"$in": orphans}}},
        {"$group": {"_id": "$files_id", "chunks": {"$sum": 1}, "bytes": {"$sum": {"$binarySize": "$data"}}}},
    ])
    found = [
        OrphanChunks(files_id=g["_id"], chunks=int(g["chunks"]), bytes=int(g["bytes"]),
                     in_flight=g["_id"] in journal and not _abandoned(journal[g["_id"]], now=now,
                                                                      stale_after=stale_after))
        for g in groups
    ]
    return sorted(found, key=lambda g: str(g["files_id"]))


def remove_orphan_chunks(db: Database, bucket: str, *, stale_after: float = STALE_UPLOAD_SECONDS) -> int:
    """Delete the orphan chunks of ``bucket`` that are not in flight (and their journal entries); return the count."""
    ids = [g["files_id"] for g in orphan_chunks(db, bucket, stale_after=stale_after) if not g["in_flight"]]
    if not ids:
        return 0
    deleted = db[f"{bucket}.chunks"].delete_many({"files_id": {"$in": ids}}).deleted_count
    db[UPLOADS_JOURNAL].delete_many({"_id": {"$in": ids}, "bucket": bucket})
    return int(deleted)
