"""Daily batches in MongoDB: the raw CSV and the processed splits in GridFS, indexed by ``processing_metadata``.

Storage contract (one logical date = one batch, ``batch_id = "batch-YYYY-MM-DD"``):

* GridFS bucket ``raw_data``: ``<batch_id>.parquet``, the synthetic rows as
  sampled and validated (Parquet, zstd, one row group per sampling chunk;
  text columns as strings), with ``logical_date``, ``n_rows`` and ``sha256`` in
  its metadata. Files named ``<batch_id>.csv`` (written before) are still
  read. A rerun replaces the file; when two runs of one day write at
  once, the newest file survives (:func:`daily_mlops.storage.artifacts.keep_newest`)
  and :func:`record_raw_batch` points ``processing_metadata`` at it.
* GridFS bucket ``processed_data``: ``<batch_id>.<split>.parquet``, one
  Parquet file per split (``pretrain``, ``finetune``, ``test``; the format is
  :mod:`daily_mlops.storage.blocks`). A rerun replaces the files
  (``replace=True``), so a day keeps one set.
* ``processing_metadata``: one document per batch, the day's index: the raw
  file reference, and under ``processed`` the feature columns and per split
  ``rows``, ``positives`` and ``file`` (bucket, file id, filename, sha256,
  size); ``fidelity.evaluation_gap`` is set by :func:`record_evaluation_gap`. :func:`split_counts` reads it;
  :func:`load_split` downloads one split's file only, verifying its sha256.

Writing streams: the raw and processed Parquet files are written to temporary
files chunk by chunk and uploaded from there (:func:`put_artifact` hashes and
streams a file), so memory does not grow with the day's rows. Only this module
reads and writes those places.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from daily_mlops.errors import IntegrityError, NotFoundError, SchemaError
from daily_mlops.storage.artifacts import (
    ArtifactRef,
    download_artifact,
    get_artifact,
    newest_file,
    put_artifact,
)
from daily_mlops.storage.blocks import BLOCK_FORMAT, BlockSpool, decode_block
from daily_mlops.storage.mongo import PROCESSED_DATA_BUCKET, RAW_DATA_BUCKET

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa
    from pymongo.database import Database

    from daily_mlops.ml.encoded import EncodedBatch

__all__ = [
    "BLOCK_FORMAT",
    "RAW_FORMAT",
    "BlockSpool",
    "batch_id_for",
    "load_processing_metadata",
    "load_raw_batch",
    "load_split",
    "processed_file_problems",
    "raw_batch_file",
    "raw_filename",
    "read_raw_batch",
    "record_evaluation_gap",
    "record_raw_batch",
    "split_counts",
    "store_processed_batch",
    "store_processed_splits",
    "store_processing_metadata",
    "store_raw_batch",
]

#: Format (and file name suffix) of the raw batch in ``raw_data``.
RAW_FORMAT = "parquet"
#: Temporary files stay in memory up to this size (bytes), then spill to disk.
_SPOOL_BYTES = 32 * 1024 * 1024


def batch_id_for(logical_date: dt.date) -> str:
    """The batch id of a logical date, e.g. ``batch-2026-11-20``."""
    return f"batch-{logical_date.isoformat()}"


# -- the raw batch -----------------------------------------------------------
def raw_filename(logical_date: dt.date) -> str:
    """The raw batch's file name in ``raw_data``, e.g. ``batch-2026-11-20.parquet``."""
    return f"{batch_id_for(logical_date)}.{RAW_FORMAT}"


def _arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    """Arrow types of a validated frame's columns: object columns as strings, the rest from their NumPy dtype."""
    import pyarrow as pa

    return pa.schema([(str(name), pa.string() if dtype == np.dtype(object) else pa.from_numpy_dtype(dtype))
                      for name, dtype in frame.dtypes.items()])


