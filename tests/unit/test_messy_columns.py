"""Unit tests for messy reference columns: date formats, the 95% rule, ID columns, the columns listing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from daily_mlops.errors import SchemaError
from daily_mlops.ml._columns import DATE_PARSE_MIN_FRACTION, ID_MIN_ROWS, detect_date_format
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import column_actions, datetime_formats, infer_schema, validate_batch

N = 200


def _dates(n: int = N, seed: int = 0) -> pd.DatetimeIndex:
    rng = np.random.default_rng(seed)
    return pd.DatetimeIndex(pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D"))


def _frame(**columns) -> pd.DataFrame:
    """The given columns plus a 0/1 target ``y`` and a plain numeric feature."""
    n = len(next(iter(columns.values())))
    rng = np.random.default_rng(1)
    return pd.DataFrame({**columns, "x": rng.normal(size=n).round(1), "y": rng.choice([0, 1], size=n)})


def _feature(schema: dict, name: str) -> dict:
    return next(f for f in schema["features"] if f["name"] == name)


def _action(schema: dict, name: str) -> dict:
    return next(a for a in schema["columns"] if a["column"] == name)


# ------------------------------------------------------------------ dates
@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (list(_dates().strftime("%d%b%Y").str.upper()), "%d%b%Y"),  # 30NOV2024
        (list(_dates().strftime("%d%b%Y").str.lower()), "%d%b%Y"),  # 30nov2024: months in any case
        (list(_dates().strftime("%d%b%Y")), "%d%b%Y"),  # 30Nov2024
        (list(_dates().strftime("%Y-%m-%d")), "%Y-%m-%d"),
        (list(_dates().strftime("%Y%m%d").astype(int)), "%Y%m%d"),  # read_csv gives int64
        (list(_dates().strftime("%Y%m%d").astype(float)), "%Y%m%d"),  # int64 with a null becomes float
    ],
    ids=["dbY-upper", "dbY-lower", "dbY-title", "Y-m-d", "Ymd-int", "Ymd-float"],
)
def test_date_formats_are_detected_and_become_two_numeric_features(values: list, fmt: str) -> None:
    """Each supported format makes a datetime feature: days since 1970-01-01 and the month, listed as a date."""
    frame = _frame(opened=values)
    schema = infer_schema(frame, target_column="y", positive_label="1")
    entry = _feature(schema, "opened")
    assert entry["kind"] == "datetime" and entry["format"] == fmt
    assert _action(schema, "opened") == {
        "column": "opened", "action": "date", "format": fmt, "parsed_fraction": 1.0,
        "features": ["opened", "opened__month"], "encoding": "days since 1970-01-01, then month 1-12",
    }
    dates = _dates()
    validated = validate_batch(frame, schema)
    assert (validated["opened"] == dates).all()
    pre = TabularPreprocessor(schema).fit(frame)
    assert pre.numeric_features_[:2] == ["opened", "opened__month"]
    x = pre._model_frame(validated, pre.categorical_features_, pre.numeric_columns_)
    assert np.allclose(x["opened"], (dates - pd.Timestamp("1970-01-01")).days)
    assert (x["opened__month"].to_numpy() == dates.month).all()
    assert pre.transform(frame).x_num.shape == (N, 3)


def test_95_percent_rule() -> None:
    """A column is a date column with 96% parseable values, a categorical one with 94%."""
    good = list(_dates(100).strftime("%d%b%Y").str.upper())
    at_96 = good[:96] + ["unknown", "n/a", "31FEB2020", "soon"]
    at_94 = good[:94] + ["unknown", "n/a", "31FEB2020", "soon", "later", "never"]
    assert DATE_PARSE_MIN_FRACTION == 0.95
    assert detect_date_format(pd.Series(at_96)) == ("%d%b%Y", 0.96)
    assert detect_date_format(pd.Series(at_94)) is None
    schema = infer_schema(_frame(a=at_96, b=at_94), target_column="y", positive_label="1")
    assert _feature(schema, "a")["kind"] == "datetime" and _feature(schema, "a")["parsed_fraction"] == 0.96
    assert _feature(schema, "b")["kind"] == "categorical"
    assert [a["column"] for a in schema["columns"]] == ["a"]


def test_nulls_do_not_count_against_the_95_percent_rule() -> None:
    """Only non-null values are counted: a date column with 30% nulls is still a date column."""
    values = list(_dates(100).strftime("%Y-%m-%d"))
    values[:30] = [None] * 30
    assert detect_date_format(pd.Series(values, dtype=object)) == ("%Y-%m-%d", 1.0)


@pytest.mark.parametrize(
    "values",
    [
        np.arange(10_000_000, 10_000_000 + N),  # 8-digit account numbers: years 1000, out of range
        np.arange(20_001_300, 20_001_300 + N),  # 2000-13-00 ...: in range, but month 13+ is no date
        np.random.default_rng(0).integers(19_000_101, 21_001_231, N),  # random 8-digit numbers in range
    ],
    ids=["below-1900", "invalid-months", "random-in-range"],
)
def test_integer_columns_are_dates_only_when_the_values_are_real_days(values: np.ndarray) -> None:
    """8-digit integers that are not valid %Y%m%d days in 95% of rows stay numeric (or are IDs when unique)."""
    assert detect_date_format(pd.Series(values)) is None
    schema = infer_schema(_frame(n=values % 3), target_column="y", positive_label="1")  # not unique: numeric
    assert _feature(schema, "n")["kind"] == "numeric"


def test_ymd_years_outside_1900_2100_do_not_count() -> None:
    """%Y%m%d strings with years outside 1900-2100 do not count as parsed."""
    values = pd.Series(["18500101", "18600202", "20200101"] * 40)
    assert detect_date_format(values) is None


def test_a_later_batch_with_a_few_bad_dates_gets_nulls_and_a_mostly_bad_one_fails() -> None:
    """validate_batch keeps its convention: a few unparseable dates become null; mostly bad ones raise naming the
    column."""
    frame = _frame(opened=list(_dates().strftime("%d%b%Y").str.upper()))
    schema = infer_schema(frame, target_column="y", positive_label="1")
    some_bad = frame.copy()
    some_bad.loc[:9, "opened"] = "garbage"
    out = validate_batch(some_bad, schema)
    assert out["opened"].isna().sum() == 10 and out["opened"].notna().sum() == N - 10
    mostly_bad = frame.assign(opened="2024-11-30")  # ISO, not the detected %d%b%Y
    with pytest.raises(SchemaError, match=r"opened.*%d%b%Y"):
        validate_batch(mostly_bad, schema)


def test_datetime_formats_are_the_sdv_hints() -> None:
    """datetime_formats lists the date columns that have a strptime format."""
    frame = _frame(a=list(_dates().strftime("%d%b%Y")), b=list(_dates().strftime("%Y%m%d").astype(int)))
    schema = infer_schema(frame, target_column="y", positive_label="1")
    assert datetime_formats(schema) == {"a": "%d%b%Y", "b": "%Y%m%d"}


# -------------------------------------------------------------------- ids
def test_id_columns_are_dropped_with_their_reason() -> None:
    """Unique integer and text columns, and columns SDV names 'id', are dropped; each is listed with its reason."""
    rng = np.random.default_rng(2)
    frame = _frame(
        rownames=np.arange(1, N + 1),
        loan_id=[f"L{i:06d}" for i in rng.permutation(N)],
        branch_id=rng.integers(0, 5, N),  # repeats, but SDV gives it sdtype 'id' from its name
        account=[f"A-{i}" for i in range(N)],
        whole=np.arange(N, dtype=float) * 3.0,  # floats that are all whole numbers: an id
    )
    schema = infer_schema(frame, target_column="y", positive_label="1")
    reasons = {a["column"]: a["reason"] for a in schema["columns"] if a["action"] == "dropped"}
    assert set(reasons) == {"rownames", "loan_id", "branch_id", "account", "whole"}
    assert reasons["rownames"] == "unique value in every row (integer column)"
    assert reasons["account"] == "unique value in every row (text column)"
    assert reasons["whole"] == "unique value in every row (whole-number column)"
    assert reasons["branch_id"] == "SDV metadata detection marks it as an id (sdtype 'id')"
    assert reasons["loan_id"].startswith("SDV metadata detection marks it as an id")
    out = validate_batch(frame.drop(columns=list(reasons)), schema)  # dropped columns are not required
    assert list(out.columns) == ["x", "y"]
    assert json.loads(json.dumps(schema)) == schema


def test_a_continuous_float_column_is_not_an_id() -> None:
    """A float column with a different, fractional value in every row is a numeric feature, not an id."""
    amount = np.random.default_rng(3).normal(1000, 250, N)
    assert pd.Series(amount).is_unique
    schema = infer_schema(_frame(amount=amount), target_column="y", positive_label="1")
    assert _feature(schema, "amount")["kind"] == "numeric"
    assert schema["columns"] == []


def test_unique_columns_of_a_tiny_reference_are_kept() -> None:
    """Below ID_MIN_ROWS rows a unique integer column is kept (uniqueness means little there)."""
    n = ID_MIN_ROWS - 1
    schema = infer_schema(_frame(count=np.arange(n)), target_column="y", positive_label="1")
    assert _feature(schema, "count")["kind"] == "numeric"


def test_a_unique_date_column_is_a_date_not_an_id() -> None:
    """Daily dates are unique per row but parse as dates: converted, not dropped."""
    days = pd.date_range("2020-01-01", periods=N, freq="D")
    schema = infer_schema(_frame(day=list(days.strftime("%d%b%Y"))), target_column="y", positive_label="1")
    assert _feature(schema, "day")["kind"] == "datetime"


def test_the_target_is_never_dropped() -> None:
    """A target whose name SDV reads as an id is still the target; only features are dropped."""
    frame = _frame(x2=np.arange(N) % 7).rename(columns={"y": "default_id"})
    schema = infer_schema(frame, target_column="default_id", positive_label="1")
    assert schema["target"]["column"] == "default_id"
    assert "default_id" not in [f["name"] for f in schema["features"]]
    assert validate_batch(frame, schema)["default_id"].tolist() == frame["default_id"].astype(str).tolist()


# ---------------------------------------------------------- the listing
def test_column_actions_rebuilds_the_listing_of_an_older_schema() -> None:
    """A schema stored before the 'columns' key existed gets the same listing from its features."""
    frame = _frame(opened=list(_dates().strftime("%d%b%Y")), rownames=np.arange(N), const=1)
    schema = infer_schema(frame, target_column="y", positive_label="1")
    older = {k: v for k, v in schema.items() if k != "columns"}
    assert column_actions(older) == column_actions(schema) == schema["columns"]
    assert [(a["column"], a["action"]) for a in schema["columns"]] == [
        ("opened", "date"), ("rownames", "dropped"), ("const", "dropped"),
    ]


def test_bootstrap_output_lists_the_columns() -> None:
    """The CLI's table of dropped/converted columns names each column, its action and reason or features."""
    from rich.console import Console

    from daily_mlops.cli.output import columns_table

    frame = _frame(opened=list(_dates().strftime("%d%b%Y")), loan_id=[f"L{i}" for i in range(N)])
    schema = infer_schema(frame, target_column="y", positive_label="1")
    console = Console(record=True, width=200)
    console.print(columns_table(column_actions(schema)))
    text = console.export_text()
    assert "loan_id" in text and "dropped" in text and "SDV metadata detection" in text
    assert "opened" in text and "%d%b%Y" in text and "opened__month" in text


