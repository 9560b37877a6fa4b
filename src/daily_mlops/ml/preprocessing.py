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
- Storage (JSON envelope with an allow-listed skops payload): :mod:`daily_mlops.ml.preprocessor_io`.
- The TabTransformer input convention (categorical index 0 reserved for
  "unknown", continuous features separate): Huang et al. 2020,
  "TabTransformer: Tabular Data Modeling Using Contextual Embeddings".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from daily_mlops.errors import ConfigError, SchemaError
from daily_mlops.ml.encoded import EncodedBatch
from daily_mlops.ml.input_flags import InputFlags
from daily_mlops.ml.preprocessor_io import SKOPS_ALLOWED_TYPES
from daily_mlops.ml.schema import (
    EPOCH,
    MISSING_CATEGORY,
    MONTH_SUFFIX,
    NULL_INDICATOR_SUFFIX,
    date_feature_names,
    schema_parts,
    validate_batch,
)

__all__ = ["EncodedBatch", "InputFlags", "TabularPreprocessor", "SKOPS_ALLOWED_TYPES"]

#: ``check_is_fitted`` message (``%(name)s`` is the class name).
_NOT_FITTED = "this %(name)s is not fitted; call fit(training_rows) first"


# sklearn has no type information here (its classes are Any), so mypy checks this keyword against
# object.__init_subclass__; sklearn's _SetOutputMixin.__init_subclass__ takes it.
class TabularPreprocessor(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Encode validated batches into categorical indices and scaled numbers.

    A scikit-learn ``ColumnTransformer``, fit once on training rows and reused
    unchanged on later batches:

    - categorical columns: ``SimpleImputer(strategy="constant",
      fill_value="__missing__")`` then ``OrdinalEncoder(handle_unknown=
      "use_encoded_value", unknown_value=-1, max_categories=max_categories)``
      (rare categories beyond the cap share one "infrequent" code); codes are
      shifted by +1 so index 0 means "unknown" and unseen categories map to 0;
    - numeric and datetime columns (a datetime column ``d`` gives two
      features: ``d``, float days since 1970-01-01, and ``d__month``, its
      month 1-12): ``SimpleImputer(strategy="median")`` then ``RobustScaler``;
    - numeric and datetime columns with nulls at fit time: an extra 0/1
      feature each (``MissingIndicator``), kept unscaled;
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
        Numeric and datetime input columns, each datetime column followed by
        its derived ``<column>__month``.
    null_indicator_columns_ : list of str
        Numeric columns that had nulls at fit time.
    numeric_features_ : list of str
        Names of the ``x_num`` columns: ``numeric_columns_`` then
        ``<column>__is_null`` indicators.
    n_numeric_ : int
        ``len(numeric_features_)``.
    cardinalities_ : list of int
        Per categorical column, the number of indices including 0.

    Notes
    -----
    Follows the scikit-learn estimator contract (``BaseEstimator``:
    ``get_params`` / ``set_params``, ``__init__`` only stores parameters,
    learned state ends in ``_``, ``check_is_fitted``) with one deviation:
    :meth:`transform` (and so ``fit_transform``) returns an
    :class:`EncodedBatch` (two arrays and the labels), not one array, so
    ``set_output`` is disabled (``auto_wrap_output_keys=None``).
    """

    def __init__(self, schema: dict, *, max_categories: int = 64) -> None:
        self.schema = schema
        self.max_categories = max_categories

    # ---------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame, y: None = None) -> TabularPreprocessor:
        """Fit the imputers, encoders and scalers on training rows.

        Parameters
        ----------
        df : DataFrame of shape (n_rows, n_columns)
            Training rows (validated with :func:`validate_batch`; the target
            is optional and not used).
        y : None
            Ignored; accepted for the scikit-learn API (``fit_transform``).

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
        numeric = [name for f in features if f["kind"] in ("numeric", "datetime")
                   for name in (date_feature_names(f["name"]) if f["kind"] == "datetime" else [f["name"]])]
        x = self._model_frame(frame, categorical, numeric)
        inputs = [f["name"] for f in features if f["kind"] in ("numeric", "datetime")]
        with_nulls = [name for name in inputs if x[name].isna().any()]

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
        """Categorical columns as object, numeric/datetime as float64 (days since epoch; ``__month`` 1-12)."""
        columns: dict[str, pd.Series] = {}
        for name in categorical:
            columns[name] = frame[name].astype(object)
        for name in numeric:
            if name not in frame.columns and name.endswith(MONTH_SUFFIX):  # derived from a datetime column
                columns[name] = frame[name[: -len(MONTH_SUFFIX)]].dt.month.astype(np.float64)
                continue
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
        check_is_fitted(self, "column_transformer_", msg=_NOT_FITTED)
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

    def known_categories(self) -> dict[str, list[str]]:
        """Per categorical column, the categories the fitted encoder knows; any other value is read as "unknown".

        Categories grouped as infrequent are known (they share one code); the
        imputer's ``__missing__`` is left out (a null is flagged as a null).

        Returns
        -------
        dict of str to list of str
            In ``categorical_features_`` order, each list in the encoder's order.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        check_is_fitted(self, "column_transformer_", msg=_NOT_FITTED)
        if not self.categorical_features_:
            return {}
        encoder = self.column_transformer_.named_transformers_["categorical"].named_steps["encode"]
        return {name: [str(c) for c in categories if str(c) != MISSING_CATEGORY]
                for name, categories in zip(self.categorical_features_, encoder.categories_, strict=True)}

    def input_flags(self, df: pd.DataFrame) -> InputFlags:
        """Which rows :meth:`transform` reads as "unknown" (an unseen category) or imputes (a null), per column.

        The one rule behind ``/predict``'s ``input_flags``, ``daily-mlops
        predict``'s per-column counts and ``MLOPS_PREDICT_STRICT``'s refusals.
        A non-null categorical value outside :meth:`known_categories` is
        encoded as index 0; a null in any feature column is imputed (a date
        that does not parse with the stored format is read as null).

        Parameters
        ----------
        df : DataFrame of shape (n_rows, n_columns)
            Raw rows with the schema's columns (target optional).

        Returns
        -------
        InputFlags
            Row positions 0 .. n_rows - 1 in the order of ``df``.

        Raises
        ------
        SchemaError
            If the batch fails validation.
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        known = self.known_categories()
        features, _ = schema_parts(self.schema)
        frame = validate_batch(df, self.schema, require_target=False)
        unseen: dict[str, dict[int, str]] = {}
        null: dict[str, list[int]] = {}
        for feature in features:
            name = feature["name"]
            if feature["kind"] == "dropped":
                continue
            values = frame[name]
            missing = values.isna().to_numpy()  # (n_rows,)
            if missing.any():
                null[name] = np.flatnonzero(missing).tolist()
            if name in known:
                outside = ~missing & ~values.isin(known[name]).to_numpy()  # (n_rows,)
                if outside.any():
                    unseen[name] = {int(i): str(values.iat[i]) for i in np.flatnonzero(outside)}
        return InputFlags(n_rows=len(frame), unseen=unseen, null=null, known={c: known[c] for c in unseen})

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
        check_is_fitted(self, "column_transformer_", msg=_NOT_FITTED)
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

    # ------------------------------------------------------------- storage
    def to_bytes(self) -> bytes:
        """Serialize as a JSON envelope holding a skops payload (:mod:`daily_mlops.ml.preprocessor_io`).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        from daily_mlops.ml.preprocessor_io import preprocessor_to_bytes

        return preprocessor_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes, *, sha256: str) -> TabularPreprocessor:
        """Load a preprocessor stored by :meth:`to_bytes`, after checking its sha256.

        The digest is checked first, then every type in the skops payload
        against :data:`~daily_mlops.ml.preprocessor_io.SKOPS_ALLOWED_TYPES`;
        raises ``IntegrityError`` or ``UnsafeArtifactError`` as
        :func:`daily_mlops.ml.preprocessor_io.preprocessor_from_bytes` does.
        """
        from daily_mlops.ml.preprocessor_io import preprocessor_from_bytes

        return preprocessor_from_bytes(cls, data, sha256=sha256)
