"""Unit tests for daily_mlops.ml.synthesis: the SDV distribution model."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_mlops.dates import chunk_seed, day_seed, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError, SchemaError, UnsafeArtifactError
from daily_mlops.ml.serialization import frame_columns, frame_from_csv, frame_to_csv
from daily_mlops.ml.synthesis import REFERENCE_FORMAT, TABLE_NAME, Synthesizer

REFERENCE_CSV = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"
TARGET = "creditability"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_CSV)


@pytest.fixture(scope="module")
def model(reference: pd.DataFrame) -> Synthesizer:
    return Synthesizer(seed=42).fit(reference)


@pytest.fixture(scope="module")
def stored(model: Synthesizer) -> tuple[bytes, str, dict]:
    """What the registry keeps: the reference CSV, its sha256 and the JSON record."""
    data = model.reference_csv()
    return data, hashlib.sha256(data).hexdigest(), json.loads(json.dumps(model.storage_record()))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------- day_seed
def test_day_seed_is_sha256_of_seed_and_iso_day() -> None:
    """day_seed is the first 4 bytes of sha256('<seed>:<YYYY-MM-DD>'), independent of hash()."""
    expected = int.from_bytes(hashlib.sha256(b"42:2024-03-05").digest()[:4], "big")
    assert day_seed(42, dt.date(2024, 3, 5)) == expected
    assert 0 <= expected < 2**32


def test_day_seed_same_day_in_every_form() -> None:
    """A date, a UTC datetime of that day and ISO strings of both give the same seed."""
    seeds = {
        day_seed(7, dt.date(2024, 3, 5)),
        day_seed(7, dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.UTC)),
        day_seed(7, "2024-03-05"),
        day_seed(7, "2024-03-05T00:00:00+00:00"),
        day_seed(7, pd.Timestamp("2024-03-05T06:00:00Z")),
    }
    assert len(seeds) == 1


def test_day_seed_differs_by_day_and_seed() -> None:
    """Other days and other run seeds give other day seeds."""
    assert day_seed(7, "2024-03-05") != day_seed(7, "2024-03-06")
    assert day_seed(7, "2024-03-05") != day_seed(8, "2024-03-05")


def test_logical_day_converts_aware_datetimes_to_utc() -> None:
    """An aware datetime late on one local day belongs to the next UTC day."""
    assert logical_day("2024-01-01T23:30:00-02:00") == dt.date(2024, 1, 2)
    assert logical_day(dt.datetime(2024, 1, 1, 23, 30)) == dt.date(2024, 1, 1)


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-45", 20240101, None])
def test_day_seed_rejects_unreadable_dates(bad: object) -> None:
    """An unparsable or non-date logical date raises MLOpsError naming the value."""
    with pytest.raises(MLOpsError, match="logical date"):
        day_seed(1, bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------- fit
def test_fit_stores_metadata_columns_and_row_count(model: Synthesizer, reference: pd.DataFrame) -> None:
    """fit records the detected SDV metadata (JSON-able), the column order and the row count."""
    assert model.columns_ == list(reference.columns)
    assert model.n_reference_rows_ == len(reference)
    assert json.loads(json.dumps(model.metadata_)) == model.metadata_
    table = model.metadata_["tables"]["reference"]["columns"]
    assert list(table) == list(reference.columns)
    assert table[TARGET]["sdtype"] == "categorical"


def test_init_only_stores_parameters() -> None:
    """__init__ stores the seed and learns nothing; generate before fit raises NotFittedError."""
    from sklearn.exceptions import NotFittedError

    fresh = Synthesizer(seed=3)
    assert fresh.seed == 3
    assert not hasattr(fresh, "synthesizer_")
    with pytest.raises(NotFittedError, match="not fitted"):
        fresh.generate(5, seed=1, logical_date="2024-01-01")


def test_estimator_contract_get_params_and_check_is_fitted(model: Synthesizer) -> None:
    """Synthesizer is a BaseEstimator: get_params/set_params/clone see `seed`, `target_column`, `marginal`;
    check_is_fitted tells fitted apart."""
    from sklearn.base import BaseEstimator, clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    assert isinstance(model, BaseEstimator)
    assert model.get_params() == {"seed": 42, "target_column": None, "marginal": "beta"}
    fresh = clone(model)
    assert fresh.get_params() == {"seed": 42, "target_column": None, "marginal": "beta"} and fresh is not model
    assert fresh.set_params(seed=9).seed == 9
    check_is_fitted(model)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    with pytest.raises(NotFittedError):
        fresh.reference_csv()


def test_fit_rejects_empty_frame() -> None:
    """An empty reference frame raises MLOpsError instead of an SDV traceback."""
    with pytest.raises(MLOpsError, match="at least"):
        Synthesizer().fit(pd.DataFrame())


# ------------------------------------------------------------- generate
def test_same_seed_and_date_give_identical_rows(model: Synthesizer) -> None:
    """Two draws for the same (seed, logical date) are identical, even with another draw between them."""
    first = model.generate(300, seed=7, logical_date=dt.date(2024, 1, 1))
    model.generate(50, seed=7, logical_date=dt.date(2024, 1, 2))
    again = model.generate(300, seed=7, logical_date="2024-01-01T00:00:00+00:00")
    pd.testing.assert_frame_equal(first, again)


def test_other_date_or_seed_gives_other_rows(model: Synthesizer) -> None:
    """Another logical date, or another run seed, gives different rows."""
    base = model.generate(300, seed=7, logical_date="2024-01-01")
    other_day = model.generate(300, seed=7, logical_date="2024-01-02")
    other_seed = model.generate(300, seed=8, logical_date="2024-01-01")
    assert not base.equals(other_day)
    assert not base.equals(other_seed)
    numeric = base.select_dtypes("number").columns
    assert (base[numeric].to_numpy() != other_day[numeric].to_numpy()).mean() > 0.5


def test_generate_leaves_global_numpy_state_alone(model: Synthesizer) -> None:
    """Sampling neither reads nor changes NumPy's global generator."""
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = model.generate(100, seed=1, logical_date="2024-02-01")
    after = np.random.get_state()[1]
    np.random.seed(999)
    b = model.generate(100, seed=1, logical_date="2024-02-01")
    assert np.array_equal(before, after)
    pd.testing.assert_frame_equal(a, b)


