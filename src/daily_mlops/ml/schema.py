"""Schema inference and batch validation for any CSV with a binary target.

The schema is inferred once from the reference CSV (:func:`infer_schema`) and
stored as JSON with the preprocessor. Every later batch is checked against it
(:func:`validate_batch`) before it is encoded. Nothing here is specific to one
data set: any CSV with a binary target column works given
``(target_column, positive_label)``.

Messy columns (date formats pandas does not guess, ID columns) follow the
rules of :mod:`daily_mlops.ml._columns`; every dropped or converted column is
listed, with its reason, under the schema's ``columns`` key (:func:`column_actions`).

Sources
-------
- pandas 2.3 ``read_csv``, ``to_datetime(format=...)``.
- SDV 2.0 ``Metadata.detect_from_dataframes`` (sdtype ``id``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import (
    ConfigError,
    NotFoundError,
    SchemaError,
)
from daily_mlops.ml._columns import (
    DATE_PARSE_MIN_FRACTION,
    MONTH_SUFFIX,
    date_feature_names,
    detect_date_format,
    parse_date_columns,
    sdv_id_columns,
    unique_id_reason,
)
from daily_mlops.ml._columns import (
    parse_dates as _parse_dates,
)

__all__ = [
    "DATE_PARSE_MIN_FRACTION", "MONTH_SUFFIX", "column_actions", "date_columns", "date_feature_names",
    "datetime_formats", "infer_schema", "parse_date_columns", "read_csv", "schema_parts", "validate_batch",
]

SCHEMA_VERSION = 1
#: In a later batch, a datetime column fails validation when fewer than this
#: fraction of its non-null values parse with the stored format.
DATE_VALIDATE_MIN_FRACTION = 0.5
#: Category the imputer gives to a null categorical value (then encoded like any category).
MISSING_CATEGORY = "__missing__"
#: Suffix of the 0/1 feature that flags a null numeric value.
NULL_INDICATOR_SUFFIX = "__is_null"
#: Unix epoch; datetimes become float days since it.
EPOCH = pd.Timestamp("1970-01-01")


# ---------------------------------------------------------------------------
# CSV and schema
# ---------------------------------------------------------------------------
def read_csv(path: str | Path, *, what: str | None = None) -> pd.DataFrame:
    """Read a CSV file of rows with a header line.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    what : str, optional
        Where the path came from (e.g. ``"--input"`` or ``"MLOPS_REFERENCE_DATA"``);
        every message names it so the user knows which path to fix.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        As parsed by ``pandas.read_csv`` (numeric columns numeric, the rest object).

    Raises
    ------
    NotFoundError
        If the file does not exist.
    ConfigError
        If the path is a directory or another non-file.
    SchemaError
        If the file is empty, has a header but no rows, cannot be parsed as
        CSV, is not UTF-8 text, or names a column twice (pandas would
        silently rename the second ``name.1``). The message names the file.
    """
    file = Path(path).expanduser()
    label = f"{what}={file}" if what else f"CSV file {file}"
    if not file.exists():
        raise NotFoundError(f"{label} does not exist; check the path")
    if file.is_dir():
        raise ConfigError(f"{label} is a directory; give the path of a CSV file inside it")
    if not file.is_file():
        raise ConfigError(f"{label} is not a regular file; give the path of a CSV file")
    try:
        frame = pd.read_csv(file)
        # The header as written: pandas 2 renames a repeated name ``a`` to ``a.1`` with no option to refuse it.
        header = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    except pd.errors.EmptyDataError as exc:
        raise SchemaError(f"{label} is empty; it needs a header line and at least one row") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(f"{label} could not be parsed as UTF-8 CSV ({exc}); fix or re-export the file") from exc
    repeated = sorted(name for name, n in Counter(h for h in header if h != "").items() if n > 1)
    if repeated:
        raise SchemaError(
            f"{label} names column(s) {repeated} more than once; give every column a unique name in the header line"
        )
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise SchemaError(f"{label} has a header but no rows; it needs at least one data row")
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


def infer_schema(reference: pd.DataFrame, *, target_column: str, positive_label: str) -> dict:
    """Infer the feature kinds and the binary target from the reference rows.

    Feature kinds: ``numeric`` (a numeric, non-bool dtype), ``datetime``
    (a datetime dtype, or strings or 8-digit integers of which at least
    :data:`DATE_PARSE_MIN_FRACTION` parse with one format:
    :func:`~daily_mlops.ml._columns.detect_date_format`), ``categorical``
    (object, string, bool, category) and ``dropped`` (all null, a single
    value, an ID column, or an unsupported dtype; the ``reason`` says which).
    ID columns: SDV's metadata detection gives them sdtype ``id``, or they
    are integer- or string-like with a different value in every row (float
    columns with fractional values never are; rules in
    :mod:`daily_mlops.ml._columns`). The target column is never dropped.

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
        "positive_label", "negative_label", "labels"}, "columns": [...]}``;
        ``features`` keeps the reference column order, ``labels`` is
        ``[negative, positive]``, ``columns`` lists every dropped or converted
        column (:func:`column_actions`).

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
        features.append(_feature_entry(name, frame[name]))
    undecided = [f["name"] for f in features if f["kind"] is None]
    sdv_ids = sdv_id_columns(frame[undecided]) if undecided else set()
    for entry in features:
        if entry["kind"] is None:
            _settle_kind(entry, frame[entry["name"]], sdv_id=entry["name"] in sdv_ids)
    if not any(f["kind"] != "dropped" for f in features):
        raise SchemaError(
            "the reference data has no usable feature column (all are constant, all-null, IDs or unsupported); "
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
        "columns": _actions(features),
    }