def test_the_synthesizer_samples_dates_in_the_detected_format() -> None:
    """With the schema's formats as SDV hints, the metadata records them and sampled dates are whole days that
    validate."""
    from daily_mlops.ml.synthesis import Synthesizer

    frame = _frame(opened=list(_dates().strftime("%d%b%Y").str.upper()), loan_id=[f"L{i}" for i in range(N)])
    schema = infer_schema(frame, target_column="y", positive_label="1")
    reference = validate_batch(frame, schema)
    assert "loan_id" not in reference.columns  # the synthesizer never sees the id
    synth = Synthesizer(seed=0).fit(reference, datetime_formats=datetime_formats(schema))
    column = synth.metadata_["tables"]["reference"]["columns"]["opened"]
    assert column["sdtype"] == "datetime" and column["datetime_format"] == "%d%b%Y"
    batch = validate_batch(synth.generate(50, seed=1, logical_date="2026-05-04"), schema)
    assert batch["opened"].notna().all() and (batch["opened"] == batch["opened"].dt.normalize()).all()
    as_text = batch["opened"].dt.strftime("%d%b%Y").str.upper()
    assert validate_batch(batch.assign(opened=as_text), schema)["opened"].equals(batch["opened"])


def test_serving_rows_take_ymd_dates_as_numbers_or_strings() -> None:
    """A %Y%m%d column, read from the CSV as integers, is served from JSON numbers or strings to the same dates."""
    from daily_mlops.serving import row_model

    frame = _frame(day=list(_dates().strftime("%Y%m%d").astype(int)))
    schema = infer_schema(frame, target_column="y", positive_label="1")
    row = row_model(schema)
    rows = [row.model_validate({"day": 20241130, "x": 1.0}), row.model_validate({"day": "20241201", "x": 2.0})]
    batch = validate_batch(pd.DataFrame([r.model_dump(by_alias=True) for r in rows]), schema, require_target=False)
    assert batch["day"].tolist() == [pd.Timestamp("2024-11-30"), pd.Timestamp("2024-12-01")]