def store_raw_batch(
    db: Database, frames: pd.DataFrame | Iterable[pd.DataFrame], *, logical_date: dt.date
) -> ArtifactRef:
    """Write a day's raw batch as Parquet to the ``raw_data`` bucket, replacing that day's file.

    Parameters
    ----------
    frames : DataFrame, or iterable of DataFrames with the same columns and dtypes
        The batch, or its consecutive chunks: each chunk becomes one row group
        of a temporary Parquet file (zstd), which is then uploaded, so one
        chunk at a time is in memory. Object columns are stored as strings
        (null stays null), the others with their dtype.

    Returns
    -------
    ArtifactRef
        The day's surviving file: this upload, or the newer upload of a
        concurrent run of the same day (same seed and date, same bytes).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_rows, writer = 0, None
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as file:
        try:
            for chunk in [frames] if isinstance(frames, pd.DataFrame) else frames:
                if writer is None:
                    schema = _arrow_schema(chunk)
                    writer = pq.ParquetWriter(file, schema, compression="zstd")
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
                n_rows += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        return put_artifact(
            db, RAW_DATA_BUCKET, raw_filename(logical_date), file,
            metadata={"logical_date": logical_date.isoformat(), "n_rows": int(n_rows), "format": RAW_FORMAT},
            replace=True,
        )


def raw_batch_file(db: Database, logical_date: dt.date) -> ArtifactRef | None:
    """The reference of the day's raw file in ``raw_data`` (the newest of that name), or ``None``."""
    return newest_file(db, RAW_DATA_BUCKET, raw_filename(logical_date))


