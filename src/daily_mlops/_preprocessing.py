"""Schema, batch validation, stratified splits and the tabular preprocessor.

The schema is inferred once from the reference CSV and stored as JSON. Every
later batch is checked against it (:func:`validate_batch`) before it is
encoded by a :class:`TabularPreprocessor` that was fit once on training rows
and is reused unchanged. Nothing here is specific to one data set: any CSV
with a binary target column works given ``(target_column, positive_label)``.

Sources
-------
- scikit-learn 1.9 user guide, "Column Transformer with Mixed Types",
  ``OrdinalEncoder`` (``handle_unknown="use_encoded_value"``,
  ``max_categories`` groups infrequent categories), ``SimpleImputer``,
  ``MissingIndicator``, ``RobustScaler``, ``train_test_split(stratify=...)``.
- skops 0.16 ``skops.io`` (https://skops.readthedocs.io/en/stable/persistence.html):
  ``dumps`` / ``loads(data, trusted=[...])``; ``get_untrusted_types``.
  ``trusted`` *adds* to skops' defaults (which already include scikit-learn
  estimators), so the artifact's full type list is also checked against
  :data:`SKOPS_ALLOWED_TYPES` before loading.
- The TabTransformer input convention (categorical index 0 reserved for
  "unknown", continuous features separate): Huang et al. 2020,
  "TabTransformer: Tabular Data Modeling Using Contextual Embeddings".
"""

from __future__ import annotations

import base64
import io
import json
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import (
    ConfigError,
    NotFoundError,
    SchemaError,
    UnsafeArtifactError,
)

__all__ = [
    "EncodedBatch",
    "TabularPreprocessor",
    "infer_schema",
    "read_csv",
    "split_indices",
    "validate_batch",
]

SCHEMA_VERSION = 1
#: Fraction of a string column's non-null values that must parse with the
#: format guessed from its first value for the column to count as a datetime.
DATE_PARSE_MIN_FRACTION = 0.9
#: In a later batch, a datetime column fails validation when fewer than this
#: fraction of its non-null values parse with the stored format.
DATE_VALIDATE_MIN_FRACTION = 0.5
#: Category the imputer gives to a null categorical value (then encoded like any category).
MISSING_CATEGORY = "__missing__"
#: Suffix of the 0/1 feature that flags a null numeric value.
NULL_INDICATOR_SUFFIX = "__is_null"
#: Unix epoch; datetimes become float days since it.
EPOCH = pd.Timestamp("1970-01-01")

ARTIFACT_FORMAT = "daily_mlops.TabularPreprocessor"
ARTIFACT_FORMAT_VERSION = 1

#: The scikit-learn estimators a fitted preprocessor is made of.
_SKLEARN_TYPES: tuple[str, ...] = (
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._data.RobustScaler",
)
#: Every type a fitted preprocessor's skops payload may contain; anything
#: outside the list is refused before loading.
SKOPS_ALLOWED_TYPES: tuple[str, ...] = (
    *_SKLEARN_TYPES,
    "numpy.dtype", "numpy.ndarray", "numpy.float64", "numpy.int64", "numpy.bool_",
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.slice", "builtins.str", "builtins.int",
    "builtins.float", "builtins.bool",
)
#: The types passed to ``skops.io.loads(trusted=...)`` (skops does not trust
#: ``numpy.dtype`` by default; the estimators are default-trusted and listed for clarity).
SKOPS_TRUSTED_TYPES: list[str] = ["numpy.dtype", *_SKLEARN_TYPES]


