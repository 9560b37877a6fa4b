"""The one way to store an artifact: GridFS files with a recorded sha256.

Every artifact (a raw daily batch, model weights, a fitted preprocessor, the
fitted synthesizer) is written with :func:`put_artifact`, which returns an
:class:`ArtifactRef`: a small JSON-able record of bucket, file id, filename,
sha256 and size. Whoever keeps the reference (the registry, the processing
metadata) keeps the checksum; :func:`get_artifact` reads the bytes back and
refuses them unless their sha256 matches the recorded one. Nothing loaded
from storage is deserialised without that check.

Source: GridFS specification, pymongo ``gridfs.GridFSBucket``
(https://pymongo.readthedocs.io/en/stable/api/gridfs/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from daily_mlops.checksums import check_sha256, sha256_hex
from daily_mlops.errors import IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = [
    "ArtifactRef", "check_sha256", "get_artifact", "put_artifact", "sha256_hex", "verify_artifact",
]


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


def put_artifact(
    db: "Database", bucket: str, filename: str, data: bytes, *, metadata: dict[str, Any] | None = None,
    replace: bool = False,
) -> ArtifactRef:
    """Upload ``data`` to GridFS bucket ``bucket`` and return its reference.

    Parameters
    ----------
    replace
        When true, older files with the same ``filename`` are deleted *after*
        the new one is written, so a rerun of the same logical date converges
        to one file and a crash never leaves none.
    """
    import gridfs

    digest = sha256_hex(data)
    fs = gridfs.GridFSBucket(db, bucket_name=bucket)
    meta = {**(metadata or {}), "sha256": digest, "size": len(data)}
    file_id = fs.upload_from_stream(filename, data, metadata=meta)
    if replace:
        for old in db[f"{bucket}.files"].find({"filename": filename, "_id": {"$ne": file_id}}, {"_id": 1}):
            fs.delete(old["_id"])
    return ArtifactRef(bucket=bucket, file_id=str(file_id), filename=filename, sha256=digest, size=len(data))


def get_artifact(db: "Database", ref: ArtifactRef | dict[str, Any]) -> bytes:
    """Read an artifact and verify it against the sha256 recorded in ``ref``.

    Raises
    ------
    IntegrityError
        When the file is missing from its bucket or its bytes do not hash to
        ``ref["sha256"]``. The message names the file and both digests.
    """
    import gridfs
    from bson import ObjectId

    fs = gridfs.GridFSBucket(db, bucket_name=ref["bucket"])
    try:
        data = fs.open_download_stream(ObjectId(ref["file_id"])).read()
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
    actual = sha256_hex(data)
    if actual != ref["sha256"]:
        raise IntegrityError(
            f"artifact {ref['filename']!r} (id {ref['file_id']}) in bucket {ref['bucket']!r} has sha256 "
            f"{actual}, but {ref['sha256']} was recorded; it was not loaded. The stored file was altered or "
            "corrupted: re-create it from its source."
        )
    return data


def verify_artifact(db: "Database", ref: ArtifactRef | dict[str, Any]) -> str | None:
    """Return ``None`` when the artifact is present and intact, else the problem as text."""
    try:
        get_artifact(db, ref)
    except IntegrityError as exc:
        return str(exc)
    return None

