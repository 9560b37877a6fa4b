"""Messy reference columns: date formats pandas does not guess, and ID columns.

Used by :func:`daily_mlops.ml.schema.infer_schema` (once, at bootstrap) and
:func:`daily_mlops.ml.schema.validate_batch` (date parsing on every batch).

Date columns
    A string column is a date column when at least :data:`DATE_PARSE_MIN_FRACTION`
    of its non-null values parse with one format: pandas' guess from its first
    values, or one of :data:`DATE_FORMATS` (``%Y-%m-%d``, ``%d%b%Y`` such as
    ``30NOV2024`` in any letter case, ``%Y%m%d``, ...); the format that parses
    the most values wins (ties: the earlier one). An integer column is a
    ``%Y%m%d`` date column only when every non-null value has 8 digits between
    :data:`YMD_MIN` and :data:`YMD_MAX` (years 1900-2100) and at least
    :data:`DATE_PARSE_MIN_FRACTION` of them are real calendar days: an 8-digit
    account number is rarely a valid date in 95% of rows.

ID columns
    Dropped when SDV's metadata detection gives them sdtype ``id``
    (``Metadata.detect_from_dataframes`` without key inference: SDV marks a
    column ``id`` from its name, e.g. ``loan_id``, ``ID``, ``customerId``), or
    when the column is integer-like (an integer dtype, or floats that are all
    whole numbers) or string-like (object or string dtype), has no null and a
    different value in every row, in a reference of at least
    :data:`ID_MIN_ROWS` rows. Float columns with fractional values are never
    ids: a continuous measurement (an amount, a ratio) is usually unique per
    row and carries signal. SDV's primary-key inference (the first unique,
    non-null column of whole non-negative numbers or of strings) is a special
    case of the uniqueness rule. A date column is never an id, and the target
    column is never dropped (the caller does not pass it).

Sources
-------
- pandas 2.3 ``to_datetime(format=..., errors="coerce")``,
  ``pandas.tseries.api.guess_datetime_format``; Python ``strptime`` directives
  (``%b`` matches month abbreviations case-insensitively).
- SDV 2.0.0 ``sdv/metadata/_single_table.py`` (``_detect_id_column``,
  ``_determine_sdtype_for_numbers``, ``_determine_sdtype_for_objects``), read
  from the installed source.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import SchemaError

#: Fraction of a column's non-null values that must parse with one format
#: for the column to count as a date column (95%, so a few malformed values do not stop a date column).
DATE_PARSE_MIN_FRACTION = 0.95
#: Formats tried on every string column besides pandas' guess, in this order (ties go to the earlier one).
DATE_FORMATS = ("%Y-%m-%d", "%d%b%Y", "%d-%b-%Y", "%Y%m%d", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y")
#: Format of dates written as 8-digit integers.
YMD_FORMAT = "%Y%m%d"
#: Bounds of an 8-digit integer that may be a ``%Y%m%d`` date (years 1900 to 2100).
YMD_MIN, YMD_MAX = 19000101, 21001231
#: A column with a unique value per row counts as an id only in a reference of at least this many rows.
ID_MIN_ROWS = 20
#: Suffix of the month feature (1-12) derived from a date column; the date itself becomes days since 1970-01-01.
MONTH_SUFFIX = "__month"


def date_feature_names(name: str) -> list[str]:
    """The model's numeric features made from date column ``name``: days since 1970-01-01, then the month."""
    return [name, f"{name}{MONTH_SUFFIX}"]


def _digit_strings(values: pd.Series) -> pd.Series:
    """Whole numbers as digit strings (``20241130.0`` -> ``"20241130"``); anything else becomes null."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    whole = numbers.notna() & np.isfinite(numbers) & (numbers == np.round(numbers))
    out = pd.Series(np.nan, index=values.index, dtype=object)
    out[whole] = numbers[whole].astype(np.int64).map(str)
    return out


def _digits(value: object) -> object:
    """A whole number as its digit string; anything else unchanged."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
            and np.isfinite(value) and float(value) == int(value):
        return str(int(value))
    return value


def parse_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Parse to naive UTC ``datetime64[ns]``; values that do not parse become NaT.

    Parameters
    ----------
    values : Series of shape (n_rows,)
        Strings, 8-digit numbers (with ``fmt`` ``%Y%m%d``) or datetimes.
    fmt : str or None
        A ``strptime`` format; None means ISO 8601.

    Returns
    -------
    Series of shape (n_rows,), dtype ``datetime64[ns]``
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, utc=True)
    else:
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            text = _digit_strings(values)
        else:  # strings; 8-digit numbers among them (e.g. from a JSON request) as their digits
            text = values.map(lambda v: v.strip() if isinstance(v, str) else _digits(v))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def parse_date_columns(frame: pd.DataFrame, formats: Mapping[str, str | None]) -> pd.DataFrame:
    """``frame`` with each date column in one encoding: naive UTC ``datetime64[ns]``, parsed with its format.

    The reference rows and a batch then compare on one scale, whatever the
    batch holds: the source's text (``30NOV2024`` with ``%d%b%Y``), 8-digit
    numbers, or datetimes of another unit or time zone (``datetime64[us]``
    values compared as integers are 1,000 times smaller than ``[ns]`` ones:
    SDMetrics' ``KSComplement`` then scores about 0). Idempotent.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
    formats : mapping of str to (str or None)
        ``{column: strptime format}``, None for ISO 8601
        (:func:`daily_mlops.ml.schema.date_columns`); columns not in
        ``frame`` are skipped.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        A copy when a column was parsed (values that do not parse become
        NaT, as in :func:`parse_dates`), else ``frame`` itself.
    """
    present = {name: fmt for name, fmt in formats.items() if name in frame.columns}
    if not present:
        return frame
    return frame.assign(**{name: parse_dates(frame[name], fmt) for name, fmt in present.items()})


