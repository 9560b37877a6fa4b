"""Storage formats of the fitted ``ml`` objects: data only, never code.

Two formats live here:

- the fitted :class:`~daily_mlops.ml.preprocessing.TabularPreprocessor`: a
  JSON envelope holding the ``ColumnTransformer`` as a skops payload whose
  every type is checked against :data:`SKOPS_ALLOWED_TYPES` before loading;
- the rows a :class:`~daily_mlops.ml.synthesis.Synthesizer` is fit on: a
  canonical UTF-8 CSV (:func:`frame_to_csv` / :func:`frame_from_csv`), from
  which the synthesizer is refit at load time.

Both are checked against their recorded sha256 before they are parsed.

Sources
-------
- skops 0.16 ``skops.io`` (https://skops.readthedocs.io/en/stable/persistence.html):
  ``dumps`` / ``loads(data, trusted=[...])``; ``get_untrusted_types``.
  ``trusted`` *adds* to skops' defaults (which already include scikit-learn
  estimators), so the artifact's full type list is also checked against
  :data:`SKOPS_ALLOWED_TYPES` before loading.
- pandas 2.3 ``read_csv(dtype=str, na_filter=False)``; Python's ``repr(float)``
  is the shortest string that reads back as the same float (Python docs,
  "Floating Point Arithmetic: Issues and Limitations").
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import zipfile
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from daily_mlops.errors import SchemaError, UnsafeArtifactError
from daily_mlops.ml._skops_warnings import skops_deprecations_silenced
from daily_mlops.ml._without_torch import import_without_torch


class FittedPreprocessor(Protocol):
    """What :func:`preprocessor_to_bytes` reads of a fitted preprocessor (the interface of
    :class:`~daily_mlops.ml.preprocessing.TabularPreprocessor`, named here so that this module, which
    ``preprocessing`` imports, does not import it back)."""

    schema: dict[str, Any]
    max_categories: int
    column_transformer_: Any


P = TypeVar("P", bound=FittedPreprocessor)

__all__ = [
    "SKOPS_ALLOWED_TYPES", "frame_columns", "frame_difference", "frame_from_csv", "frame_to_csv",
    "preprocessor_from_bytes", "preprocessor_to_bytes",
]

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

#: The learned attributes of a preprocessor stored next to its skops payload.
_LEARNED = ("categorical_features_", "numeric_columns_", "null_indicator_columns_", "numeric_features_",
            "n_numeric_", "cardinalities_")


# ---------------------------------------------------------------------------
# the preprocessor
# ---------------------------------------------------------------------------
def preprocessor_to_bytes(pre: FittedPreprocessor) -> bytes:
    """Serialize a fitted preprocessor: a UTF-8 JSON envelope holding a skops payload.

    Returns
    -------
    bytes
        UTF-8 JSON: format name and version, ``schema``, ``max_categories``,
        the learned attributes, library versions and the fitted
        ``ColumnTransformer`` as base64 of ``skops.io.dumps`` (zip, deflated).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``pre`` is not fitted.
    """
    import sklearn
    from sklearn.utils.validation import check_is_fitted

    with skops_deprecations_silenced():  # importing skops.io floods Airflow's deprecation warnings
        import_without_torch("skops.io")  # its scan of scikit-learn would import torch (see that module)
        import skops
        import skops.io as sio

    check_is_fitted(pre, "column_transformer_", msg="this %(name)s is not fitted; call fit(training_rows) first")
    envelope = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "params": {"schema": pre.schema, "max_categories": pre.max_categories},
        "learned": {name: getattr(pre, name) for name in _LEARNED},
        "versions": {"scikit-learn": sklearn.__version__, "skops": skops.__version__},
    }
    with skops_deprecations_silenced():
        payload = sio.dumps(pre.column_transformer_, compression=zipfile.ZIP_DEFLATED)
    envelope["column_transformer_skops"] = base64.b64encode(payload).decode("ascii")
    return json.dumps(envelope, sort_keys=True).encode("utf-8")


def preprocessor_from_bytes(cls: type[P], data: bytes, *, sha256: str) -> P:
    """Load a preprocessor stored by :func:`preprocessor_to_bytes`, after checking its sha256.

    The digest is checked first; then every type in the skops payload is
    checked against :data:`SKOPS_ALLOWED_TYPES`, and the payload is loaded
    with ``skops.io.loads(trusted=SKOPS_TRUSTED_TYPES)`` (never ``trusted=True``).

    Parameters
    ----------
    cls : type
        ``TabularPreprocessor`` (or a subclass) to build.
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
        If the bytes are not this JSON format, or the skops payload holds a
        type outside the allowed list.
    """
    from sklearn.compose import ColumnTransformer

    with skops_deprecations_silenced():  # importing skops.io floods Airflow's deprecation warnings
        import_without_torch("skops.io")  # its scan of scikit-learn would import torch (see that module)
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

    from daily_mlops.checksums import check_sha256

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
            f"({exc}); it was refused and nothing in it was deserialised: re-create it with "
            "TabularPreprocessor.to_bytes"
        ) from exc

    found = _skops_type_paths(payload)
    unexpected = sorted(found - set(SKOPS_ALLOWED_TYPES))
    with skops_deprecations_silenced():
        untrusted = sorted(set(sio.get_untrusted_types(data=payload)) - set(SKOPS_TRUSTED_TYPES))
    if unexpected or untrusted:
        raise UnsafeArtifactError(
            f"preprocessor artifact holds unexpected type(s) {sorted(set(unexpected) | set(untrusted))}; "
            "it was refused: re-create it with TabularPreprocessor.to_bytes"
        )
    try:
        with skops_deprecations_silenced():
            transformer = sio.loads(payload, trusted=list(SKOPS_TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise UnsafeArtifactError(f"preprocessor artifact was refused by skops: {exc}") from exc
    if not isinstance(transformer, ColumnTransformer):
        raise UnsafeArtifactError(
            f"preprocessor artifact holds a {type(transformer).__name__}, not a ColumnTransformer; refused"
        )

    obj = cls(params["schema"], max_categories=int(params["max_categories"]))
    obj.column_transformer_ = transformer
    for name in ("categorical_features_", "numeric_columns_", "null_indicator_columns_", "numeric_features_"):
        setattr(obj, name, [str(value) for value in learned[name]])
    obj.n_numeric_ = int(learned["n_numeric_"])
    obj.cardinalities_ = [int(c) for c in learned["cardinalities_"]]
    return obj


def _skops_type_paths(payload: bytes) -> set[str]:
    """Every ``module.class`` named in a skops file's ``schema.json``.

    Raises
    ------
    UnsafeArtifactError
        If the payload is not a skops zip with a JSON schema, or holds a member
        other than ``schema.json`` and ``.npy`` files.
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
# a data frame as canonical CSV
# ---------------------------------------------------------------------------
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