def test_columns_and_dtypes_match_reference(model: Synthesizer, reference: pd.DataFrame) -> None:
    """Generated batches have the reference columns, order and dtypes, and the requested row count."""
    batch = model.generate(250, seed=42, logical_date="2024-05-01")
    assert batch.shape == (250, reference.shape[1])
    assert list(batch.columns) == list(reference.columns)
    assert batch.dtypes.to_dict() == reference.dtypes.to_dict()
    assert list(batch.index) == list(range(250))


def test_sampled_values_stay_in_reference_domain(model: Synthesizer, reference: pd.DataFrame) -> None:
    """Categorical values come from the reference; numeric values stay inside its min/max."""
    batch = model.generate(1000, seed=42, logical_date="2024-05-02")
    for column in reference.columns:
        if reference[column].dtype == object:
            assert set(batch[column]) <= set(reference[column]), column
        else:
            assert batch[column].min() >= reference[column].min(), column
            assert batch[column].max() <= reference[column].max(), column


def test_sampled_target_has_both_classes(model: Synthesizer, reference: pd.DataFrame) -> None:
    """The sampled target holds both labels, the positive one near its reference rate."""
    batch = model.generate(2000, seed=42, logical_date="2024-06-01")
    assert set(batch[TARGET]) == set(reference[TARGET])
    reference_rate = (reference[TARGET] == "bad").mean()
    assert abs((batch[TARGET] == "bad").mean() - reference_rate) < 0.08


@pytest.mark.parametrize("n_rows", [0, -5, 2.5, True])
def test_generate_rejects_bad_row_counts(model: Synthesizer, n_rows: object) -> None:
    """A non-positive or non-integer row count raises MLOpsError."""
    with pytest.raises(MLOpsError, match="n_rows"):
        model.generate(n_rows, seed=1, logical_date="2024-01-01")  # type: ignore[arg-type]


# ------------------------------------------------------ generate_chunks
def _sampled_as_before(model: Synthesizer, n_rows: int, seed: int, day: str) -> pd.DataFrame:
    """The batch as generate() drew it before chunking existed: reset, seed the copula with day_seed, sample."""
    sdv = model.synthesizer_
    sdv.reset_sampling()
    sdv._set_random_state(day_seed(seed, day))
    return sdv.sample(n_rows)[TABLE_NAME].loc[:, model.columns_].reset_index(drop=True)


def test_a_day_within_one_chunk_is_the_batch_sampled_before(model: Synthesizer) -> None:
    """daily_rows <= chunk_rows: one chunk, equal to the unchunked SDV draw and to generate()."""
    chunks = list(model.generate_chunks(700, seed=42, logical_date="2026-11-01", chunk_rows=700))
    chunks_big = list(model.generate_chunks(700, seed=42, logical_date="2026-11-01", chunk_rows=100_000))
    before = _sampled_as_before(model, 700, 42, "2026-11-01")
    assert len(chunks) == 1 and len(chunks_big) == 1
    pd.testing.assert_frame_equal(chunks[0], before)
    pd.testing.assert_frame_equal(chunks_big[0], before)
    pd.testing.assert_frame_equal(model.generate(700, seed=42, logical_date="2026-11-01"), before)


