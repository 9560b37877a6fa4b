"""Unit tests for daily_mlops.ml.preprocessing: schema, validation, encoding, storage, splits."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_mlops.errors import (
    ConfigError,
    IntegrityError,
    MLOpsError,
    SchemaError,
    UnsafeArtifactError,
)
from daily_mlops.ml.encoded import EncodedBatch
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
from daily_mlops.ml.splits import split_indices

REFERENCE_CSV = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"
TARGET = "creditability"
POSITIVE = "bad"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return read_csv(REFERENCE_CSV)


@pytest.fixture(scope="module")
def schema(reference: pd.DataFrame) -> dict:
    return infer_schema(reference, target_column=TARGET, positive_label=POSITIVE)


@pytest.fixture(scope="module")
def preprocessor(reference: pd.DataFrame, schema: dict) -> TabularPreprocessor:
    return TabularPreprocessor(schema).fit(reference)


def _kinds(schema: dict) -> dict[str, str]:
    return {f["name"]: f["kind"] for f in schema["features"]}


def _messy_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Nulls, date strings, 500 distinct codes, a constant and an all-null column, a 0/1 target.

    ``customer_code`` repeats codes and its name has no ``id`` token, so it is a high-cardinality
    categorical column, not an ID column (those are tested in tests/unit/test_messy_columns.py).
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_code": [f"id_{i % 500:04d}" for i in range(n)],
        "signup": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d").astype(object),
        "balance": np.where(rng.random(n) < 0.1, np.nan, rng.normal(1000, 300, size=n)),
        "visits": rng.integers(0, 20, size=n),
        "region": rng.choice(["north", "south", None], size=n),
        "is_member": rng.random(n) < 0.5,
        "version": "v1",
        "notes": np.nan,
        "churned": rng.choice([0, 1], size=n, p=[0.7, 0.3]),
    })
    frame.loc[[3, 10], "signup"] = None
    return frame


# ------------------------------------------------------------- read_csv
def test_read_csv_reads_the_reference(reference: pd.DataFrame) -> None:
    """The bundled CSV reads as 1000 rows with 20 features and the target."""
    assert reference.shape == (1000, 21)
    assert TARGET in reference.columns


def test_read_csv_missing_file_names_it(tmp_path: Path) -> None:
    """A missing file raises MLOpsError naming the path."""
    path = tmp_path / "nope.csv"
    with pytest.raises(MLOpsError, match="nope.csv"):
        read_csv(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty"), (b"a,b,target\n", "no rows"), (b'a,b\n"1,2\n3,4,5,6\n', "could not be parsed")],
)
def test_read_csv_empty_or_unparsable_raises_schema_error(tmp_path: Path, content: bytes, match: str) -> None:
    """Empty, header-only and malformed CSV files raise SchemaError naming the file."""
    path = tmp_path / "bad_batch.csv"
    path.write_bytes(content)
    with pytest.raises(SchemaError, match=match) as excinfo:
        read_csv(path)
    assert "bad_batch.csv" in str(excinfo.value)


# --------------------------------------------------------------- schema
def test_schema_of_reference_has_13_categorical_and_7_numeric(schema: dict, reference: pd.DataFrame) -> None:
    """German credit: 13 categorical and 7 numeric features, nothing dropped, target good/bad."""
    kinds = list(_kinds(schema).values())
    assert kinds.count("categorical") == 13
    assert kinds.count("numeric") == 7
    assert len(kinds) == 20
    assert [f["name"] for f in schema["features"]] == [c for c in reference.columns if c != TARGET]
    assert schema["target"] == {
        "column": TARGET,
        "positive_label": "bad",
        "negative_label": "good",
        "labels": ["good", "bad"],
    }


def test_schema_is_json_able(schema: dict) -> None:
    """The schema survives a JSON round trip unchanged."""
    assert json.loads(json.dumps(schema)) == schema


def test_schema_of_messy_frame_detects_kinds_and_drop_reasons() -> None:
    """Date strings -> datetime, ids/bools/strings -> categorical, constant/all-null -> dropped with a reason."""
    schema = infer_schema(_messy_frame(), target_column="churned", positive_label="1")
    by_name = {f["name"]: f for f in schema["features"]}
    assert _kinds(schema) == {
        "customer_code": "categorical",
        "signup": "datetime",
        "balance": "numeric",
        "visits": "numeric",
        "region": "categorical",
        "is_member": "categorical",
        "version": "dropped",
        "notes": "dropped",
    }
    assert by_name["signup"]["format"] == "%Y-%m-%d"
    assert by_name["version"]["reason"] == "constant"
    assert by_name["notes"]["reason"] == "all-null"
    assert schema["target"]["labels"] == ["0", "1"]


@pytest.mark.parametrize(
    ("target", "positive", "match"),
    [
        ("no_such_column", "bad", "MLOPS_TARGET_COLUMN"),
        (TARGET, "terrible", "MLOPS_POSITIVE_LABEL"),
        ("purpose", "education", "exactly 2"),
    ],
)
def test_infer_schema_rejects_bad_target(reference: pd.DataFrame, target: str, positive: str, match: str) -> None:
    """A missing target column, an absent positive label or a non-binary target raise SchemaError with the fix."""
    with pytest.raises(SchemaError, match=match) as excinfo:
        infer_schema(reference, target_column=target, positive_label=positive)
    assert target in str(excinfo.value)


# ----------------------------------------------------------- validation
def test_validate_batch_orders_columns_and_drops_extras(reference: pd.DataFrame, schema: dict) -> None:
    """Extra columns are dropped, columns come back in schema order and numeric columns as float64."""
    shuffled = reference.sample(frac=1.0, axis=1, random_state=0).assign(extra_column=1)
    original = shuffled.copy()
    out = validate_batch(shuffled, schema)
    assert list(out.columns) == [f["name"] for f in schema["features"]] + [TARGET]
    assert all(out[name].dtype == np.float64 for name, kind in _kinds(schema).items() if kind == "numeric")
    pd.testing.assert_frame_equal(shuffled, original)  # input untouched


def test_validate_batch_is_idempotent() -> None:
    """Validating an already validated batch changes nothing, so transform accepts either form."""
    frame = _messy_frame(n=120)
    schema = infer_schema(frame, target_column="churned", positive_label="1")
    once = validate_batch(frame, schema)
    pd.testing.assert_frame_equal(validate_batch(once, schema), once)
    assert once["signup"].dtype == "datetime64[ns]"
    pre = TabularPreprocessor(schema).fit(frame)
    a, b = pre.transform(frame), pre.transform(once)
    assert np.array_equal(a.x_cat, b.x_cat) and np.array_equal(a.x_num, b.x_num) and np.array_equal(a.y, b.y)


def test_validate_batch_without_target(reference: pd.DataFrame, schema: dict) -> None:
    """require_target=False accepts a batch without the target; the default requires it."""
    features_only = reference.drop(columns=[TARGET])
    assert TARGET not in validate_batch(features_only, schema, require_target=False).columns
    with pytest.raises(SchemaError, match=TARGET):
        validate_batch(features_only, schema)


def test_validate_batch_lists_all_missing_columns(reference: pd.DataFrame, schema: dict) -> None:
    """Every missing column is named in one SchemaError."""
    batch = reference.drop(columns=["purpose", "age_in_years"])
    with pytest.raises(SchemaError) as excinfo:
        validate_batch(batch, schema)
    assert "purpose" in str(excinfo.value) and "age_in_years" in str(excinfo.value)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("credit_amount", "abc", ["credit_amount", "abc"]),
        ("duration_in_month", np.inf, ["duration_in_month", "inf"]),
        (TARGET, "maybe", [TARGET, "maybe"]),
    ],
)
def test_validate_batch_bad_value_names_the_column(
    reference: pd.DataFrame, schema: dict, column: str, value: object, expected: list[str]
) -> None:
    """Non-numeric text or infinity in a numeric column, or an unknown target label, raise SchemaError naming both."""
    batch = reference.head(20).copy()
    batch[column] = batch[column].astype(object)
    batch.loc[batch.index[4], column] = value
    with pytest.raises(SchemaError) as excinfo:
        validate_batch(batch, schema)
    for text in expected:
        assert text in str(excinfo.value)


def test_validate_batch_allows_null_features(reference: pd.DataFrame, schema: dict) -> None:
    """Nulls in numeric and categorical feature columns pass validation and stay null."""
    batch = reference.head(10).copy()
    batch.loc[batch.index[0], "credit_amount"] = np.nan
    batch.loc[batch.index[1], "purpose"] = None
    out = validate_batch(batch, schema)
    assert np.isnan(out["credit_amount"].iloc[0])
    assert pd.isna(out["purpose"].iloc[1])


# ---------------------------------------------------------- preprocessor
def test_transform_shapes_and_dtypes(preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """x_cat is (n, 13) int64 in [1, cardinality), x_num (n, 7) float32, y (n,) int64 with 1 = 'bad'."""
    batch = preprocessor.transform(reference)
    assert isinstance(batch, EncodedBatch) and len(batch) == 1000
    assert batch.x_cat.shape == (1000, 13) and batch.x_cat.dtype == np.int64
    assert batch.x_num.shape == (1000, 7) and batch.x_num.dtype == np.float32
    assert batch.y is not None and batch.y.dtype == np.int64
    assert batch.y.sum() == (reference[TARGET] == POSITIVE).sum()
    assert (batch.x_cat >= 1).all()
    assert (batch.x_cat < np.array(preprocessor.cardinalities_)).all()
    assert preprocessor.cardinalities_ == [reference[c].nunique() + 1 for c in preprocessor.categorical_features_]
    assert preprocessor.n_numeric_ == 7 and len(preprocessor.numeric_features_) == 7
    assert np.isfinite(batch.x_num).all()


def test_transform_without_target_gives_no_labels(preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """A batch without the target column encodes with y = None."""
    batch = preprocessor.transform(reference.drop(columns=[TARGET]).head(5))
    assert batch.y is None and batch.x_cat.shape == (5, 13)


def test_unseen_category_maps_to_index_zero(preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """A category never seen in fit is encoded as 0; other columns keep their codes."""
    rows = reference.head(5).copy()
    rows["purpose"] = "space travel"
    j = preprocessor.categorical_features_.index("purpose")
    encoded = preprocessor.transform(rows)
    expected = preprocessor.transform(reference.head(5))
    assert (encoded.x_cat[:, j] == 0).all()
    others = [k for k in range(encoded.x_cat.shape[1]) if k != j]
    assert np.array_equal(encoded.x_cat[:, others], expected.x_cat[:, others])


def test_nulls_get_indicator_features() -> None:
    """A numeric column with nulls at fit time gets a 0/1 '<column>__is_null' feature; nulls are imputed."""
    frame = pd.DataFrame({
        "x": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0, 7.0, 8.0],
        "z": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "c": ["a", "b", None, "a", "b", "a", "b", "a"],
        "t": ["p", "n", "p", "n", "p", "n", "p", "n"],
    })
    schema = infer_schema(frame, target_column="t", positive_label="p")
    pre = TabularPreprocessor(schema).fit(frame)
    assert pre.numeric_features_ == ["x", "z", "x__is_null"]
    batch = pre.transform(frame)
    assert batch.x_num.shape == (8, 3)
    assert batch.x_num[:, 2].tolist() == [0, 1, 0, 0, 1, 0, 0, 0]
    assert np.isfinite(batch.x_num).all()
    assert batch.y.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    # a null category is its own category, not "unknown"
    assert batch.x_cat[2, 0] >= 1 and pre.cardinalities_ == [4]


def test_messy_frame_fits_and_transforms() -> None:
    """Nulls, date strings, 500 distinct codes, a constant and an all-null column fit and transform; cardinality
    is capped."""
    frame = _messy_frame()
    schema = infer_schema(frame, target_column="churned", positive_label="1")
    pre = TabularPreprocessor(schema, max_categories=64).fit(frame)
    assert pre.categorical_features_ == ["customer_code", "region", "is_member"]
    assert pre.numeric_features_ == [
        "signup", "signup__month", "balance", "visits", "signup__is_null", "balance__is_null",
    ]
    assert pre.cardinalities_[0] == 64 + 1
    batch = pre.transform(frame)
    assert batch.x_cat.shape == (600, 3) and batch.x_num.shape == (600, 6)
    assert (batch.x_cat < np.array(pre.cardinalities_)).all() and (batch.x_cat >= 1).all()
    assert np.isfinite(batch.x_num).all()
    assert batch.y.tolist() == frame["churned"].tolist()
    later = _messy_frame(n=50, seed=1).drop(columns=["version", "notes"])  # dropped columns are optional
    assert pre.transform(later).x_cat.shape == (50, 3)


def test_datetime_becomes_days_since_epoch_before_scaling() -> None:
    """Date strings are encoded as (robust-scaled) days: one day apart stays one unit of day-scale apart."""
    frame = pd.DataFrame({
        "when": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-05", "2020-01-09"],
        "t": ["y", "n", "y", "n", "y"],
    })
    schema = infer_schema(frame, target_column="t", positive_label="y")
    batch = TabularPreprocessor(schema).fit(frame).transform(frame)
    steps = np.diff(batch.x_num[:, 0])
    assert np.allclose(steps / steps[0], [1, 1, 2, 4])


def test_signature_is_json_able(preprocessor: TabularPreprocessor) -> None:
    """signature() names features, shapes and dtypes and survives JSON."""
    sig = preprocessor.signature()
    assert json.loads(json.dumps(sig)) == sig
    assert sig["inputs"]["x_cat"]["shape"] == [None, 13]
    assert sig["inputs"]["x_cat"]["cardinalities"] == preprocessor.cardinalities_
    assert sig["inputs"]["x_num"] == {
        "shape": [None, 7], "dtype": "float32", "features": preprocessor.numeric_features_,
    }
    assert sig["target"]["positive_label"] == POSITIVE


def test_transform_before_fit_raises(schema: dict, reference: pd.DataFrame) -> None:
    """An unfitted preprocessor refuses to transform."""
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TabularPreprocessor(schema).transform(reference)


def test_estimator_contract_get_params_check_is_fitted_fit_transform(
    preprocessor: TabularPreprocessor, schema: dict, reference: pd.DataFrame
) -> None:
    """A BaseEstimator/TransformerMixin: get_params/clone see the parameters, check_is_fitted tells fitted
    apart, and fit_transform returns the same EncodedBatch as fit then transform."""
    from sklearn.base import BaseEstimator, TransformerMixin, clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    assert isinstance(preprocessor, BaseEstimator) and isinstance(preprocessor, TransformerMixin)
    assert preprocessor.get_params() == {"schema": schema, "max_categories": 64}
    fresh = clone(preprocessor).set_params(max_categories=8)
    assert fresh.get_params()["max_categories"] == 8 and not hasattr(fresh, "column_transformer_")
    check_is_fitted(preprocessor)
    with pytest.raises(NotFittedError, match="not fitted"):
        check_is_fitted(fresh)
    with pytest.raises(NotFittedError, match="not fitted"):
        fresh.signature()
    encoded = TabularPreprocessor(schema).fit_transform(reference)
    expected = preprocessor.transform(reference)
    assert isinstance(encoded, EncodedBatch)
    assert np.array_equal(encoded.x_cat, expected.x_cat) and np.array_equal(encoded.x_num, expected.x_num)


# -------------------------------------------------------------- storage
def test_round_trip_gives_identical_output(preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """from_bytes(to_bytes()) transforms exactly like the original and restores the learned attributes."""
    data = preprocessor.to_bytes()
    loaded = TabularPreprocessor.from_bytes(data, sha256=hashlib.sha256(data).hexdigest())
    a, b = preprocessor.transform(reference), loaded.transform(reference)
    assert np.array_equal(a.x_cat, b.x_cat) and np.array_equal(a.x_num, b.x_num) and np.array_equal(a.y, b.y)
    assert loaded.cardinalities_ == preprocessor.cardinalities_
    assert loaded.numeric_features_ == preprocessor.numeric_features_
    assert loaded.signature() == preprocessor.signature()


def test_stored_bytes_are_json_and_skops_not_pickle(preprocessor: TabularPreprocessor) -> None:
    """The artifact is a JSON envelope around a skops zip of schema.json and .npy files; pickle cannot read it."""
    data = preprocessor.to_bytes()
    assert not data.startswith(b"\x80")  # pickle protocol 2+ opcode PROTO
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    envelope = json.loads(data)
    payload = base64.b64decode(envelope["column_transformer_skops"])
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = archive.namelist()
    assert "schema.json" in names
    assert all(n == "schema.json" or n.endswith(".npy") for n in names)


def test_wrong_sha_raises_integrity_error_and_loads_nothing(
    preprocessor: TabularPreprocessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong digest or changed bytes raise IntegrityError naming both digests; skops never loads."""
    import skops.io

    calls: list[bytes] = []
    monkeypatch.setattr(skops.io, "loads", lambda *a, **k: calls.append(a[0]))
    data = preprocessor.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(IntegrityError) as excinfo:
        TabularPreprocessor.from_bytes(data, sha256="f" * 64)
    assert "f" * 64 in str(excinfo.value) and digest in str(excinfo.value)
    with pytest.raises(IntegrityError):
        TabularPreprocessor.from_bytes(data.replace(b'"max_categories": 64', b'"max_categories": 65'), sha256=digest)
    assert calls == []


