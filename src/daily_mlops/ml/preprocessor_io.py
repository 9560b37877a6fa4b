"""Storage format of a fitted :class:`~daily_mlops.ml.preprocessing.TabularPreprocessor`: data only, never code.

A JSON envelope (format name and version, the constructor's parameters, the
learned attributes, library versions) holding the fitted ``ColumnTransformer``
as a skops payload whose every type is checked against
:data:`SKOPS_ALLOWED_TYPES` before loading; the whole artifact is checked
against its recorded sha256 before it is parsed. The model's weights have
their own format in :mod:`daily_mlops.ml.model_io`.

Sources
-------
- skops 0.16 ``skops.io`` (https://skops.readthedocs.io/en/stable/persistence.html):
  ``dumps`` / ``loads(data, trusted=[...])``; ``get_untrusted_types``.
  ``trusted`` *adds* to skops' defaults (which already include scikit-learn
  estimators), so the artifact's full type list is also checked against
  :data:`SKOPS_ALLOWED_TYPES` before loading.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any, Protocol, TypeVar

from daily_mlops.errors import UnsafeArtifactError
from daily_mlops.ml._skops_warnings import skops_deprecations_silenced
from daily_mlops.ml._without_torch import import_without_torch

__all__ = ["ARTIFACT_FORMAT", "ARTIFACT_FORMAT_VERSION", "SKOPS_ALLOWED_TYPES", "SKOPS_TRUSTED_TYPES",
           "FittedPreprocessor", "preprocessor_from_bytes", "preprocessor_to_bytes"]


class FittedPreprocessor(Protocol):
    """What :func:`preprocessor_to_bytes` reads of a fitted preprocessor and :func:`preprocessor_from_bytes`
    builds and sets (the interface of :class:`~daily_mlops.ml.preprocessing.TabularPreprocessor`, named here
    so that this module, which ``preprocessing`` imports, does not import it back)."""

    schema: dict[str, Any]
    max_categories: int
    column_transformer_: Any
    n_numeric_: int
    cardinalities_: list[int]

    def __init__(self, schema: dict[str, Any], *, max_categories: int = ...) -> None: ...


P = TypeVar("P", bound=FittedPreprocessor)

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