# ---------------------------------------------------------------------------
# CSV and schema
# ---------------------------------------------------------------------------
def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file of rows with a header line.

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        As parsed by ``pandas.read_csv`` (numeric columns numeric, the rest object).

    Raises
    ------
    NotFoundError
        If the file does not exist or is not a file.
    SchemaError
        If the file is empty, has a header but no rows, cannot be parsed as
        CSV, or is not UTF-8 text. The message names the file.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise NotFoundError(f"CSV file {file} does not exist; check the path (MLOPS_REFERENCE_DATA)")
    if not file.is_file():
        raise NotFoundError(f"{file} is not a file; point MLOPS_REFERENCE_DATA at a CSV file")
    try:
        frame = pd.read_csv(file)
    except pd.errors.EmptyDataError as exc:
        raise SchemaError(f"CSV file {file} is empty; it needs a header line and at least one row") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(
            f"CSV file {file} could not be parsed as UTF-8 CSV ({exc}); fix or re-export the file"
        ) from exc
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise SchemaError(f"CSV file {file} has a header but no rows; it needs at least one data row")
    return frame


def _label_strings(values: pd.Series) -> pd.Series:
    """Target values as strings (integral floats as ints); nulls stay null."""
    out = pd.Series(np.nan, index=values.index, dtype=object)
    mask = values.notna()
    present = values[mask]
    if pd.api.types.is_bool_dtype(values.dtype):
        out[mask] = present.map(str)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = present.astype(float)
        if np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
            out[mask] = numbers.astype(np.int64).map(str)
        else:
            out[mask] = present.map(str)
    else:
        out[mask] = present.map(str)
    return out


def _guess_date_format(values: pd.Series) -> str | None:
    """The datetime format of a string column, or ``None`` if it is not date-like."""
    from pandas.tseries.api import guess_datetime_format

    strings = values.dropna()
    if strings.empty or not all(isinstance(v, str) for v in strings.iloc[:100]):
        return None
    fmt = guess_datetime_format(strings.iloc[0].strip())
    # a bare year or time is not a date; require a year and a month
    if fmt is None or not any(d in fmt for d in ("%Y", "%y")) or not any(d in fmt for d in ("%m", "%b", "%B")):
        return None
    parsed = _parse_dates(strings, fmt)
    if parsed.notna().mean() < DATE_PARSE_MIN_FRACTION:
        return None
    return fmt