def _feature_entry(name: str, series: pd.Series) -> dict[str, Any]:
    """A feature entry; ``kind`` None when it waits for the ID rules (:func:`_settle_kind`)."""
    entry: dict[str, Any] = {"name": name, "kind": None, "dtype": str(series.dtype), "format": None, "reason": None}
    dtype = series.dtype
    if series.isna().all():
        entry.update(kind="dropped", reason="all-null")
    elif series.nunique(dropna=False) <= 1:
        entry.update(kind="dropped", reason="constant")
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        entry.update(kind="datetime", parsed_fraction=1.0)
    elif pd.api.types.is_complex_dtype(dtype) or not (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
    ):
        entry.update(kind="dropped", reason=f"unsupported dtype {dtype}")
    elif not isinstance(dtype, pd.CategoricalDtype):
        found = detect_date_format(series)  # strings, and 8-digit integers as %Y%m%d
        if found is not None:
            entry.update(kind="datetime", format=found[0], parsed_fraction=found[1])
    return entry


def _settle_kind(entry: dict[str, Any], series: pd.Series, *, sdv_id: bool) -> None:
    """Set the kind of a column that is not a date, not constant and not all-null: an ID is dropped."""
    reason = unique_id_reason(series, len(series))
    if sdv_id:
        reason = "SDV metadata detection marks it as an id (sdtype 'id')" + (f"; {reason}" if reason else "")
    if reason:
        entry.update(kind="dropped", reason=reason)
    elif pd.api.types.is_bool_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype):
        entry["kind"] = "categorical"
    elif pd.api.types.is_numeric_dtype(series.dtype):
        entry["kind"] = "numeric"
    else:
        entry["kind"] = "categorical"


def _actions(features: list[dict]) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for f in features:
        if f["kind"] == "dropped":
            actions.append({"column": f["name"], "action": "dropped", "reason": f["reason"]})
        elif f["kind"] == "datetime":
            actions.append({
                "column": f["name"], "action": "date", "format": f.get("format"),
                "parsed_fraction": f.get("parsed_fraction"), "features": date_feature_names(f["name"]),
                "encoding": "days since 1970-01-01, then month 1-12",
            })
    return actions


def column_actions(schema: dict) -> list[dict[str, Any]]:
    """Every dropped or converted column of a schema, with the reason: what bootstrap prints and each day records.

    Parameters
    ----------
    schema : dict
        From :func:`infer_schema`. A schema stored before the ``columns`` key
        existed gets the list rebuilt from its features.

    Returns
    -------
    list of dict
        ``{"column", "action": "dropped", "reason"}`` or ``{"column",
        "action": "date", "format", "parsed_fraction", "features",
        "encoding"}``, in the reference column order (JSON-able).
    """
    if "columns" in schema:
        return [dict(a) for a in schema["columns"]]
    features, _ = schema_parts(schema)
    return _actions(features)


def datetime_formats(schema: dict) -> dict[str, str]:
    """``{column: strptime format}`` of the schema's date columns that have a format (the SDV metadata hint)."""
    features, _ = schema_parts(schema)
    return {f["name"]: f["format"] for f in features if f["kind"] == "datetime" and f.get("format")}


def date_columns(schema: dict) -> dict[str, str | None]:
    """``{column: strptime format, or None for ISO 8601}`` of every date column the schema keeps.

    What :func:`parse_date_columns` takes to put a batch's dates in the reference rows' encoding.
    """
    features, _ = schema_parts(schema)
    return {f["name"]: f.get("format") or None for f in features if f["kind"] == "datetime"}


def schema_parts(schema: dict) -> tuple[list[dict], dict]:
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
    features, target = schema_parts(schema)
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
