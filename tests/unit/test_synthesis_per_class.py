"""Unit tests of per-class synthesis: one Gaussian copula per target class, each sampled at its reference rate."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from synthesis_tables import labelled_reference

from daily_mlops.errors import SchemaError
from daily_mlops.ml._copulas import MIN_CLASS_ROWS, class_counts
from daily_mlops.ml.synthesis import Synthesizer


def _reference(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small table whose label depends on x and c (25% positives): :func:`synthesis_tables.labelled_reference`."""
    return labelled_reference(n, seed)


@pytest.fixture(scope="module")
def model() -> Synthesizer:
    return Synthesizer(seed=3, target_column="label").fit(_reference())


def test_class_counts_apportion_exactly() -> None:
    """Largest remainder: the counts sum to n and differ from n * rate by less than one row."""
    for n, rates in ((1000, [0.3, 0.7]), (7, [0.3, 0.7]), (10, [0.333, 0.333, 0.334]), (1, [0.97, 0.03])):
        counts = class_counts(n, rates)
        assert sum(counts) == n
        assert all(abs(c - n * r) < 1 for c, r in zip(counts, rates, strict=True)), (n, counts)


def test_batch_keeps_the_reference_class_rate(model: Synthesizer) -> None:
    """A 2,000-row batch holds exactly 500 positives (25%), in shuffled order, and both classes come back."""
    batch = model.generate(2000, seed=1, logical_date="2026-11-01")
    assert model.classes_ == ["no", "yes"] and model.class_rates_ == [0.75, 0.25]
    assert int((batch["label"] == "yes").sum()) == 500
    assert batch["label"].dtype == object and list(batch.columns) == ["x", "n", "c", "label"]
    first_half = (batch["label"].iloc[:1000] == "yes").mean()
    assert 0.2 < first_half < 0.3  # classes interleaved, not stacked


def test_batch_keeps_the_feature_target_relation(model: Synthesizer) -> None:
    """x is higher and c is mostly 'a' among sampled positives, as in the reference (a single copula blurs this)."""
    batch = model.generate(2000, seed=1, logical_date="2026-11-02")
    pos, neg = batch[batch["label"] == "yes"], batch[batch["label"] == "no"]
    assert pos["x"].mean() - neg["x"].mean() > 1.5
    assert (pos["c"] == "a").mean() > 0.65 and (neg["c"] == "a").mean() < 0.35


def test_sampling_is_seed_deterministic(model: Synthesizer) -> None:
    """Same (seed, logical date) gives the same rows, also after another draw; another date or seed does not."""
    first = model.generate(500, seed=7, logical_date="2026-11-01")
    model.generate(50, seed=8, logical_date="2026-11-03")
    pd.testing.assert_frame_equal(first, model.generate(500, seed=7, logical_date="2026-11-01"))
    assert not first.equals(model.generate(500, seed=7, logical_date="2026-11-02"))
    assert not first.equals(model.generate(500, seed=8, logical_date="2026-11-01"))


def test_chunks_keep_rate_and_determinism(model: Synthesizer) -> None:
    """1,000,000-row days are sampled in chunks: here 2,500 rows in chunks of 1,000 keep the rate per chunk."""
    chunks = list(model.generate_chunks(2500, seed=7, logical_date="2026-11-01", chunk_rows=1000))
    again = list(model.generate_chunks(2500, seed=7, logical_date="2026-11-01", chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500] and [c.index[0] for c in chunks] == [0, 1000, 2000]
    assert [int((c["label"] == "yes").sum()) for c in chunks] == [250, 250, 125]
    for a, b in zip(chunks, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not chunks[0].reset_index(drop=True).equals(chunks[1].reset_index(drop=True))
    pd.testing.assert_frame_equal(chunks[0], model.generate(1000, seed=7, logical_date="2026-11-01"))


def test_stored_record_refits_the_same_per_class_model(model: Synthesizer) -> None:
    """from_reference with the JSON record refits one copula per class and samples the same rows."""
    data = model.reference_csv()
    record = json.loads(json.dumps(model.storage_record()))
    assert record["target_column"] == "label" and record["synthesis"] == "per_class"
    assert record["class_rates"] == {"no": 0.75, "yes": 0.25}
    loaded = Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=record)
    assert loaded.target_column == "label" and loaded.synthesizer_ is None and len(loaded.class_synthesizers_) == 2
    pd.testing.assert_frame_equal(loaded.generate(300, seed=5, logical_date="2026-11-04"),
                                  model.generate(300, seed=5, logical_date="2026-11-04"))
    bad = {**record, "target_column": "missing"}
    with pytest.raises(SchemaError, match="target_column 'missing'"):
        Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=bad)


def test_a_class_too_small_for_its_own_copula_is_refused() -> None:
    """A class with fewer than MIN_CLASS_ROWS rows, or a one-class target, raises SchemaError naming the column."""
    reference = _reference(100)
    reference.loc[: len(reference) - MIN_CLASS_ROWS, "label"] = "no"
    reference.loc[len(reference) - MIN_CLASS_ROWS + 1:, "label"] = "yes"
    assert (reference["label"] == "yes").sum() == MIN_CLASS_ROWS - 1
    with pytest.raises(SchemaError, match="'label'"):
        Synthesizer(target_column="label").fit(reference)
    with pytest.raises(SchemaError, match="'label'"):
        Synthesizer(target_column="label").fit(reference.assign(label="no"))