def _parse_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Parse to naive UTC ``datetime64[ns]``; unparsable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def infer_schema(reference: pd.DataFrame, *, target_column: str, positive_label: str) -> dict:
    """Infer the feature kinds and the binary target from the reference rows.

    Feature kinds: ``numeric`` (a numeric, non-bool dtype), ``datetime``
    (a datetime dtype, or strings of which at least
    :data:`DATE_PARSE_MIN_FRACTION` parse with the format pandas guesses from
    the first value), ``categorical`` (object, string, bool, category) and
    ``dropped`` (all null, a single value, or an unsupported dtype; the
    ``reason`` says which).

    Parameters
    ----------
    reference : DataFrame of shape (n_rows, n_columns)
        The real rows, target column included.
    target_column : str
        Name of the binary target column (``MLOPS_TARGET_COLUMN``).
    positive_label : str
        The target value counted as positive (``MLOPS_POSITIVE_LABEL``);
        compared with the target values as strings (``1.0`` reads as ``"1"``).

    Returns
    -------
    dict
        JSON-able: ``{"schema_version", "n_reference_rows", "features": [{"name",
        "kind", "dtype", "format", "reason"}, ...], "target": {"column",
        "positive_label", "negative_label", "labels"}}``; ``features`` keeps
        the reference column order, ``labels`` is ``[negative, positive]``.

    Raises
    ------
    SchemaError
        If the target column is missing, has nulls, does not hold exactly two
        distinct values, or ``positive_label`` is not one of them; if the
        frame has no rows or no feature column.
    """
    if not isinstance(reference, pd.DataFrame) or reference.shape[0] == 0:
        raise SchemaError("the reference data has no rows; check MLOPS_REFERENCE_DATA")
    columns = [str(c) for c in reference.columns]
    frame = reference.set_axis(columns, axis=1)
    if target_column not in frame.columns:
        raise SchemaError(
            f"target column {target_column!r} is not in the reference data (columns: {columns}); "
            "set MLOPS_TARGET_COLUMN to one of them"
        )
    labels = _label_strings(frame[target_column])
    n_null = int(labels.isna().sum())
    if n_null:
        raise SchemaError(
            f"target column {target_column!r} has {n_null} null value(s); every reference row needs a label "
            "(drop unlabeled rows or set MLOPS_TARGET_COLUMN to another column)"
        )
    distinct = sorted(labels.unique())
    if len(distinct) != 2:
        raise SchemaError(
            f"target column {target_column!r} has {len(distinct)} distinct value(s) {distinct[:10]}; "
            "a binary target needs exactly 2 (set MLOPS_TARGET_COLUMN to a binary column)"
        )
    positive = str(positive_label)
    if positive not in distinct:
        raise SchemaError(
            f"positive label {positive!r} does not occur in target column {target_column!r} "
            f"(values: {distinct}); set MLOPS_POSITIVE_LABEL to one of them"
        )
    negative = next(label for label in distinct if label != positive)

    features = []
    for name in columns:
        if name == target_column:
            continue
        series = frame[name]
        entry: dict[str, Any] = {
            "name": name, "kind": None, "dtype": str(series.dtype), "format": None, "reason": None,
        }
        if series.isna().all():
            entry.update(kind="dropped", reason="all-null")
        elif series.nunique(dropna=False) <= 1:
            entry.update(kind="dropped", reason="constant")
        elif pd.api.types.is_bool_dtype(series.dtype):
            entry["kind"] = "categorical"
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            entry["kind"] = "datetime"
        elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
            entry["kind"] = "numeric"
        elif isinstance(series.dtype, pd.CategoricalDtype):
            entry["kind"] = "categorical"
        elif pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
            fmt = _guess_date_format(series)
            if fmt is not None:
                entry.update(kind="datetime", format=fmt)
            else:
                entry["kind"] = "categorical"
        else:
            entry.update(kind="dropped", reason=f"unsupported dtype {series.dtype}")
        features.append(entry)
    if not any(f["kind"] != "dropped" for f in features):
        raise SchemaError(
            "the reference data has no usable feature column (all are constant, all-null or unsupported); "
            "check MLOPS_REFERENCE_DATA"
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "n_reference_rows": int(frame.shape[0]),
        "features": features,
        "target": {
            "column": target_column,
            "positive_label": positive,
            "negative_label": negative,
            "labels": [negative, positive],
        },
    }


def _schema_parts(schema: dict) -> tuple[list[dict], dict]:
    """The feature entries and the target entry of a schema from :func:`infer_schema`."""
    try:
        features = [dict(f) for f in schema["features"]]
        target = dict(schema["target"])
        well_formed = all({"name", "kind"} <= f.keys() for f in features) and {
            "column", "labels", "positive_label"
        } <= target.keys()
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"the schema is not a daily_mlops schema ({exc!r}); rebuild it with infer_schema") from exc
    if not well_formed:
        raise SchemaError(
            "the schema is not a daily_mlops schema (a feature or the target lacks keys); rebuild it with infer_schema"
        )
    return features, target