def record_raw_batch(db: Database, document: dict[str, Any], *, logical_date: dt.date) -> dict[str, Any]:
    """Write the day's ``processing_metadata`` with ``raw_file`` = the day's surviving raw file; return it.

    The document replaces the day's index, so processed files recorded by an
    earlier run are no longer referenced (the next ``preprocess_data``
    replaces them). After the write the survivor is read again; when a
    concurrent run of the same day replaced the file meanwhile, the document
    is rewritten to point at the new survivor. The last writer therefore
    leaves a reference that matches the file that stays.

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
                f"{raw_filename(logical_date)} is missing from GridFS bucket {RAW_DATA_BUCKET!r}; "
                "rerun generate_data for this logical date"
            )
        doc = store_processing_metadata(db, {**document, "raw_file": ref}, logical_date=logical_date)
        survivor = raw_batch_file(db, logical_date)
        if survivor == ref:
            return doc
        ref = survivor
    raise IntegrityError(f"{raw_filename(logical_date)} kept changing while its metadata was written; rerun the task")


def load_raw_batch(db: Database, ref: ArtifactRef | dict[str, Any]) -> pd.DataFrame:
    """Read a whole raw batch back (index ``0..n-1``), verifying its sha256 first.

    Raises
    ------
    IntegrityError
        When the file is missing or altered.
    SchemaError
        When the file cannot be parsed.
    """
    import pandas as pd

    with read_raw_batch(db, ref, chunk_rows=1 << 40) as chunks:  # one chunk: the whole batch
        parts = list(chunks)
    return pd.concat(parts) if len(parts) != 1 else parts[0]


@contextlib.contextmanager
def read_raw_batch(
    db: Database, ref: ArtifactRef | dict[str, Any], *, chunk_rows: int
) -> Iterator[Iterator[pd.DataFrame]]:
    """Download a raw batch to a temporary file, verify its sha256, yield an iterator of its chunks.

    Memory holds one GridFS chunk while downloading and one batch chunk
    while parsing. A file named ``*.csv`` (written before raw batches were
    Parquet) is parsed as CSV.

    Yields
    ------
    iterator of DataFrame of shape (<= chunk_rows, n_columns)
        Consecutive rows, indexed by their row number in the batch.

    Raises
    ------
    IntegrityError
        When the file is missing or altered (before anything is yielded).
    SchemaError
        While iterating, when the bytes are not a Parquet (or CSV) table.
    """
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as file:
        download_artifact(db, ref, file)
        file.seek(0)
        yield _raw_chunks(file, str(ref["filename"]), chunk_rows)


def _raw_chunks(file: IO[bytes], filename: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if filename.endswith(".csv"):
        with pd.read_csv(file, chunksize=chunk_rows) as reader:
            yield from reader
        return
    try:
        batches = pq.ParquetFile(file).iter_batches(batch_size=chunk_rows)
        start = 0
        for batch in batches:
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"raw batch {filename} is not a readable Parquet table ({exc}); "
                          "rerun generate_data for this logical date") from exc


# -- the processed splits ----------------------------------------------------
def store_processed_splits(
    db: Database, spool: BlockSpool, splits: dict[str, np.ndarray], *, logical_date: dt.date,
    raw_file: ArtifactRef | dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a day's spooled rows as one Parquet file per split and record them in the day's index.

    Each split's file goes to the GridFS bucket ``processed_data`` as
    ``<batch_id>.<split>.parquet`` through :func:`put_artifact` with
    ``replace=True`` (a rerun leaves one file per split), then
    ``processing_metadata`` gets ``processed`` and ``status: "processed"``.

    Parameters
    ----------
    spool : BlockSpool
        The day's encoded rows in batch order.
    splits : dict of str to ndarray of int
        Row indices per split name; together they must cover every row once.
    raw_file : ArtifactRef, optional
        The raw file the rows came from: the index is only updated while it
        still points at that file (sha256), so processed files never get
        recorded against a raw batch regenerated meanwhile.
    extra : dict, optional
        More fields for the index document (e.g. ``preprocessor_version``).

    Returns
    -------
    dict
        The index's ``processed`` value: ``format``, ``columns`` (``x_cat``,
        ``x_num`` feature names) and ``splits`` (per split ``rows``,
        ``positives`` and ``file``, an :class:`ArtifactRef`).

    Raises
    ------
    NotFoundError
        When the day has no ``processing_metadata`` (run generate_data first).
    IntegrityError
        When the raw file changed meanwhile, or a split file vanished (a
        concurrent run): rerun preprocess_data.
    """
    batch_id = batch_id_for(logical_date)
    _index_query(db, logical_date, raw_file)  # fails before anything is written
    for name, part in spool.write_splits(splits).items():
        with part["path"].open("rb") as file:
            put_artifact(db, PROCESSED_DATA_BUCKET, f"{batch_id}.{name}.parquet", file, replace=True, metadata={
                "logical_date": logical_date.isoformat(), "batch_id": batch_id, "split": name,
                "n_rows": part["rows"], "positives": part["positives"], "format": BLOCK_FORMAT,
            })
    return _record_blocks(db, logical_date, list(splits), columns={"x_cat": spool.x_cat, "x_num": spool.x_num},
                          raw_file=raw_file, extra=extra or {})


def _index_query(db: Database, logical_date: dt.date, raw_file: ArtifactRef | dict[str, Any] | None) -> dict:
    """The filter of the day's index, checked to match (and to point at ``raw_file`` when given)."""
    batch_id = batch_id_for(logical_date)
    query: dict[str, Any] = {"batch_id": batch_id}
    if raw_file is not None:
        query["raw_file.sha256"] = raw_file["sha256"]
    if db["processing_metadata"].count_documents(query, limit=1) == 0:
        if raw_file is None or db["processing_metadata"].count_documents({"batch_id": batch_id}, limit=1) == 0:
            raise NotFoundError(f"no batch for logical date {logical_date.isoformat()}; "
                                "run data_pipeline_dag for that date first")
        raise IntegrityError(f"the raw batch of {batch_id} changed while it was preprocessed; "
                             "rerun preprocess_data for this logical date")
    return query


