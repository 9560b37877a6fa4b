"""Daily batches in MongoDB: the raw CSV in GridFS, processed rows, processing metadata.

Storage contract (one logical date = one batch, ``batch_id = "batch-YYYY-MM-DD"``):

* GridFS bucket ``raw_data``: ``<batch_id>.csv``, the synthetic rows exactly as
  sampled (CSV, UTF-8), with ``logical_date``, ``n_rows`` and ``sha256`` in its
  metadata. A rerun replaces the file; when two runs of one day write at
  once, the newest file survives (:func:`daily_mlops.storage.artifacts.keep_newest`)
  and :func:`record_raw_batch` points ``processing_metadata`` at it.
* ``processed_data``: one document per row ``{batch_id, logical_date, row,
  split, y, x_cat, x_num}``; ``x_cat`` are category indices (0 = unknown),
  ``x_num`` scaled numeric features. A rerun deletes the batch's rows first.
* ``processing_metadata``: one document per batch (replaced on rerun) with the
  raw file reference (and its sha256), split sizes, class balance and the
  preprocessor version used.

Only this module reads and writes those three places.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from daily_mlops.storage.artifacts import ArtifactRef, get_artifact, newest_file, put_artifact
from daily_mlops.storage.mongo import RAW_DATA_BUCKET
from daily_mlops.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pymongo.database import Database

    from daily_mlops.ml.encoded import EncodedBatch

__all__ = [
    "batch_id_for",
    "load_processing_metadata",
    "load_raw_batch",
    "load_split",
    "raw_batch_file",
    "record_raw_batch",
    "split_counts",
    "store_processed_batch",
    "store_processing_metadata",
    "store_raw_batch",
]

_INSERT_CHUNK = 2_000


def batch_id_for(logical_date: dt.date) -> str:
    """The batch id of a logical date, e.g. ``batch-2026-11-20``."""
    return f"batch-{logical_date.isoformat()}"


def store_raw_batch(db: "Database", frame: "pd.DataFrame", *, logical_date: dt.date) -> ArtifactRef:
    """Write a day's raw batch as CSV to the ``raw_data`` bucket, replacing that day's file.

    Returns the reference of the day's surviving file: this upload, or the
    newer upload of a concurrent run of the same day (same seed and date,
    same bytes).
    """
    data = frame.to_csv(index=False).encode("utf-8")
    return put_artifact(
        db, RAW_DATA_BUCKET, f"{batch_id_for(logical_date)}.csv", data,
        metadata={"logical_date": logical_date.isoformat(), "n_rows": int(len(frame)), "format": "csv"},
        replace=True,
    )


def raw_batch_file(db: "Database", logical_date: dt.date) -> ArtifactRef | None:
    """The reference of the day's raw file in ``raw_data`` (the newest of that name), or ``None``."""
    return newest_file(db, RAW_DATA_BUCKET, f"{batch_id_for(logical_date)}.csv")


def record_raw_batch(db: "Database", document: dict[str, Any], *, logical_date: dt.date) -> dict[str, Any]:
    """Write the day's ``processing_metadata`` with ``raw_file`` = the day's surviving raw file; return it.

    After the write the survivor is read again; when a concurrent run of the
    same day replaced the file meanwhile, the document is rewritten to point
    at the new survivor. The last writer therefore leaves a reference that
    matches the file that stays.

    Raises
    ------
    IntegrityError
        When the day has no raw file (call :func:`store_raw_batch` first) or
        the file keeps changing (more than 10 rewrites).
    """
    ref = raw_batch_file(db, logical_date)
    for _ in range(10):
        if ref is None:
            raise IntegrityError(
                f"{batch_id_for(logical_date)}.csv is missing from GridFS bucket {RAW_DATA_BUCKET!r}; "
                "rerun generate_data for this logical date"
            )
        doc = store_processing_metadata(db, {**document, "raw_file": ref}, logical_date=logical_date)
        survivor = raw_batch_file(db, logical_date)
        if survivor == ref:
            return doc
        ref = survivor
    raise IntegrityError(
        f"{batch_id_for(logical_date)}.csv kept changing while its metadata was written; rerun the task"
    )


def load_raw_batch(db: "Database", ref: ArtifactRef | dict[str, Any]) -> "pd.DataFrame":
    """Read a raw batch back, verifying its sha256 first.

    Raises
    ------
    IntegrityError
        When the file is missing or altered.
    """
    import pandas as pd

    return pd.read_csv(io.BytesIO(get_artifact(db, ref)))


