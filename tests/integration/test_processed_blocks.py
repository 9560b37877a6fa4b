"""A day's processed splits as Parquet files in the GridFS bucket processed_data, indexed by processing_metadata.

Against a real MongoDB-wire server: one split loads from its own file only,
a tampered file is refused by its sha256, a rerun leaves one set of files,
and the chunked data tasks store what the unchunked path produced.
"""

from __future__ import annotations

import datetime as dt

import gridfs
import numpy as np
import pytest
from bson import Binary, ObjectId

from daily_mlops.errors import IntegrityError, NotFoundError
from daily_mlops.ml.encoded import EncodedBatch
from daily_mlops.storage.batches import (
    load_split,
    processed_file_problems,
    split_counts,
    store_processed_batch,
    store_processing_metadata,
)
from daily_mlops.storage.mongo import PROCESSED_DATA_BUCKET

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 1)
SPLITS = ("pretrain", "finetune", "test")


def _encoded(n: int = 300, seed: int = 0) -> tuple[EncodedBatch, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    encoded = EncodedBatch(x_cat=rng.integers(0, 5, (n, 3)).astype(np.int64),
                           x_num=rng.normal(size=(n, 2)).astype(np.float32), y=rng.integers(0, 2, n).astype(np.int64))
    order = rng.permutation(n)
    cut = (int(n * 0.7), int(n * 0.85))
    return encoded, {name: np.sort(part) for name, part in zip(SPLITS, np.split(order, cut), strict=True)}


def _store(db, n: int = 300, seed: int = 0) -> tuple[EncodedBatch, dict[str, np.ndarray]]:
    encoded, splits = _encoded(n, seed)
    store_processing_metadata(db, {"status": "raw", "n_rows": n}, logical_date=DAY)
    store_processed_batch(db, encoded, splits, logical_date=DAY, x_cat=["a", "b", "c"], x_num=["u", "v"])
    return encoded, splits


def _index(db) -> dict:
    return db.processing_metadata.find_one({"batch_id": f"batch-{DAY}"})["processed"]


def test_splits_round_trip_and_counts_come_from_the_index(real_db):
    """Each split loads back exactly (x_num rounded to 6 decimals, rows ascending); split_counts matches."""
    encoded, splits = _store(real_db)
    for name, idx in splits.items():
        part = load_split(real_db, DAY, name)
        assert np.array_equal(part.x_cat, encoded.x_cat[idx]) and np.array_equal(part.y, encoded.y[idx])
        expected = np.round(encoded.x_num[idx].astype(np.float64), 6).astype(np.float32)
        assert part.x_num.dtype == np.float32 and np.array_equal(part.x_num, expected)
    assert split_counts(real_db, DAY) == {
        name: {"rows": len(idx), "positives": int(encoded.y[idx].sum())} for name, idx in splits.items()
    }
    assert _index(real_db)["columns"] == {"x_cat": ["a", "b", "c"], "x_num": ["u", "v"]}
    assert processed_file_problems(real_db, DAY) == []


def test_a_split_loads_from_its_own_file_only(real_db):
    """With the pretrain and finetune files deleted from GridFS, test still loads; pretrain is reported missing."""
    encoded, splits = _store(real_db)
    fs = gridfs.GridFSBucket(real_db, bucket_name=PROCESSED_DATA_BUCKET)
    index = _index(real_db)
    for name in ("pretrain", "finetune"):
        fs.delete(ObjectId(index["splits"][name]["file"]["file_id"]))
    assert np.array_equal(load_split(real_db, DAY, "test").y, encoded.y[splits["test"]])
    with pytest.raises(IntegrityError, match="missing"):
        load_split(real_db, DAY, "pretrain")
    problems = processed_file_problems(real_db, DAY)
    assert len(problems) == 2 and "'pretrain'" in problems[0] + problems[1]


def test_a_tampered_block_is_refused_by_its_sha256(real_db):
    """A split file altered in GridFS (same length) raises IntegrityError naming the recorded sha256."""
    _store(real_db)
    ref = _index(real_db)["splits"]["finetune"]["file"]
    chunks = real_db[f"{PROCESSED_DATA_BUCKET}.chunks"]
    chunk = chunks.find_one({"files_id": ObjectId(ref["file_id"]), "n": 0})
    data = bytearray(chunk["data"])
    data[len(data) // 2] ^= 0xFF
    chunks.update_one({"_id": chunk["_id"]}, {"$set": {"data": Binary(bytes(data))}})
    with pytest.raises(IntegrityError, match=ref["sha256"]):
        load_split(real_db, DAY, "finetune")
    assert load_split(real_db, DAY, "test").x_cat.shape[1] == 3  # the other splits are untouched


def test_a_rerun_leaves_one_set_of_blocks(real_db):
    """Storing the day twice (other rows) leaves 3 files, no stray chunks, and the index points at the new ones."""
    _store(real_db, n=300, seed=0)
    encoded, splits = _store(real_db, n=200, seed=1)
    files = list(real_db[f"{PROCESSED_DATA_BUCKET}.files"].find({}, {"filename": 1}))
    assert sorted(f["filename"] for f in files) == sorted(f"batch-{DAY}.{name}.parquet" for name in SPLITS)
    ids = {f["_id"] for f in files}
    assert set(real_db[f"{PROCESSED_DATA_BUCKET}.chunks"].distinct("files_id")) == ids
    assert {ObjectId(e["file"]["file_id"]) for e in _index(real_db)["splits"].values()} == ids
    assert sum(c["rows"] for c in split_counts(real_db, DAY).values()) == 200
    assert np.array_equal(load_split(real_db, DAY, "test").y, encoded.y[splits["test"]])


def test_missing_day_or_empty_split_is_not_found(real_db):
    """No index: NotFoundError naming data_pipeline_dag; split_counts is empty."""
    with pytest.raises(NotFoundError, match="data_pipeline_dag"):
        load_split(real_db, DAY, "test")
    assert split_counts(real_db, DAY) == {}


def test_splits_that_do_not_cover_every_row_are_refused(real_db):
    """A row in no split (or in two) raises ValueError and writes no file."""
    encoded, splits = _encoded()
    store_processing_metadata(real_db, {"status": "raw", "n_rows": len(encoded)}, logical_date=DAY)
    with pytest.raises(ValueError, match="exactly once"):
        store_processed_batch(real_db, encoded, {**splits, "test": splits["test"][1:]}, logical_date=DAY)
    assert real_db[f"{PROCESSED_DATA_BUCKET}.files"].count_documents({}) == 0


def test_no_index_or_another_raw_file_writes_nothing(real_db):
    """Without the day's processing_metadata: NotFoundError; with a raw file other than recorded: IntegrityError.

    Either way no split file is uploaded.
    """
    encoded, splits = _encoded()
    with pytest.raises(NotFoundError, match="data_pipeline_dag"):
        store_processed_batch(real_db, encoded, splits, logical_date=DAY)
    store_processing_metadata(real_db, {"status": "raw", "n_rows": 300, "raw_file": {"sha256": "a" * 64}},
                              logical_date=DAY)
    with pytest.raises(IntegrityError, match="changed while it was preprocessed"):
        store_processed_batch(real_db, encoded, splits, logical_date=DAY, raw_file={"sha256": "b" * 64})
    assert real_db[f"{PROCESSED_DATA_BUCKET}.files"].count_documents({}) == 0


# -- the data tasks, chunked ---------------------------------------------------
@pytest.fixture
def registered(settings, real_db):
    """The synthesizer and preprocessor registered as bootstrap does (no model is trained)."""
    from daily_mlops.loop.bootstrap import BOOTSTRAP_RUN_KEY, register_synthesizer
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.storage.registry import PREPROCESSOR_NAME, ModelRegistry

    reference = read_csv(settings.require_reference_data())
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)
    registry = ModelRegistry(real_db)
    synth, _ = register_synthesizer(registry, reference, schema, seed=settings.seed)
    pre = TabularPreprocessor(schema).fit(reference)
    registry.register(PREPROCESSOR_NAME, run_key=BOOTSTRAP_RUN_KEY, artifacts={"preprocessor": pre.to_bytes()},
                      status="approved", trained_on=["reference"], signature=pre.signature(), extra={"schema": schema})
    return synth, pre, schema


def _unchunked_splits(pre, raw, seed: int) -> dict[str, EncodedBatch]:
    """What the one-piece path stored: the whole raw batch encoded, split, x_num rounded to 6 decimals."""
    from daily_mlops.dates import day_seed
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.splits import split_indices

    encoded = pre.transform(validate_batch(raw, pre.schema))
    out = {}
    for name, idx in split_indices(encoded.y, seed=day_seed(seed, DAY)).items():
        part = encoded.subset(idx)
        out[name] = EncodedBatch(x_cat=part.x_cat, y=part.y,
                                 x_num=np.round(part.x_num.astype(np.float64), 6).astype(np.float32))
    return out


def test_one_chunk_day_stores_the_batch_of_before(settings, real_db, registered):
    """daily_rows <= chunk: the raw rows render to the unchunked batch's CSV bytes; splits equal its encoding."""
    import pandas as pd

    from daily_mlops.loop import data
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.storage.batches import load_raw_batch

    synth, pre, schema = registered
    data.generate_data(settings, logical_date=DAY, db=real_db)
    data.preprocess_data(settings, logical_date=DAY, db=real_db)
    meta = data.store_processing_metadata(settings, logical_date=DAY, db=real_db)
    raw_file = real_db.processing_metadata.find_one({})["raw_file"]
    before = validate_batch(synth.generate(settings.daily_rows, seed=settings.seed, logical_date=DAY), schema)
    raw = load_raw_batch(real_db, raw_file)
    assert raw_file["filename"] == f"batch-{DAY}.parquet"
    # the raw CSV of before
    assert raw.to_csv(index=False).encode("utf-8") == before.to_csv(index=False).encode("utf-8")
    pd.testing.assert_frame_equal(validate_batch(raw, schema), before)
    expected = _unchunked_splits(pre, raw, settings.seed)
    for name, part in expected.items():
        got = load_split(real_db, DAY, name)
        assert np.array_equal(got.x_cat, part.x_cat) and np.array_equal(got.x_num, part.x_num)
        assert np.array_equal(got.y, part.y)
    assert meta["n_rows"] == settings.daily_rows


def test_a_raw_csv_of_before_is_still_read(real_db):
    """A raw batch stored as <batch_id>.csv by an earlier version loads, in chunks too."""
    import pandas as pd

    from daily_mlops.storage.artifacts import put_artifact
    from daily_mlops.storage.batches import load_raw_batch, read_raw_batch

    frame = pd.DataFrame({"a": [1.5, 2.0, None], "creditability": ["good", "bad", "good"]})
    ref = put_artifact(real_db, "raw_data", f"batch-{DAY}.csv", frame.to_csv(index=False).encode(), replace=True)
    pd.testing.assert_frame_equal(load_raw_batch(real_db, ref), frame)
    with read_raw_batch(real_db, ref, chunk_rows=2) as chunks:
        assert [list(c.index) for c in chunks] == [[0, 1], [2]]


def test_a_chunked_day_is_deterministic_and_encodes_like_one_piece(settings, real_db, registered):
    """1200 rows in chunks of 500: a rerun gives the same raw sha256 and the splits of the whole-file encoding."""
    from daily_mlops.loop import data
    from daily_mlops.storage.batches import load_raw_batch

    _, pre, _ = registered
    first = data.generate_data(settings, logical_date=DAY, db=real_db, chunk_rows=500)
    again = data.generate_data(settings, logical_date=DAY, db=real_db, chunk_rows=500)
    assert first["raw_sha256"] == again["raw_sha256"] and first["n_rows"] == 1200
    data.preprocess_data(settings, logical_date=DAY, db=real_db, chunk_rows=500)
    data.store_processing_metadata(settings, logical_date=DAY, db=real_db)
    meta = real_db.processing_metadata.find_one({})
    assert meta["status"] == "ready" and meta["sampling_chunk_rows"] == 500
    expected = _unchunked_splits(pre, load_raw_batch(real_db, meta["raw_file"]), settings.seed)
    for name, part in expected.items():
        got = load_split(real_db, DAY, name)
        assert np.array_equal(got.x_cat, part.x_cat) and np.array_equal(got.x_num, part.x_num)
        assert np.array_equal(got.y, part.y)


def test_doctor_re_hashes_the_split_files(real_db, tmp_path):
    """`doctor` checks every split file the index records: a deleted one is reported as a missing artifact."""
    import pandas as pd

    from daily_mlops.storage.batches import record_raw_batch, store_raw_batch
    from daily_mlops.storage.doctor import check_storage

    store_raw_batch(real_db, pd.DataFrame({"a": [1, 2], "y": ["x", None]}), logical_date=DAY)
    record_raw_batch(real_db, {"status": "raw", "n_rows": 300}, logical_date=DAY)
    encoded, splits = _encoded()
    store_processed_batch(real_db, encoded, splits, logical_date=DAY)
    assert check_storage(real_db, tmp_path / "deployed").checked["sha256 mismatch"] == 4  # raw + 3 splits
    gridfs.GridFSBucket(real_db, bucket_name=PROCESSED_DATA_BUCKET).delete(
        ObjectId(_index(real_db)["splits"]["test"]["file"]["file_id"]))
    found = [(f.check, f.subject) for f in check_storage(real_db, tmp_path / "deployed").problems]
    assert ("missing artifact", f"batch-{DAY} test split file") in found
