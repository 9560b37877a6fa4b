"""Unit tests for daily_mlops.ml.synthesis: the SDV distribution model."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_mlops.dates import day_seed, logical_day
from daily_mlops.ml.synthesis import Synthesizer
from daily_mlops.errors import IntegrityError, MLOpsError

REFERENCE_CSV = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"
TARGET = "creditability"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_CSV)


@pytest.fixture(scope="module")
def model(reference: pd.DataFrame) -> Synthesizer:
    return Synthesizer(seed=42).fit(reference)


@pytest.fixture(scope="module")
def stored(model: Synthesizer) -> tuple[bytes, str]:
    data = model.to_bytes()
    return data, hashlib.sha256(data).hexdigest()


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
        day_seed(7, dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone.utc)),
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
    """__init__ stores the seed and learns nothing; generate before fit raises MLOpsError."""
    fresh = Synthesizer(seed=3)
    assert fresh.seed == 3
    assert not hasattr(fresh, "synthesizer_")
    with pytest.raises(MLOpsError, match="not fitted"):
        fresh.generate(5, seed=1, logical_date="2024-01-01")


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


# -------------------------------------------------------------- storage
def test_round_trip_generates_same_rows(model: Synthesizer, stored: tuple[bytes, str]) -> None:
    """from_bytes(to_bytes()) restores metadata and columns and samples the same rows per (seed, date)."""
    data, digest = stored
    loaded = Synthesizer.from_bytes(data, sha256=digest)
    assert loaded.columns_ == model.columns_
    assert loaded.metadata_ == model.metadata_
    assert loaded.n_reference_rows_ == model.n_reference_rows_
    pd.testing.assert_frame_equal(
        loaded.generate(200, seed=5, logical_date="2024-07-01"),
        model.generate(200, seed=5, logical_date="2024-07-01"),
    )


def test_tampered_bytes_raise_integrity_error_and_load_nothing(
    stored: tuple[bytes, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed bytes fail the sha256 check before sdv.utils.load_synthesizer is ever called."""
    import sdv.utils

    calls: list[str] = []
    monkeypatch.setattr(sdv.utils, "load_synthesizer", lambda path: calls.append(path))
    data, digest = stored
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    actual = hashlib.sha256(bytes(tampered)).hexdigest()
    with pytest.raises(IntegrityError) as excinfo:
        Synthesizer.from_bytes(bytes(tampered), sha256=digest)
    message = str(excinfo.value)
    assert digest in message and actual in message and "not loaded" in message
    assert calls == []


def test_wrong_sha_raises_integrity_error_and_loads_nothing(
    stored: tuple[bytes, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intact bytes with a wrong recorded digest are refused without unpickling."""
    import sdv.utils

    calls: list[str] = []
    monkeypatch.setattr(sdv.utils, "load_synthesizer", lambda path: calls.append(path))
    data, _ = stored
    with pytest.raises(IntegrityError, match="0{64}"):
        Synthesizer.from_bytes(data, sha256="0" * 64)
    assert calls == []