def store_processed_batch(
    db: "Database", encoded: "EncodedBatch", splits: dict[str, np.ndarray], *, logical_date: dt.date
) -> dict[str, int]:
    """Replace the ``processed_data`` rows of ``logical_date``; return rows written per split.

    Parameters
    ----------
    encoded : EncodedBatch
        ``x_cat`` (n, n_cat) int64, ``x_num`` (n, n_num) float32, ``y`` (n,) int64.
    splits : dict of str to ndarray of int
        Row indices per split name (``pretrain``, ``finetune``, ``test``).
    """
    batch_id = batch_id_for(logical_date)
    split_of = np.empty(len(encoded), dtype=object)
    for name, idx in splits.items():
        split_of[idx] = name
    coll = db["processed_data"]
    coll.delete_many({"batch_id": batch_id})
    x_cat = encoded.x_cat.tolist()
    x_num = np.round(encoded.x_num.astype(np.float64), 6).tolist()
    y = encoded.y.tolist() if encoded.y is not None else [None] * len(encoded)
    docs = [
        {
            "batch_id": batch_id, "logical_date": logical_date.isoformat(), "row": i,
            "split": split_of[i], "y": y[i], "x_cat": x_cat[i], "x_num": x_num[i],
        }
        for i in range(len(encoded))
    ]
    for start in range(0, len(docs), _INSERT_CHUNK):
        coll.insert_many(docs[start:start + _INSERT_CHUNK], ordered=False)
    return {name: int(len(idx)) for name, idx in splits.items()}


def load_split(db: "Database", logical_date: dt.date, split: str) -> "EncodedBatch":
    """The processed rows of one split of a day's batch, in row order.

    Raises
    ------
    NotFoundError
        When the day has no processed rows in ``split`` (run data_pipeline_dag for it first).
    """
    from daily_mlops.ml.encoded import EncodedBatch

    batch_id = batch_id_for(logical_date)
    docs = list(
        db["processed_data"].find({"batch_id": batch_id, "split": split}, {"_id": 0, "x_cat": 1, "x_num": 1, "y": 1}).sort("row", 1)
    )
    if not docs:
        raise NotFoundError(
            f"no processed rows in split {split!r} of {batch_id}; run data_pipeline_dag for logical date "
            f"{logical_date.isoformat()} first"
        )
    x_cat = np.asarray([d["x_cat"] for d in docs], dtype=np.int64).reshape(len(docs), -1)
    x_num = np.asarray([d["x_num"] for d in docs], dtype=np.float32).reshape(len(docs), -1)
    y = np.asarray([d["y"] for d in docs], dtype=np.int64)
    return EncodedBatch(x_cat=x_cat, x_num=x_num, y=y)


def split_counts(db: "Database", logical_date: dt.date) -> dict[str, dict[str, int]]:
    """Rows and positives per split in ``processed_data`` for ``logical_date`` (a MongoDB aggregation)."""
    return {
        d["_id"]: {"rows": int(d["rows"]), "positives": int(d["positives"])}
        for d in db["processed_data"].aggregate([
            {"$match": {"batch_id": batch_id_for(logical_date)}},
            {"$group": {"_id": "$split", "rows": {"$sum": 1}, "positives": {"$sum": "$y"}}},
        ])
    }


def store_processing_metadata(db: "Database", document: dict[str, Any], *, logical_date: dt.date) -> dict[str, Any]:
    """Replace the ``processing_metadata`` document of ``logical_date`` (upsert); return it."""
    from pymongo.errors import DuplicateKeyError

    batch_id = batch_id_for(logical_date)
    doc = {**document, "batch_id": batch_id, "logical_date": logical_date.isoformat()}
    try:
        db["processing_metadata"].replace_one({"batch_id": batch_id}, doc, upsert=True)
    except DuplicateKeyError:  # a concurrent run inserted it between our match and insert: now it matches
        db["processing_metadata"].replace_one({"batch_id": batch_id}, doc, upsert=True)
    doc.pop("_id", None)
    return doc


def load_processing_metadata(db: "Database", logical_date: dt.date) -> dict[str, Any]:
    """The ``processing_metadata`` document of ``logical_date``.

    Raises
    ------
    NotFoundError
        When the day's batch has not been generated.
    """
    doc = db["processing_metadata"].find_one({"batch_id": batch_id_for(logical_date)}, {"_id": 0})
    if doc is None:
        raise NotFoundError(
            f"no batch for logical date {logical_date.isoformat()}; run data_pipeline_dag for that date first"
        )
    return doc