def _sample(values: pd.Series, k: int = 3) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values.unique()[:k]]


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def validate_batch(df: pd.DataFrame, schema: dict, *, require_target: bool = True) -> pd.DataFrame:
    """Check a batch against the schema and return it in model-ready dtypes.

    Nothing is written anywhere. Extra columns are dropped; nulls in feature
    columns are allowed (they are imputed later).

    Parameters
    ----------
    df : DataFrame of shape (n_rows, n_columns)
        The batch.
    schema : dict
        From :func:`infer_schema`.
    require_target : bool, default=True
        If True the target column must be present; if False it is validated
        only when present.

    Returns
    -------
    DataFrame of shape (n_rows, n_used_features [+ 1])
        A copy with the non-dropped feature columns in schema order, then the
        target if present: numeric columns as float64, datetime columns as
        naive UTC ``datetime64[ns]``, categorical columns as object strings
        (null stays null), target as its label strings. Dropped columns are
        not required and not returned.

    Raises
    ------
    SchemaError
        If ``df`` is not a DataFrame; if required columns are missing (all are
        listed); if a numeric column holds non-numeric or infinite values, or
        a datetime column mostly unparsable values (names the column and a
        sample of bad values); if the target has nulls or values other than
        the schema's two labels (names the column and the unexpected values).
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"the batch is a {type(df).__name__}, not a pandas DataFrame")
    features, target = _schema_parts(schema)
    used = [f for f in features if f["kind"] != "dropped"]
    target_column = target["column"]
    frame = df.set_axis([str(c) for c in df.columns], axis=1)

    expected = [f["name"] for f in used] + ([target_column] if require_target else [])
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"the batch is missing column(s) {missing}; it must have the reference data's columns "
            f"(extra columns are ignored)"
        )

    problems: list[str] = []
    out: dict[str, pd.Series] = {}
    for feature in used:
        name, kind = feature["name"], feature["kind"]
        series = frame[name]
        if kind == "numeric":
            if pd.api.types.is_bool_dtype(series.dtype):
                series = series.astype(float)
            numbers = pd.to_numeric(series, errors="coerce").astype(float)
            bad = (series.notna() & numbers.isna()) | np.isinf(numbers)
            if bad.any():
                problems.append(
                    f"numeric column {name!r} has {int(bad.sum())} non-numeric or infinite value(s), "
                    f"e.g. {_sample(series[bad])}"
                )
            out[name] = numbers
        elif kind == "datetime":
            parsed = _parse_dates(series, feature.get("format"))
            present = series.notna()
            n_present = int(present.sum())
            if n_present and parsed[present].notna().mean() < DATE_VALIDATE_MIN_FRACTION:
                bad = present & parsed.isna()
                problems.append(
                    f"datetime column {name!r} has {int(bad.sum())} of {n_present} value(s) that do not parse "
                    f"with format {feature.get('format') or 'ISO8601'!r}, e.g. {_sample(series[bad])}"
                )
            out[name] = parsed
        else:  # categorical
            text = pd.Series(np.nan, index=series.index, dtype=object)
            present = series.notna()
            text[present] = series[present].map(str)
            out[name] = text

    if target_column in frame.columns:
        labels = _label_strings(frame[target_column])
        n_null = int(labels.isna().sum())
        if n_null:
            problems.append(f"target column {target_column!r} has {n_null} null value(s); every row needs a label")
        unexpected = sorted(set(labels.dropna()) - set(target["labels"]))
        if unexpected:
            problems.append(
                f"target column {target_column!r} has unexpected value(s) {unexpected[:10]}; "
                f"allowed labels are {list(target['labels'])}"
            )
        out[target_column] = labels

    if problems:
        raise SchemaError("the batch does not match the schema: " + "; ".join(problems))
    return pd.DataFrame(out, index=frame.index)


# ---------------------------------------------------------------------------
# encoded batches and the preprocessor
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedBatch:
    """Model inputs of one batch.

    Attributes
    ----------
    x_cat : ndarray of shape (n_rows, n_categorical), int64
        Category indices; 0 is "unknown", column ``j`` lies in
        ``[0, cardinalities_[j])``.
    x_num : ndarray of shape (n_rows, n_numeric), float32
        Robust-scaled numeric features, then 0/1 null indicators.
    y : ndarray of shape (n_rows,), int64, or None
        1 for the positive label, 0 otherwise; None when the batch had no target.
    """

    x_cat: np.ndarray
    x_num: np.ndarray
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.x_cat.shape[0]
        assert self.x_cat.ndim == 2 and self.x_cat.dtype == np.int64, (
            f"x_cat must be int64 of shape (n, n_cat), got {self.x_cat.dtype} {self.x_cat.shape}"
        )
        assert self.x_num.ndim == 2 and self.x_num.dtype == np.float32 and self.x_num.shape[0] == n, (
            f"x_num must be float32 of shape ({n}, n_num), got {self.x_num.dtype} {self.x_num.shape}"
        )
        if self.y is not None:
            assert self.y.shape == (n,) and self.y.dtype == np.int64, (
                f"y must be int64 of shape ({n},), got {self.y.dtype} {self.y.shape}"
            )

    def __len__(self) -> int:
        return int(self.x_cat.shape[0])


class TabularPreprocessor:
    """Encode validated batches into categorical indices and scaled numbers.

    A scikit-learn ``ColumnTransformer``, fit once on training rows and reused
    unchanged on later batches:

    - categorical columns: ``SimpleImputer(strategy="constant",
      fill_value="__missing__")`` then ``OrdinalEncoder(handle_unknown=
      "use_encoded_value", unknown_value=-1, max_categories=max_categories)``
      (rare categories beyond the cap share one "infrequent" code); codes are
      shifted by +1 so index 0 means "unknown" and unseen categories map to 0;
    - numeric and datetime columns (datetimes as float days since 1970-01-01):
      ``SimpleImputer(strategy="median")`` then ``RobustScaler``;
    - numeric columns with nulls at fit time: an extra 0/1 feature each
      (``MissingIndicator``), kept unscaled;
    - dropped columns are ignored.

    Parameters
    ----------
    schema : dict
        From :func:`infer_schema`.
    max_categories : int, default=64
        Cap on codes per categorical column (the infrequent group included),
        so each cardinality is at most ``max_categories + 1``.

    Attributes
    ----------
    column_transformer_ : sklearn.compose.ColumnTransformer
        The fitted transformer.
    categorical_features_ : list of str
        Categorical input columns, in ``x_cat`` order.
    numeric_columns_ : list of str
        Numeric and datetime input columns.
    null_indicator_columns_ : list of str
        Numeric columns that had nulls at fit time.
    numeric_features_ : list of str
        Names of the ``x_num`` columns: ``numeric_columns_`` then
        ``<column>__is_null`` indicators.
    n_numeric_ : int
        ``len(numeric_features_)``.
    cardinalities_ : list of int
        Per categorical column, the number of indices including 0.
    """

    def __init__(self, schema: dict, *, max_categories: int = 64) -> None:
        self.schema = schema
        self.max_categories = max_categories

    # ---------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame) -> TabularPreprocessor:
        """Fit the imputers, encoders and scalers on training rows.

        Parameters
        ----------
        df : DataFrame of shape (n_rows, n_columns)
            Training rows (validated with :func:`validate_batch`; the target
            is optional and not used).

        Returns
        -------
        self : TabularPreprocessor

        Raises
        ------
        SchemaError
            If the batch fails validation or has no rows.
        ConfigError
            If ``max_categories`` is not an integer >= 2.
        """
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import MissingIndicator, SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OrdinalEncoder, RobustScaler

        max_categories = self.max_categories
        if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 2:
            raise ConfigError(f"max_categories={self.max_categories!r} must be an integer >= 2")
        features, _ = _schema_parts(self.schema)
        frame = validate_batch(df, self.schema, require_target=False)
        if len(frame) == 0:
            raise SchemaError("the training batch has no rows; the preprocessor needs at least one")
        categorical = [f["name"] for f in features if f["kind"] == "categorical"]
        numeric = [f["name"] for f in features if f["kind"] in ("numeric", "datetime")]
        x = self._model_frame(frame, categorical, numeric)
        with_nulls = [name for name in numeric if x[name].isna().any()]

        transformers = []
        if categorical:
            transformers.append((
                "categorical",
                Pipeline([
                    ("impute", SimpleImputer(
                        strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True,
                    )),
                    ("encode", OrdinalEncoder(
                        handle_unknown="use_encoded_value", unknown_value=-1, max_categories=self.max_categories,
                    )),
                ]),
                categorical,
            ))
        if numeric:
            transformers.append((
                "numeric",
                Pipeline([
                    ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("scale", RobustScaler()),
                ]),
                numeric,
            ))
        if with_nulls:
            transformers.append(("null_indicator", MissingIndicator(features="all"), with_nulls))
        transformer = ColumnTransformer(
            transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
        )
        transformer.fit(x)

        self.column_transformer_ = transformer
        self.categorical_features_ = categorical
        self.numeric_columns_ = numeric
        self.null_indicator_columns_ = with_nulls
        self.numeric_features_ = numeric + [f"{name}{NULL_INDICATOR_SUFFIX}" for name in with_nulls]
        self.n_numeric_ = len(self.numeric_features_)
        self.cardinalities_ = self._cardinalities(transformer) if categorical else []
        return self

    @staticmethod
    def _cardinalities(transformer: Any) -> list[int]:
        encoder = transformer.named_transformers_["categorical"].named_steps["encode"]
        infrequent = encoder.infrequent_categories_
        cardinalities = []
        for categories, rare in zip(encoder.categories_, infrequent, strict=True):
            n_codes = len(categories) if rare is None else len(categories) - len(rare) + 1
            cardinalities.append(int(n_codes) + 1)  # + index 0, "unknown"
        return cardinalities

    @staticmethod
    def _model_frame(frame: pd.DataFrame, categorical: list[str], numeric: list[str]) -> pd.DataFrame:
        """Categorical columns as object, numeric/datetime as float64 (days since epoch)."""
        columns: dict[str, pd.Series] = {}
        for name in categorical:
            columns[name] = frame[name].astype(object)
        for name in numeric:
            series = frame[name]
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                series = (series - EPOCH) / pd.Timedelta(days=1)
            columns[name] = series.astype(np.float64)
        return pd.DataFrame(columns, index=frame.index)

    # ----------------------------------------------------------- transform
    def transform(self, df: pd.DataFrame) -> EncodedBatch:
        """Encode a batch with the fitted transformer.

        Parameters
        ----------
        df : DataFrame of shape (n_rows, n_columns)
            A batch with the schema's columns (target optional).

        Returns
        -------
        EncodedBatch
            ``x_cat`` (n_rows, len(categorical_features_)) int64, ``x_num``
            (n_rows, n_numeric_) float32, ``y`` (n_rows,) int64 or None.

        Raises
        ------
        SchemaError
            If the batch fails validation or has no rows.
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        self._check_fitted()
        _, target = _schema_parts(self.schema)
        frame = validate_batch(df, self.schema, require_target=False)
        n = len(frame)
        if n == 0:
            raise SchemaError("the batch has no rows; nothing to encode")
        x = self._model_frame(frame, self.categorical_features_, self.numeric_columns_)
        encoded = np.asarray(self.column_transformer_.transform(x), dtype=np.float64)
        n_cat = len(self.categorical_features_)
        assert encoded.shape == (n, n_cat + self.n_numeric_), (
            f"transformer output {encoded.shape} != ({n}, {n_cat} + {self.n_numeric_})"
        )
        x_cat = (np.rint(encoded[:, :n_cat]).astype(np.int64) + 1).reshape(n, n_cat)  # (n, n_cat)
        x_num = np.ascontiguousarray(encoded[:, n_cat:], dtype=np.float32)  # (n, n_num)
        y = None
        if target["column"] in frame.columns:
            y = (frame[target["column"]] == target["positive_label"]).to_numpy(dtype=np.int64)  # (n,)
        return EncodedBatch(x_cat=x_cat, x_num=x_num, y=y)

    def signature(self) -> dict:
        """Describe the model inputs and output (JSON-able).

        Returns
        -------
        dict
            ``{"inputs": {"x_cat": {...}, "x_num": {...}}, "target": {...},
            "output": {...}}`` with feature names, ``shape`` (``None`` is the
            batch dimension), ``dtype`` and the categorical cardinalities.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        self._check_fitted()
        _, target = _schema_parts(self.schema)
        return {
            "inputs": {
                "x_cat": {
                    "shape": [None, len(self.categorical_features_)],
                    "dtype": "int64",
                    "features": list(self.categorical_features_),
                    "cardinalities": list(self.cardinalities_),
                    "unknown_index": 0,
                },
                "x_num": {
                    "shape": [None, self.n_numeric_],
                    "dtype": "float32",
                    "features": list(self.numeric_features_),
                },
            },
            "target": {
                "column": target["column"],
                "positive_label": target["positive_label"],
                "labels": list(target["labels"]),
                "shape": [None],
                "dtype": "int64",
            },
            "output": {
                "shape": [None],
                "dtype": "float32",
                "meaning": f"score (logit) that {target['column']} == {target['positive_label']!r}",
            },
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "column_transformer_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this TabularPreprocessor is not fitted; call fit(training_rows) first")

    # ------------------------------------------------------------- storage
    def to_bytes(self) -> bytes:
        """Serialize without pickle: a JSON envelope holding a skops payload.

        Returns
        -------
        bytes
            UTF-8 JSON: format name and version, ``schema``, ``max_categories``,
            the learned attributes, library versions and the fitted
            ``ColumnTransformer`` as base64 of ``skops.io.dumps`` (zip, deflated).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        import sklearn
        import skops
        import skops.io as sio

        self._check_fitted()
        envelope = {
            "format": ARTIFACT_FORMAT,
            "format_version": ARTIFACT_FORMAT_VERSION,
            "params": {"schema": self.schema, "max_categories": self.max_categories},
            "learned": {
                "categorical_features_": self.categorical_features_,
                "numeric_columns_": self.numeric_columns_,
                "null_indicator_columns_": self.null_indicator_columns_,
                "numeric_features_": self.numeric_features_,
                "n_numeric_": self.n_numeric_,
                "cardinalities_": self.cardinalities_,
            },
            "versions": {"scikit-learn": sklearn.__version__, "skops": skops.__version__},
            "column_transformer_skops": base64.b64encode(
                sio.dumps(self.column_transformer_, compression=zipfile.ZIP_DEFLATED)
            ).decode("ascii"),
        }
        return json.dumps(envelope, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, sha256: str) -> TabularPreprocessor:
        """Load a preprocessor stored by :meth:`to_bytes`, after checking its sha256.

        The digest is checked first; then every type in the skops payload is
        checked against :data:`SKOPS_ALLOWED_TYPES`, and the payload is loaded
        with ``skops.io.loads(trusted=SKOPS_TRUSTED_TYPES)`` (never
        ``trusted=True``). Pickle is never used.

        Parameters
        ----------
        data : bytes
            The stored artifact.
        sha256 : str
            The hex sha256 recorded when the artifact was stored.

        Returns
        -------
        TabularPreprocessor
            Fitted, transforming exactly as the stored one did.

        Raises
        ------
        IntegrityError
            If ``sha256(data)`` differs from ``sha256`` (names both digests).
        UnsafeArtifactError
            If the bytes are not this JSON format (e.g. a pickle), or the skops
            payload holds a type outside the allowed list.
        """
        import skops.io as sio
        from sklearn.compose import ColumnTransformer
        from skops.io.exceptions import UntrustedTypesFoundException

        from daily_mlops._artifacts import check_sha256

        data = check_sha256(data, sha256, what="preprocessor artifact")
        try:
            envelope = json.loads(data.decode("utf-8"))
            if envelope.get("format") != ARTIFACT_FORMAT:
                raise ValueError(f"format {envelope.get('format')!r}")
            if envelope.get("format_version") != ARTIFACT_FORMAT_VERSION:
                raise ValueError(f"format_version {envelope.get('format_version')!r}")
            payload = base64.b64decode(envelope["column_transformer_skops"], validate=True)
            params, learned = envelope["params"], envelope["learned"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnsafeArtifactError(
                f"preprocessor artifact is not a {ARTIFACT_FORMAT} v{ARTIFACT_FORMAT_VERSION} JSON document "
                f"({exc}); it was refused (pickles are never loaded): re-create it with TabularPreprocessor.to_bytes"
            ) from exc

        found = _skops_type_paths(payload)
        unexpected = sorted(found - set(SKOPS_ALLOWED_TYPES))
        untrusted = sorted(set(sio.get_untrusted_types(data=payload)) - set(SKOPS_TRUSTED_TYPES))
        if unexpected or untrusted:
            raise UnsafeArtifactError(
                f"preprocessor artifact holds unexpected type(s) {sorted(set(unexpected) | set(untrusted))}; "
                "it was refused: re-create it with TabularPreprocessor.to_bytes"
            )
        try:
            transformer = sio.loads(payload, trusted=list(SKOPS_TRUSTED_TYPES))
        except UntrustedTypesFoundException as exc:
            raise UnsafeArtifactError(f"preprocessor artifact was refused by skops: {exc}") from exc
        if not isinstance(transformer, ColumnTransformer):
            raise UnsafeArtifactError(
                f"preprocessor artifact holds a {type(transformer).__name__}, not a ColumnTransformer; refused"
            )

        obj = cls(params["schema"], max_categories=int(params["max_categories"]))
        obj.column_transformer_ = transformer
        obj.categorical_features_ = list(learned["categorical_features_"])
        obj.numeric_columns_ = list(learned["numeric_columns_"])
        obj.null_indicator_columns_ = list(learned["null_indicator_columns_"])
        obj.numeric_features_ = list(learned["numeric_features_"])
        obj.n_numeric_ = int(learned["n_numeric_"])
        obj.cardinalities_ = [int(c) for c in learned["cardinalities_"]]
        return obj


def _skops_type_paths(payload: bytes) -> set[str]:
    """Every ``module.class`` named in a skops file's ``schema.json``.

    Raises
    ------
    UnsafeArtifactError
        If the payload is not a skops zip with a JSON schema.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            names = archive.namelist()
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnsafeArtifactError(
            f"preprocessor artifact's skops payload is not a skops file ({exc}); refused"
        ) from exc
    odd = [n for n in names if n != "schema.json" and not n.endswith(".npy")]
    if odd:
        raise UnsafeArtifactError(f"preprocessor artifact's skops payload holds unexpected member(s) {odd}; refused")

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__class__" in node:
                found.add(f"{node.get('__module__')}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


# ---------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------
def split_indices(
    y: np.ndarray, *, seed: int, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
) -> dict[str, np.ndarray]:
    """Split row indices into stratified pretrain / finetune / test parts.

    Two stratified ``sklearn.model_selection.train_test_split`` calls: first
    pretrain vs. the rest, then the rest into finetune and test.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Class labels to stratify on.
    seed : int
        ``random_state`` of both splits; the same seed gives the same split.
    fractions : tuple of 3 floats in (0, 1), default=(0.70, 0.15, 0.15)
        Fractions of rows for pretrain, finetune and test; must sum to 1.

    Returns
    -------
    dict of str to ndarray of int64
        ``{"pretrain", "finetune", "test"}``: sorted row indices, disjoint,
        together covering ``0..n_rows-1``.

    Raises
    ------
    ConfigError
        If ``fractions`` are not three positive numbers summing to 1.
    SchemaError
        If ``y`` is not one-dimensional, or a class has too few rows to be
        stratified into every part.
    """
    from sklearn.model_selection import train_test_split

    try:
        parts = [float(f) for f in fractions]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"split fractions {fractions!r} must be three numbers") from exc
    if len(parts) != 3 or any(not (0.0 < f < 1.0) for f in parts) or not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"split fractions {fractions!r} must be three numbers in (0, 1) summing to 1, e.g. (0.70, 0.15, 0.15)"
        )
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise SchemaError(f"labels must have shape (n_rows,), got {labels.shape}")
    indices = np.arange(labels.shape[0], dtype=np.int64)
    pretrain_f, finetune_f, test_f = parts
    try:
        pretrain, rest = train_test_split(
            indices, train_size=pretrain_f, random_state=seed, shuffle=True, stratify=labels
        )
        finetune, test = train_test_split(
            rest, test_size=test_f / (finetune_f + test_f), random_state=seed, shuffle=True, stratify=labels[rest]
        )
    except ValueError as exc:
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        raise SchemaError(
            f"cannot split {labels.shape[0]} rows with class counts {counts} into stratified parts "
            f"{tuple(parts)} ({exc}); use more rows per class"
        ) from exc
    return {
        "pretrain": np.sort(pretrain).astype(np.int64),
        "finetune": np.sort(finetune).astype(np.int64),
        "test": np.sort(test).astype(np.int64),
    }
