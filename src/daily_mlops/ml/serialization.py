"""Storage format of a data frame: canonical UTF-8 CSV, data only, never code.

The rows a :class:`~daily_mlops.ml.synthesis.Synthesizer` is fit on (its
reference), and the rows of an infra-validation or evidence check, are stored
as canonical CSV (:func:`frame_to_csv` / :func:`frame_from_csv`) with their
column dtypes (:func:`frame_columns`), checked against their recorded sha256
before they are parsed. The fitted preprocessor has its own format in
:mod:`daily_mlops.ml.preprocessor_io`, the model's weights in :mod:`daily_mlops.ml.model_io`.

Sources
-------
- pandas 2.3 ``read_csv(dtype=str, na_filter=False)``; Python's ``repr(float)``
  is the shortest string that reads back as the same float (Python docs,
  "Floating Point Arithmetic: Issues and Limitations").
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import SchemaError, UnsafeArtifactError

__all__ = ["frame_columns", "frame_difference", "frame_from_csv", "frame_to_csv"]


#: NumPy dtype kinds a stored column may have: float, signed and unsigned
#: int, bool, object (strings), datetime (``datetime64[ns]`` only).
_KINDS = "fiubOM"


def _column_dtype(name: str, dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype of a kind in :data:`_KINDS`; SchemaError otherwise."""
    try:
        resolved = np.dtype(str(dtype))
    except TypeError as exc:
        raise SchemaError(f"column {name!r} has dtype {dtype!r}, which the reference CSV cannot record") from exc
    if resolved.kind not in _KINDS or (resolved.kind == "M" and resolved != np.dtype("datetime64[ns]")):
        raise SchemaError(
            f"column {name!r} has dtype {dtype}, which the reference CSV cannot record; use float, int, bool, "
            "str or datetime64[ns] columns (daily_mlops.ml.schema.validate_batch returns such a frame)"
        )
    return resolved


def frame_columns(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Name and dtype of each column, in order: ``[{"name", "dtype"}, ...]`` (JSON-able).

    Raises
    ------
    SchemaError
        If a column's dtype is not float, int, bool, object or ``datetime64[ns]``.
    """
    return [{"name": str(name), "dtype": str(_column_dtype(str(name), dtype))} for name, dtype in frame.dtypes.items()]


def _cell(value: Any, kind: str, name: str) -> str:
    """One value as its canonical CSV text; a null is the empty field."""
    if kind in "fM" and pd.isna(value):
        return ""
    if kind == "f":
        return repr(float(value))
    if kind in "iu":
        return str(int(value))
    if kind == "b":
        return "True" if bool(value) else "False"
    if kind == "M":
        return pd.Timestamp(value).isoformat()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not isinstance(value, str) or value == "":
        raise SchemaError(
            f"column {name!r} holds {value!r} ({type(value).__name__}); the reference CSV stores non-empty "
            "strings or nulls in a text column (validate_batch returns such a frame)"
        )
    return value


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """Write ``frame`` as canonical UTF-8 CSV: one header line, ``\\n`` line ends, no index.

    Floats are written with ``repr`` (reads back bit for bit), datetimes in
    ISO 8601, nulls as empty fields; the same frame always gives the same bytes.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        Columns of the kinds :func:`frame_columns` accepts; text columns hold
        non-empty ``str`` values or nulls.

    Returns
    -------
    bytes

    Raises
    ------
    SchemaError
        If a column has another dtype or a text column holds something else.
    """
    columns = frame_columns(frame)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([column["name"] for column in columns])
    cells = [
        [_cell(value, np.dtype(column["dtype"]).kind, column["name"]) for value in frame.iloc[:, j].tolist()]
        for j, column in enumerate(columns)
    ]
    writer.writerows(zip(*cells, strict=True))
    return out.getvalue().encode("utf-8")


def _parse_column(values: list[str], dtype: np.dtype, name: str) -> pd.Series:
    """Canonical CSV text of one column back to a Series of ``dtype``."""
    kind = dtype.kind
    try:
        if kind == "f":
            return pd.Series([float(v) if v != "" else np.nan for v in values], dtype=dtype, name=name)
        if kind in "iu":
            return pd.Series(np.array([int(v) for v in values], dtype=dtype), name=name)
        if kind == "b":
            return pd.Series([{"True": True, "False": False}[v] for v in values], dtype=dtype, name=name)
        if kind == "M":
            text = pd.Series([v if v != "" else None for v in values], dtype=object)
            return pd.to_datetime(text, format="ISO8601").astype(dtype).rename(name)
        return pd.Series([v if v != "" else np.nan for v in values], dtype=object, name=name)
    except (ValueError, KeyError, OverflowError, TypeError) as exc:
        raise SchemaError(f"column {name!r} does not parse as {dtype} ({exc!r})") from exc


def frame_from_csv(
    data: bytes, columns: list[dict[str, str]], *, what: str, fix: str = "restore the artifact or re-create it"
) -> pd.DataFrame:
    """Parse canonical CSV written by :func:`frame_to_csv` with the recorded column dtypes.

    Parameters
    ----------
    data : bytes
        The CSV (check its sha256 first).
    columns : list of dict
        ``[{"name", "dtype"}, ...]`` from :func:`frame_columns`; the header
        must list exactly these names in this order.
    what : str
        Names the artifact in error messages.
    fix : str
        How to repair it, appended to error messages.

    Returns
    -------
    DataFrame of shape (n_rows, len(columns))
        Index ``0..n_rows-1``.

    Raises
    ------
    UnsafeArtifactError
        If ``data`` is not UTF-8 text (e.g. a serialized Python object); it is
        never deserialised.
    SchemaError
        If the header, the recorded dtypes or a value do not match.
    """
    try:
        text = data.decode("utf-8")
        if "\x00" in text:
            raise ValueError("it contains NUL bytes")
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsafeArtifactError(
            f"{what} is not UTF-8 CSV text ({exc}); it was refused and nothing in it was deserialised or run; {fix}"
        ) from exc
    try:
        dtypes = [(str(c["name"]), _column_dtype(str(c["name"]), c["dtype"])) for c in columns]
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"{what}: the recorded columns are not [{{'name', 'dtype'}}, ...] ({exc!r}); {fix}") from exc
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, na_filter=False, keep_default_na=False,
                          engine="c", lineterminator="\n")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise SchemaError(f"{what} does not parse as CSV ({exc}); {fix}") from exc
    header = [str(c) for c in raw.columns]
    if header != [name for name, _ in dtypes]:
        raise SchemaError(
            f"{what} has columns {header[:25]} but the record lists {[name for name, _ in dtypes][:25]}; {fix}"
        )
    try:
        parsed = {name: _parse_column(raw.iloc[:, j].tolist(), dtype, name) for j, (name, dtype) in enumerate(dtypes)}
    except SchemaError as exc:
        raise SchemaError(f"{what}: {exc}; {fix}") from exc
    return pd.DataFrame(parsed, columns=header).reset_index(drop=True)


def frame_difference(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """``None`` when the frames have the same columns, dtypes, nulls and values; else what differs."""
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return f"shape/columns {a.shape} {list(a.columns)[:10]} vs {b.shape} {list(b.columns)[:10]}"
    for name in a.columns:
        x, y = a[name], b[name]
        if x.dtype != y.dtype:
            return f"column {name!r}: dtype {x.dtype} vs {y.dtype}"
        nx, ny = x.isna().to_numpy(), y.isna().to_numpy()
        if not np.array_equal(nx, ny) or not np.array_equal(x.to_numpy()[~nx], y.to_numpy()[~ny]):
            return f"column {name!r}: values differ"
    return None