def _parsed_fraction(values: pd.Series, fmt: str) -> float:
    """Fraction of the non-null ``values`` that parse with ``fmt`` (``%Y%m%d``: only years 1900-2100 count)."""
    parsed = parse_dates(values, fmt)
    ok = parsed.notna()
    if fmt == YMD_FORMAT:
        ok &= parsed.dt.year.between(1900, 2100)
    return float(ok.mean()) if len(values) else 0.0


def detect_date_format(values: pd.Series) -> tuple[str, float] | None:
    """The date format of a column and the fraction of its values it parses, or None.

    Parameters
    ----------
    values : Series of shape (n_rows,)
        A string or integer-like column of the reference data.

    Returns
    -------
    (str, float) or None
        The winning ``strptime`` format and its parsed fraction in [0, 1]
        (>= :data:`DATE_PARSE_MIN_FRACTION`), or None when no format parses
        that many of the non-null values. See the module docstring for the rule.
    """
    from pandas.tseries.api import guess_datetime_format

    present = values.dropna()
    if present.empty or pd.api.types.is_bool_dtype(values.dtype):
        return None
    if pd.api.types.is_numeric_dtype(values.dtype):
        if not present.astype(float).between(YMD_MIN, YMD_MAX).all() or _digit_strings(present).isna().any():
            return None
        candidates = [YMD_FORMAT]
    else:
        if not all(isinstance(v, str) for v in present.iloc[:100]):
            return None
        guessed = []
        for text in present.iloc[:5]:
            fmt = guess_datetime_format(str(text).strip())
            # a bare year or time is not a date: require a year and a month
            if fmt and any(d in fmt for d in ("%Y", "%y")) and any(d in fmt for d in ("%m", "%b", "%B")):
                guessed.append(fmt)
        candidates = list(dict.fromkeys([*guessed, *DATE_FORMATS]))
    head = present.iloc[:200]
    best: tuple[str, float] | None = None
    for fmt in candidates:
        if len(present) > len(head) and _parsed_fraction(head, fmt) < 0.5:
            continue  # cheap rejection: a date column rarely fails on most of its first 200 values
        fraction = _parsed_fraction(present, fmt)
        if fraction >= DATE_PARSE_MIN_FRACTION and (best is None or fraction > best[1]):
            best = (fmt, round(fraction, 6))
            if fraction == 1.0:
                break
    return best


def unique_id_reason(values: pd.Series, n_rows: int) -> str | None:
    """Why ``values`` is an id by the uniqueness rule, or None (see the module docstring).

    Parameters
    ----------
    values : Series of shape (n_rows,)
        One feature column of the reference data (not a date column).
    n_rows : int
        Rows in the reference data.
    """
    if n_rows < ID_MIN_ROWS or values.isna().any() or values.nunique(dropna=False) != n_rows:
        return None
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return "unique value in every row (integer column)"
    if pd.api.types.is_float_dtype(dtype):
        whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        return "unique value in every row (whole-number column)" if whole else None
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "unique value in every row (text column)"
    return None


def sdv_id_columns(frame: pd.DataFrame) -> set[str]:
    """Columns of ``frame`` that SDV 2.0's metadata detection gives sdtype ``id``.

    ``Metadata.detect_from_dataframes`` with ``infer_keys=None``: sdtypes only,
    so ``id`` comes from the column name (a token ``id``); the primary-key
    choice is left to :func:`unique_id_reason`.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        Columns of a dtype SDV supports (numeric, bool, object, datetime).

    Raises
    ------
    SchemaError
        When SDV cannot detect a column's sdtype (names the column).
    """
    from sdv.metadata import Metadata
    from sdv.metadata.errors import InvalidMetadataError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            metadata = Metadata.detect_from_dataframes({"reference": frame.copy()}, infer_keys=None)
    except InvalidMetadataError as exc:
        raise SchemaError(f"SDV could not detect the reference data's column types ({exc}); "
                          "drop or convert that column in MLOPS_REFERENCE_DATA") from exc
    columns = metadata.to_dict()["tables"]["reference"]["columns"]
    return {name for name, meta in columns.items() if meta.get("sdtype") == "id"}


def set_datetime_formats(metadata: Any, table_name: str, formats: Mapping[str, str]) -> None:
    """Give the date columns of SDV ``metadata`` sdtype ``datetime`` and their ``datetime_format``.

    With the format set, SDV's ``UnixTimestampEncoder`` rounds sampled values
    through it, so a synthesized batch holds whole days that parse with the
    detected format. ``range_min``/``range_max`` are not kept (SDV checks them
    against the new format); ``range_is_nullable`` is.

    Parameters
    ----------
    metadata : sdv.metadata.Metadata
        Detected from the validated reference rows (changed in place).
    table_name : str
        Its one table.
    formats : mapping of str to str
        ``{column: strptime format}``; columns not in the table are skipped.
    """
    columns = metadata.tables[table_name].columns
    for name, fmt in formats.items():
        if name in columns:
            kept = {k: v for k, v in columns[name].items() if k == "range_is_nullable"}
            metadata.update_column(name, table_name=table_name, **kept, sdtype="datetime", datetime_format=fmt)