def _record_blocks(
    db: Database, logical_date: dt.date, names: list[str], *, columns: dict[str, list[str]],
    raw_file: ArtifactRef | dict[str, Any] | None, extra: dict[str, Any],
) -> dict[str, Any]:
    """Point the day's index at the surviving file of each split (as :func:`record_raw_batch` does for raw)."""
    batch_id = batch_id_for(logical_date)
    for _ in range(10):
        query = _index_query(db, logical_date, raw_file)
        entries: dict[str, Any] = {}
        for name in names:
            filename = f"{batch_id}.{name}.parquet"
            doc = db[f"{PROCESSED_DATA_BUCKET}.files"].find_one(
                {"filename": filename}, {"length": 1, "metadata": 1}, sort=[("uploadDate", -1), ("_id", -1)])
            if doc is None:
                raise IntegrityError(f"{filename} vanished from GridFS bucket {PROCESSED_DATA_BUCKET!r} while it "
                                     "was recorded; rerun preprocess_data for this logical date")
            meta = doc["metadata"]
            ref = ArtifactRef(bucket=PROCESSED_DATA_BUCKET, file_id=str(doc["_id"]), filename=filename,
                              sha256=meta["sha256"], size=int(meta["size"]))
            entries[name] = {"rows": int(meta["n_rows"]), "positives": int(meta["positives"]), "file": ref}
        processed = {"format": BLOCK_FORMAT, "columns": columns, "splits": entries}
        if db["processing_metadata"].update_one(query, {"$set": {**extra, "processed": processed,
                                                                  "status": "processed"}}).matched_count == 0:
            continue  # the index changed between the check and the write: _index_query raises next round
        survivors = {name: newest_file(db, PROCESSED_DATA_BUCKET, f"{batch_id}.{name}.parquet") for name in names}
        if all(survivors[name] == entries[name]["file"] for name in names):
            return processed
    raise IntegrityError(f"the processed files of {batch_id} kept changing while they were recorded; rerun the task")