def test_a_larger_day_is_a_deterministic_stream_of_distinct_chunks(model: Synthesizer) -> None:
    """1200 rows in chunks of 500: sizes 500/500/200, row numbers continue, the same stream twice, no chunk repeats."""
    first = list(model.generate_chunks(1200, seed=42, logical_date="2026-11-01", chunk_rows=500))
    model.generate(50, seed=1, logical_date="2024-01-01")  # another draw in between changes nothing
    again = list(model.generate_chunks(1200, seed=42, logical_date="2026-11-01", chunk_rows=500))
    assert [len(c) for c in first] == [500, 500, 200]
    assert [c.index[0] for c in first] == [0, 500, 1000] and first[-1].index[-1] == 1199
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    numeric = first[0].select_dtypes("number").columns
    assert (first[0][numeric].to_numpy() != first[1][numeric].to_numpy()).mean() > 0.5
    assert chunk_seed(day_seed(42, "2026-11-01"), 1) != chunk_seed(day_seed(42, "2026-11-01"), 2)


@pytest.mark.parametrize("chunk_rows", [0, -1, 2.5, True])
def test_generate_chunks_rejects_bad_chunk_sizes(model: Synthesizer, chunk_rows: object) -> None:
    """A non-positive or non-integer chunk size raises MLOpsError naming chunk_rows."""
    with pytest.raises(MLOpsError, match="chunk_rows"):
        next(model.generate_chunks(10, seed=1, logical_date="2024-01-01", chunk_rows=chunk_rows))  # type: ignore[arg-type]


# -------------------------------------------------------------- storage
def test_reference_rows_round_trip_refits_the_same_model(
    model: Synthesizer, stored: tuple[bytes, str, dict]
) -> None:
    """from_reference(reference_csv(), record) refits on equal rows and samples the same rows per (seed, date)."""
    data, digest, record = stored
    loaded = Synthesizer.from_reference(data, sha256=digest, record=record)
    assert record["reference_format"] == REFERENCE_FORMAT and record["fit_seed"] == 42
    assert loaded.seed == 42
    assert loaded.columns_ == model.columns_
    assert loaded.metadata_ == model.metadata_
    assert loaded.n_reference_rows_ == model.n_reference_rows_
    pd.testing.assert_frame_equal(loaded.reference_, model.reference_, check_exact=True)
    pd.testing.assert_frame_equal(
        loaded.generate(200, seed=5, logical_date="2024-07-01"),
        model.generate(200, seed=5, logical_date="2024-07-01"),
    )


def test_stored_artifact_is_csv_text(stored: tuple[bytes, str, dict], reference: pd.DataFrame) -> None:
    """The artifact is UTF-8 CSV with the reference header and one line per row; no serialized objects."""
    data, _, record = stored
    lines = data.decode("utf-8").splitlines()
    assert lines[0].split(",") == list(reference.columns)
    assert len(lines) == len(reference) + 1
    assert not data.startswith(b"\x80")
    assert [c["name"] for c in record["reference_columns"]] == list(reference.columns)


def test_canonical_csv_keeps_nulls_dtypes_and_exact_floats() -> None:
    """frame_to_csv/frame_from_csv restore floats bit for bit, ints, bools, datetimes, strings and nulls."""
    frame = pd.DataFrame({
        "x": [0.1, np.nan, -0.0, 1e-300, 2 / 3],
        "n": np.array([1, -2, 3, 4, 2**40], dtype=np.int64),
        "flag": [True, False, True, True, False],
        "when": pd.to_datetime(
            ["2020-01-01", None, "2021-06-30 12:00:01.5", "1970-01-01", "2024-02-29"], format="ISO8601"
        ),
        "text": ["a,b", 'say "hi"', np.nan, "NA", " padded "],
    })
    data = frame_to_csv(frame)
    back = frame_from_csv(data, frame_columns(frame), what="test CSV")
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert np.signbit(back["x"][2]) and back["text"][3] == "NA"
    assert frame_to_csv(back) == data


@pytest.mark.parametrize("column", [
    pd.Series(["a", ""], name="c"),
    pd.Series(["a", 3], name="c", dtype=object),
    pd.Series(["a", "b"], name="c", dtype="category"),
])
def test_reference_csv_refuses_columns_it_cannot_store_exactly(column: pd.Series) -> None:
    """An empty string, a non-string text value or a category dtype raises SchemaError naming the column."""
    with pytest.raises(SchemaError, match="'c'"):
        frame_to_csv(pd.DataFrame({"c": column, "y": [1.0, 2.0]}))