def test_pickle_artifact_is_refused(preprocessor: TabularPreprocessor, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pickle with a matching digest is refused with UnsafeArtifactError and never unpickled."""
    data = pickle.dumps(preprocessor)
    calls: list[bytes] = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a[0]))
    with pytest.raises(UnsafeArtifactError, match="refused"):
        TabularPreprocessor.from_bytes(data, sha256=hashlib.sha256(data).hexdigest())
    assert calls == []


def test_unexpected_type_is_refused(preprocessor: TabularPreprocessor) -> None:
    """A skops payload holding a type outside the allowed list is refused with UnsafeArtifactError."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    envelope = json.loads(preprocessor.to_bytes())
    envelope["column_transformer_skops"] = base64.b64encode(skops.io.dumps(LogisticRegression())).decode()
    data = json.dumps(envelope).encode()
    with pytest.raises(UnsafeArtifactError, match="LogisticRegression"):
        TabularPreprocessor.from_bytes(data, sha256=hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------- splits
def test_split_indices_fractions_stratified_disjoint_covering() -> None:
    """Splits have 50/15/10/15/10% of the rows (pretrain, finetune, calibration, validation, test), keep the class
    rate, are disjoint and cover every row."""
    y = np.array([1] * 300 + [0] * 700)
    parts = split_indices(y, seed=42)
    assert list(parts) == ["pretrain", "finetune", "calibration", "validation", "test"]
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == {"pretrain": 500, "finetune": 150, "calibration": 100, "validation": 150, "test": 100}
    joined = np.concatenate(list(parts.values()))
    assert len(np.unique(joined)) == len(y) == len(joined)
    for idx in parts.values():
        assert idx.dtype == np.int64
        assert abs(y[idx].mean() - 0.3) <= 0.01


def test_split_indices_deterministic_per_seed() -> None:
    """The same seed gives the same split; another seed another one."""
    y = np.random.default_rng(0).integers(0, 2, size=400)
    a, b, c = split_indices(y, seed=1), split_indices(y, seed=1), split_indices(y, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


@pytest.mark.parametrize("fractions", [{"a": 0.5, "b": 0.5, "c": 0.5}, {"a": 0.8, "b": 0.2, "c": 0.0}, {"a": 1.0},
                                       {"a": "x", "b": 0.5}])
def test_split_indices_rejects_bad_fractions(fractions: dict) -> None:
    """Fractions that are not two or more positive numbers summing to 1 raise ConfigError."""
    with pytest.raises(ConfigError, match="fractions"):
        split_indices(np.array([0, 1] * 50), seed=0, fractions=fractions)


def test_split_indices_too_few_rows_per_class() -> None:
    """A class too small to stratify raises SchemaError instead of a bare ValueError."""
    with pytest.raises(SchemaError, match="class counts"):
        split_indices(np.array([0] * 20 + [1]), seed=0)


# ----------------------------------------------------------- another CSV
def test_another_csv_with_another_target_works(tmp_path: Path) -> None:
    """A different CSV with a 0/1 target named 'churned' goes through read, schema, fit, transform, split."""
    path = tmp_path / "churn.csv"
    _messy_frame(n=300, seed=3).to_csv(path, index=False)
    frame = read_csv(path)
    schema = infer_schema(frame, target_column="churned", positive_label="1")
    assert schema["target"]["column"] == "churned"
    parts = split_indices(frame["churned"].to_numpy(), seed=7)
    train = frame.iloc[parts["pretrain"]]
    pre = TabularPreprocessor(schema).fit(train)
    batch = pre.transform(frame.iloc[parts["test"]])
    assert len(batch) == len(parts["test"])
    assert batch.y.tolist() == frame["churned"].iloc[parts["test"]].tolist()
    # 300 rows of customer_code "id_0000".."id_0299" are all distinct: an ID column, dropped
    assert {f["name"]: f["kind"] for f in schema["features"]}["customer_code"] == "dropped"
    assert batch.x_cat.shape[1] == 2 and batch.x_num.shape[1] == pre.n_numeric_
    with pytest.raises(SchemaError, match="churned"):
        validate_batch(frame.assign(churned=2), schema)


# ------------------------------------------------------------ input flags
def _with_unseen_and_nulls(reference: pd.DataFrame) -> pd.DataFrame:
    """Six reference rows: 'crypto' as purpose in rows 0 and 2, 'castle' as housing in row 4, nulls in rows 1 and 3."""
    rows = reference.drop(columns=[TARGET]).head(6).reset_index(drop=True).astype({"credit_amount": float})
    rows.loc[[0, 2], "purpose"] = "crypto"
    rows.loc[4, "housing"] = "castle"
    rows.loc[1, "credit_amount"] = np.nan
    rows.loc[3, "purpose"] = None
    return rows


def test_input_flags_name_exactly_the_values_transform_reads_as_unknown(
        preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """Flagged unseen categories are the non-null values encoded as index 0; nulls are listed per column."""
    rows = _with_unseen_and_nulls(reference)
    flags = preprocessor.input_flags(rows)
    assert flags.unseen == {"purpose": {0: "crypto", 2: "crypto"}, "housing": {4: "castle"}}
    assert flags.null == {"purpose": [3], "credit_amount": [1]}
    assert flags.known["purpose"] == preprocessor.known_categories()["purpose"] and "business" in flags.known["purpose"]
    assert bool(flags) and flags.flagged_rows == 5 and flags.n_rows == 6

    x_cat = preprocessor.transform(rows).x_cat  # (6, 13)
    for j, column in enumerate(preprocessor.categorical_features_):
        unknown = {int(i) for i in np.flatnonzero(x_cat[:, j] == 0)}
        nulls = set(flags.null.get(column, []))
        assert unknown - nulls == set(flags.unseen.get(column, {})), column

    clean = preprocessor.input_flags(reference.head(50))
    assert not clean and clean.flagged_rows == 0 and clean.per_row() == [{"unseen": {}, "null": []}] * 50


def test_input_flags_treat_infrequent_categories_as_known(reference: pd.DataFrame, schema: dict) -> None:
    """A category grouped as infrequent (max_categories=2) has a code of its own group, so it is not flagged."""
    pre = TabularPreprocessor(schema, max_categories=2).fit(reference)
    rare = reference["purpose"].value_counts().index[-1]
    rows = reference.head(3).assign(purpose=rare)
    assert pre.input_flags(rows).unseen == {}
    j = pre.categorical_features_.index("purpose")
    assert (pre.transform(rows).x_cat[:, j] > 0).all()


def test_input_flags_cover_dates_and_skip_dropped_columns() -> None:
    """A null or unparsable date is flagged as null; a dropped column's values are never flagged."""
    frame = _messy_frame(n=300, seed=3)
    pre = TabularPreprocessor(infer_schema(frame, target_column="churned", positive_label="1")).fit(frame)
    rows = frame.head(4).copy()
    rows.loc[0, "signup"] = None
    rows.loc[1, "signup"] = "not a date"
    rows.loc[1, "customer_code"] = "never-seen"  # an ID column: dropped, not a model input
    rows.loc[2, "region"] = "west"
    flags = pre.input_flags(rows)
    assert flags.null.get("signup") == [0, 1, 3]  # row 3: null in _messy_frame itself
    assert flags.unseen == {"region": {2: "west"}}
    assert "customer_code" not in flags.null


def test_input_flags_render_per_row_per_column_and_as_refusals(
        preprocessor: TabularPreprocessor, reference: pd.DataFrame) -> None:
    """per_row has one entry per row; summary_lines one line per column; refusals name column and value."""
    flags = preprocessor.input_flags(_with_unseen_and_nulls(reference))
    per_row = flags.per_row()
    assert per_row[0] == {"unseen": {"purpose": "crypto"}, "null": []}
    assert per_row[1] == {"unseen": {}, "null": ["credit_amount"]}
    assert per_row[3] == {"unseen": {}, "null": ["purpose"]} and per_row[5] == {"unseen": {}, "null": []}
    assert flags.summary_lines() == [
        "purpose: 2 rows with a category the model never saw (read as unknown), e.g. 'crypto'",
        "housing: 1 row with a category the model never saw (read as unknown), e.g. 'castle'",
        "purpose: 1 row with a null (imputed)",
        "credit_amount: 1 row with a null (imputed)",
    ]
    refusals = flags.refusals()
    assert [(r["row"], r["column"], r["value"], r["type"]) for r in refusals] == [
        (0, "purpose", "crypto", "unseen_category"), (1, "credit_amount", None, "null_value"),
        (2, "purpose", "crypto", "unseen_category"), (3, "purpose", None, "null_value"),
        (4, "housing", "castle", "unseen_category"),
    ]
    assert "'purpose'" in refusals[0]["msg"] and "'crypto'" in refusals[0]["msg"] and "'business'" in refusals[0]["msg"]