def store_processed_batch(
    db: Database, encoded: EncodedBatch, splits: dict[str, np.ndarray], *, logical_date: dt.date,
    x_cat: list[str] | None = None, x_num: list[str] | None = None,
    raw_file: ArtifactRef | dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Store a whole processed batch in one call (:func:`store_processed_splits`); return rows written per split.

    ``encoded``: ``x_cat`` (n, n_cat) int64, ``x_num`` (n, n_num) float32, ``y``
    (n,) int64; ``x_cat``, ``x_num``: feature names (default ``"0"``, ``"1"``, ...);
    ``splits``, ``raw_file``, ``extra``: as in :func:`store_processed_splits`.
    """
    x_cat = x_cat if x_cat is not None else [str(j) for j in range(encoded.x_cat.shape[1])]
    x_num = x_num if x_num is not None else [str(j) for j in range(encoded.x_num.shape[1])]
    with BlockSpool(x_cat=x_cat, x_num=x_num) as spool:
        spool.append(encoded)
        processed = store_processed_splits(db, spool, splits, logical_date=logical_date, raw_file=raw_file,
                                           extra=extra)
    return {name: entry["rows"] for name, entry in processed["splits"].items()}


def _processed_index(db: Database, logical_date: dt.date) -> dict[str, Any] | None:
    doc = db["processing_metadata"].find_one({"batch_id": batch_id_for(logical_date)}, {"_id": 0, "processed": 1})
    return None if doc is None else doc.get("processed")


def load_split(db: Database, logical_date: dt.date, split: str) -> EncodedBatch:
    """The processed rows of one split of a day's batch, in row order; only that split's file is read.

    Returns
    -------
    EncodedBatch
        ``x_cat`` (n, n_cat) int64, ``x_num`` (n, n_num) float32, ``y`` (n,) int64.

    Raises
    ------
    NotFoundError
        When the day has no processed rows in ``split`` (run data_pipeline_dag for it first).
    IntegrityError
        When the split's file is missing, its sha256 differs from the index
        (it is not parsed), or its columns or row count differ from the index.
    """
    batch_id = batch_id_for(logical_date)
    index = _processed_index(db, logical_date) or {}
    entry = index.get("splits", {}).get(split)
    if entry is None or entry["rows"] == 0:
        raise NotFoundError(
            f"no processed rows in split {split!r} of {batch_id}; run data_pipeline_dag for logical date "
            f"{logical_date.isoformat()} first"
        )
    return decode_block(get_artifact(db, entry["file"]), x_cat=index["columns"]["x_cat"],
                        x_num=index["columns"]["x_num"], rows=int(entry["rows"]), what=entry["file"]["filename"])


def split_counts(db: Database, logical_date: dt.date) -> dict[str, dict[str, int]]:
    """Rows and positives per split of ``logical_date``, from the day's index (``{}`` when not processed)."""
    index = _processed_index(db, logical_date) or {}
    return {name: {"rows": int(entry["rows"]), "positives": int(entry["positives"])}
            for name, entry in index.get("splits", {}).items()}


def processed_file_problems(db: Database, logical_date: dt.date) -> list[str]:
    """What is wrong with the split files the day's index records (``[]``: all present, as recorded).

    Checks each file's GridFS ``files`` document (its recorded sha256 and row
    count) without downloading it; :func:`load_split` re-hashes the bytes.
    """
    from bson import ObjectId

    problems = []
    files = db[f"{PROCESSED_DATA_BUCKET}.files"]
    for name, entry in ((_processed_index(db, logical_date) or {}).get("splits") or {}).items():
        ref = entry["file"]
        doc = files.find_one({"_id": ObjectId(ref["file_id"])}, {"metadata": 1})
        meta = (doc or {}).get("metadata") or {}
        if doc is None:
            problems.append(f"split {name!r}: {ref['filename']} (id {ref['file_id']}) is missing")
        elif meta.get("sha256") != ref["sha256"] or meta.get("n_rows") != entry["rows"]:
            problems.append(f"split {name!r}: {ref['filename']} records sha256 {meta.get('sha256')} and "
                            f"{meta.get('n_rows')} rows, the index {ref['sha256']} and {entry['rows']} rows")
    return problems


# -- the index ---------------------------------------------------------------
def store_processing_metadata(db: Database, document: dict[str, Any], *, logical_date: dt.date) -> dict[str, Any]:
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


def record_evaluation_gap(db: Database, logical_date: dt.date, gap: dict[str, Any]) -> None:
    """Set ``fidelity.evaluation_gap`` of the day's ``processing_metadata`` to ``gap`` (a rerun overwrites it).

    ``gap`` is :func:`daily_mlops.ml.fidelity.evaluation_gap`'s dict. The rest
    of ``fidelity`` is kept; a document whose ``fidelity`` is null or missing
    (no real holdout stored, or written before the gate recorded fidelity) gets
    ``fidelity: {"evaluation_gap": gap}``. A rerun of ``check_data_quality``
    replaces ``fidelity`` and so drops the gap until the day is evaluated again.

    Raises
    ------
    NotFoundError
        When the day has no ``processing_metadata`` (run data_pipeline_dag first).
    """
    batch_id = batch_id_for(logical_date)
    collection = db["processing_metadata"]
    for _ in range(3):  # a concurrent check_data_quality may replace fidelity between the two filters
        if collection.update_one({"batch_id": batch_id, "fidelity": {"$ne": None}},
                                 {"$set": {"fidelity.evaluation_gap": gap}}).matched_count:
            return
        if collection.update_one({"batch_id": batch_id, "fidelity": None},
                                 {"$set": {"fidelity": {"evaluation_gap": gap}}}).matched_count:
            return
    raise NotFoundError(f"no batch for logical date {logical_date.isoformat()}; "
                        "run data_pipeline_dag for that date first")


def load_processing_metadata(db: Database, logical_date: dt.date) -> dict[str, Any]:
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