def test_tampered_bytes_raise_integrity_error_and_parse_nothing(
    stored: tuple[bytes, str, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed bytes fail the sha256 check before the CSV is parsed or anything is refit."""
    import daily_mlops.ml.serialization as serialization

    calls: list[bytes] = []
    monkeypatch.setattr(serialization, "frame_from_csv", lambda data, *a, **k: calls.append(data))
    data, digest, record = stored
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(IntegrityError) as excinfo:
        Synthesizer.from_reference(bytes(tampered), sha256=digest, record=record)
    message = str(excinfo.value)
    assert digest in message and _sha(bytes(tampered)) in message and "not loaded" in message
    with pytest.raises(IntegrityError, match="0{64}"):
        Synthesizer.from_reference(data, sha256="0" * 64, record=record)
    assert calls == []


def test_binary_artifact_with_matching_sha_is_refused(stored: tuple[bytes, str, dict]) -> None:
    """Non-UTF-8 bytes (a serialized object) with a matching sha256 raise UnsafeArtifactError."""
    _, _, record = stored
    payload = b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02io\x94.\xff"
    with pytest.raises(UnsafeArtifactError, match="not UTF-8 CSV text"):
        Synthesizer.from_reference(payload, sha256=_sha(payload), record=record)


def test_record_from_the_old_format_is_refused(stored: tuple[bytes, str, dict]) -> None:
    """A registry document without reference_format (stored by an older version) raises UnsafeArtifactError."""
    data, digest, record = stored
    old = {k: v for k, v in record.items() if k != "reference_format"}
    with pytest.raises(UnsafeArtifactError, match="reference_format"):
        Synthesizer.from_reference(data, sha256=digest, record=old)


def test_non_canonical_or_mismatched_csv_is_refused(stored: tuple[bytes, str, dict]) -> None:
    """CSV that parses but does not write back to the same bytes, or has other columns, raises SchemaError."""
    data, _, record = stored
    text = data.decode("utf-8")
    header, first, rest = text.split("\n", 2)
    cells = first.split(",")
    numeric = next(i for i, c in enumerate(record["reference_columns"]) if c["dtype"] == "int64")
    cells[numeric] = " " + cells[numeric]  # int(" 6") == 6, but the text is not canonical
    respaced = "\n".join([header, ",".join(cells), rest]).encode("utf-8")
    with pytest.raises(SchemaError, match="canonical"):
        Synthesizer.from_reference(respaced, sha256=_sha(respaced), record=record)
    renamed = text.replace(header.split(",")[0], "other", 1).encode("utf-8")
    with pytest.raises(SchemaError, match="columns"):
        Synthesizer.from_reference(renamed, sha256=_sha(renamed), record=record)


@pytest.mark.parametrize("sdtype", ["__class__", "pystr", None, ["email"]])
def test_metadata_naming_other_sdtypes_is_refused(stored: tuple[bytes, str, dict], sdtype: object) -> None:
    """An sdtype outside ALLOWED_SDTYPES (it would name a Faker method) raises SchemaError before fitting."""
    data, digest, record = stored
    hostile = json.loads(json.dumps(record))
    column = record["reference_columns"][0]["name"]
    hostile["sdv_metadata"]["tables"]["reference"]["columns"][column]["sdtype"] = sdtype
    with pytest.raises(SchemaError, match="sdtype"):
        Synthesizer.from_reference(data, sha256=digest, record=hostile)


def test_a_column_sdv_takes_for_pii_keeps_the_reference_values() -> None:
    """SDV's detection reads a column named ``postcode`` as PII and would sample made-up zip codes, all unseen by
    the preprocessor (the gate stopped every day of the wide table); the synthesizer samples the reference's own
    values instead, for every class."""
    import numpy as np
    import pandas as pd

    from daily_mlops.ml.synthesis import Synthesizer

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"postcode": [f"pos-{i}" for i in rng.integers(0, 25, 400)],
                          "amount": rng.gamma(2.0, 1000.0, 400).round(2),
                          "target": np.where(rng.random(400) < 0.3, "bad", "good")})
    synth = Synthesizer(seed=0, target_column="target").fit(frame)
    batch = synth.generate(500, seed=1, logical_date="2026-11-01")
    assert set(batch["postcode"].dropna()) <= set(frame["postcode"])
    assert batch["postcode"].nunique() > 5