# ------------------------------------------------------- dates compared on one scale
@pytest.fixture(scope="module")
def dated_world() -> dict:
    """A 600-row table with a ``%d%b%Y`` date column, its schema, validated reference and a fitted synthesizer."""
    from daily_mlops.ml.synthesis import Synthesizer

    rng = np.random.default_rng(3)
    n = 600
    income = rng.normal(50_000, 15_000, n).round(2)
    frame = pd.DataFrame({
        "opened": _dates(n, seed=2).strftime("%d%b%Y").str.upper(), "income": income,
        "grade": rng.choice(list("ABCD"), n), "default": np.where(income + rng.normal(0, 1e4, n) < 42_000, "yes", "no"),
    })
    schema = infer_schema(frame, target_column="default", positive_label="yes")
    reference = validate_batch(frame, schema)
    synth = Synthesizer(seed=0, target_column="default").fit(reference, datetime_formats=datetime_formats(schema))
    return {"schema": schema, "reference": reference, "synth": synth}


#: A ``none`` day's batch in the encodings a raw batch may hold: as sampled and validated (datetime64[ns]), the
#: source's text (30NOV2024), and datetimes of another unit (compared as integers, [us] is 1,000x smaller than [ns]).
ENCODINGS = {
    "validated": lambda s: s,
    "source_text": lambda s: s.dt.strftime("%d%b%Y").str.upper(),
    "microseconds": lambda s: s.astype("datetime64[us]"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_a_date_column_does_not_drift_on_a_none_day(dated_world, encoding) -> None:
    """The gate's drift, diagnostic and fidelity see the %d%b%Y column in the reference's encoding: on a batch sampled
    from the synthesizer fit on the table, the date's KSComplement is at least 0.9 (it scored 0.0 for [us] datetimes,
    and text raised in SDMetrics, before the batch sample was parsed with the schema's format)."""
    from daily_mlops.ml.fidelity import quality_scores
    from daily_mlops.ml.quality import BatchProfile, drift_figures, quality_figures
    from daily_mlops.ml.schema import date_columns, parse_date_columns, schema_parts

    schema, reference, synth = dated_world["schema"], dated_world["reference"], dated_world["synth"]
    assert date_columns(schema) == {"opened": "%d%b%Y"}
    batch = validate_batch(synth.generate(1500, seed=11, logical_date="2026-11-01"), schema)
    batch["opened"] = ENCODINGS[encoding](batch["opened"])
    profile = BatchProfile({}, n_rows=len(batch), sample_rows=1000, seed=0, date_formats=date_columns(schema))
    for start in range(0, len(batch), 500):
        profile.update(batch.iloc[start:start + 500])
    assert profile.nulls_["opened"] == 0 and str(profile.sample["opened"].dtype) == "datetime64[ns]"
    kinds = {**{f["name"]: f["kind"] for f in schema_parts(schema)[0]}, "default": "target"}
    drift = drift_figures(profile.sample, reference, kinds)
    assert drift["columns"]["opened"] >= 0.9 and drift["score"] >= 0.9, drift
    figures = quality_figures(profile, reference, sdv_metadata=synth.metadata_)
    assert figures["validity"]["opened"] >= 0.9
    shapes = quality_scores(reference, parse_date_columns(batch, date_columns(schema)), synth.metadata_,
                            target="default")
    assert shapes["column_shapes"] >= 0.9
    assert parse_date_columns(profile.sample, date_columns(schema))["opened"].equals(profile.sample["opened"])
