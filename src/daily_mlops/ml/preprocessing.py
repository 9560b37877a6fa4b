"""The tabular preprocessor: a fitted scikit-learn ColumnTransformer, stored without pickle.

A :class:`TabularPreprocessor` is fit once on the reference rows and reused
unchanged on every later batch (validated by :mod:`daily_mlops.ml.schema`).

Sources
-------
- scikit-learn 1.9 user guide, "Column Transformer with Mixed Types",
  ``OrdinalEncoder`` (``handle_unknown="use_encoded_value"``,
  ``max_categories`` groups infrequent categories), ``SimpleImputer``,
  ``MissingIndicator``, ``RobustScaler``; the estimator contract
  (``BaseEstimator``, ``TransformerMixin``, ``check_is_fitted``).
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
import zipfile
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import (
    ConfigError,
    SchemaError,
    UnsafeArtifactError,
)
from daily_mlops.ml._skops_warnings import skops_deprecations_silenced
from daily_mlops.ml.encoded import EncodedBatch
from daily_mlops.ml.schema import EPOCH, MISSING_CATEGORY, NULL_INDICATOR_SUFFIX, schema_parts, validate_batch

__all__ = ["EncodedBatch", "TabularPreprocessor", "SKOPS_ALLOWED_TYPES"]

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
        features, _ = schema_parts(self.schema)
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
        _, target = schema_parts(self.schema)
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
        _, target = schema_parts(self.schema)
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

        with skops_deprecations_silenced():  # importing skops.io floods Airflow's deprecation warnings
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
        }
        with skops_deprecations_silenced():
            payload = sio.dumps(self.column_transformer_, compression=zipfile.ZIP_DEFLATED)
        envelope["column_transformer_skops"] = base64.b64encode(payload).decode("ascii")
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
        from sklearn.compose import ColumnTransformer

        with skops_deprecations_silenced():  # importing skops.io floods Airflow's deprecation warnings
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
                f"({exc}); it was refused (pickles are never loaded): re-create it with TabularPreprocessor.to_bytes"
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
