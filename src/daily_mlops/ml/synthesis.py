"""The distribution model: SDV Gaussian copulas fit to the reference data.

One :class:`Synthesizer` is fit once on the real reference rows (bootstrap keeps a stratified 30% out).
With ``target_column`` (as bootstrap fits it) it is one Gaussian copula per target class, each class
sampled at its reference rate, which keeps the feature-target relation (why, measured:
:mod:`daily_mlops.ml._copulas`); without it, one copula on all columns. every
logical date then draws its own batch from it with :meth:`Synthesizer.generate`.
A batch depends only on ``(seed, logical date)``, so a rerun of a DAG run for the
same logical date produces the same rows (house style rule 5).

Storage holds data, never code: the rows the synthesizer was fit on, as
canonical CSV (:meth:`Synthesizer.reference_csv`), plus a JSON record of the
fit seed, the column dtypes and the SDV metadata
(:meth:`Synthesizer.storage_record`) with each copula's learned parameters (:mod:`._copula_params`).
:meth:`Synthesizer.from_reference` parses them, refits SDV's preprocessing and rebuilds the copulas
(an older record: refits them), so it samples the same rows as the original.

Sources
-------
- SDV 2.0 single-table API: ``Metadata.detect_from_dataframes``,
  ``Metadata.load_from_dict``, ``GaussianCopulaSynthesizer``,
  ``fit({name: df})``, ``sample(n)`` returning ``{name: df}``
  (https://docs.sdv.dev/sdv/modeling/single-table-synthesizers/gaussiancopulasynthesizer).
- Sampling randomness, read from the installed SDV 2.0.0 source
  (``sdv/single_table/base.py``): ``reset_sampling()`` restores the RDT
  transformers' reverse-transform generators; the copula's own generator is set
  by ``_set_random_state(seed)`` and, when nothing set it, by the fixed seed
  ``FIXED_RNG_SEED = 73251`` on the first ``sample`` call. ``copulas`` draws
  inside a context that swaps NumPy's global state in and restores it, so
  seeding ``numpy.random`` globally has no effect and the global state is left
  untouched.
- The sdtypes metadata detection can produce, read from SDV 2.0.0
  ``sdv/metadata/_single_table.py`` (``_SDTYPE_KWARGS``,
  ``_REFERENCE_TO_SDTYPE``): :data:`ALLOWED_SDTYPES`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from daily_mlops.dates import LogicalDate, chunk_seed, day_seed
from daily_mlops.errors import MLOpsError, SchemaError, UnsafeArtifactError
from daily_mlops.ml._columns import set_datetime_formats
from daily_mlops.ml._copula_params import check_copula_params, copula_params, jsonable
from daily_mlops.ml._copulas import MARGINALS, fit_class_copulas, fit_copula, quiet_sdv, sample_class_copulas

__all__ = ["ALLOWED_SDTYPES", "BASIC_SDTYPES", "REFERENCE_FORMAT", "Synthesizer", "keep_reference_values"]

#: Name of the single SDV table the reference frame is registered under.
TABLE_NAME = "reference"
#: ``reference_format`` of a stored synthesizer: canonical CSV of the fit rows.
REFERENCE_FORMAT = "daily_mlops.reference-csv/v1"
#: sdtypes a stored SDV metadata may name: the basic ones, then the PII types
#: SDV's detection infers from column names (sampled by RDT's built-in
#: anonymizers). Any other sdtype would make RDT call a Faker method named by
#: the stored document, so it is refused.
ALLOWED_SDTYPES = frozenset({
    "numerical", "datetime", "categorical", "ordinal", "boolean", "id", "unknown",
    "phone_number", "email", "ssn", "first_name", "last_name", "country_code", "administrative_unit",
    "state_abbr", "city", "postcode", "street_address", "secondary_address", "latitude", "longitude",
    "ipv4_address", "ipv6_address", "mac_address", "user_agent_string", "iban", "swift11", "swift8",
    "credit_card_number", "vin", "license_plate",
})
#: sdtypes whose values the copula models itself; a detected PII sdtype outside them is made ``categorical``.
BASIC_SDTYPES = frozenset({"numerical", "datetime", "categorical", "ordinal", "boolean", "id", "unknown"})
_NOT_FITTED = "this %(name)s is not fitted; call fit(reference) or load one with Synthesizer.from_reference"
_REFIT_FIX = ("restore the artifact or re-register the synthesizer with `daily-mlops bootstrap` "
              "on a fresh MLOPS_MONGO_DB")


def _check_metadata(metadata: Any, columns: list[str], *, fix: str = _REFIT_FIX) -> dict:
    """``metadata`` when it is one-table SDV metadata of ``columns`` with allowed sdtypes.

    Raises
    ------
    SchemaError
        Naming the first key, column or sdtype that is not allowed.
    """
    problem = None
    if not isinstance(metadata, Mapping) or not set(metadata) <= {"tables", "relationships", "METADATA_SPEC_VERSION"}:
        problem = "it is not a dict with keys tables, relationships, METADATA_SPEC_VERSION"
    elif metadata.get("relationships") or not isinstance(metadata.get("tables"), Mapping) \
            or list(metadata["tables"]) != [TABLE_NAME]:
        problem = f"it must describe exactly one table {TABLE_NAME!r} and no relationships"
    else:
        table = metadata["tables"][TABLE_NAME]
        described = table.get("columns") if isinstance(table, Mapping) else None
        if not isinstance(described, Mapping) or not set(table) <= {"columns", "primary_key", "alternate_keys"}:
            problem = f"table keys {sorted(table) if isinstance(table, Mapping) else table!r} are not allowed"
        elif list(described) != columns:
            problem = f"its columns {list(described)[:25]} differ from the reference columns {columns[:25]}"
        else:
            for name, column in described.items():
                sdtype = column.get("sdtype") if isinstance(column, Mapping) else None
                if not isinstance(sdtype, str) or sdtype not in ALLOWED_SDTYPES:
                    problem = f"column {name!r} has sdtype {sdtype!r}, which is not in ALLOWED_SDTYPES"
                    break
    if problem:
        raise SchemaError(f"the synthesizer's SDV metadata was refused: {problem}; {fix}")
    return dict(metadata)


def keep_reference_values(metadata: Any, table_name: str) -> list[str]:
    """Make every column SDV detected as a PII type (``postcode``, ``city``, ``email``, ...) ``categorical``.

    SDV's detection infers PII sdtypes from column names, and RDT then samples
    made-up values for them (Faker: US zip codes for a ``postcode`` column).
    The loop's preprocessor knows only the reference's categories, so every
    sampled value would be unseen: the data-quality gate would stop every day
    (measured on ``scripts/make_wide_table.py``'s table: unseen-category share
    1.000 on ``postcode``, drift 0.0). As ``categorical`` the copula samples the
    reference's own values, at their frequencies. ID columns (sdtype ``id``)
    were dropped by the schema before this point.

    Returns
    -------
    list of str
        The columns changed, in metadata order.
    """
    columns = metadata.to_dict()["tables"][table_name]["columns"]
    changed = [name for name, column in columns.items() if column.get("sdtype") not in BASIC_SDTYPES]
    for name in changed:
        metadata.update_column(name, table_name=table_name, sdtype="categorical")
    return changed


class Synthesizer(BaseEstimator):
    """A Gaussian copula synthesizer of the reference data, sampled per logical date.

    Follows the scikit-learn estimator contract (``BaseEstimator``:
    ``get_params``, ``__init__`` only stores parameters, learned state ends in
    ``_``, ``check_is_fitted``); it samples rather than predicts.

    Parameters
    ----------
    seed : int, default=42
        Seeds NumPy's global generator while fitting (restored afterwards), so
        that fitting is reproducible even if a dependency draws from it.
        Sampling takes its own ``seed`` in :meth:`generate`.
    target_column : str or None, default=None
        When set, one copula per class of this column, each class sampled at
        its reference rate (:func:`~daily_mlops.ml._copulas.fit_class_copulas`);
        when None, one copula on all columns (the target is one more column).
    marginal : {"beta", "truncnorm"}, default="beta"
        SDV's ``default_distribution`` of the numerical marginals (``MLOPS_SYNTHESIS_MARGINAL``). ``beta`` keeps
        the bundled data's ratio 1.05; ``truncnorm`` kept more signal and a smaller evaluation gap on wide
        imbalanced tables (``docs/synthesis_options.md``). Either way a collapsed marginal is refit as a
        ``truncnorm`` (:func:`~daily_mlops.ml._copulas.collapsed_columns`).

    Attributes
    ----------
    synthesizer_ : sdv.single_table.GaussianCopulaSynthesizer or None
        The fitted SDV synthesizer (None with ``target_column``).
    class_synthesizers_, classes_, class_rates_ : list
        With ``target_column``: one fitted copula per class label (sorted by
        ``str``) and each label's fraction of the reference rows; else empty.
    metadata_ : dict
        The SDV metadata detected from the reference frame
        (``Metadata.to_dict()``, JSON-able).
    columns_ : list of str
        The reference column order; generated batches use it.
    n_reference_rows_ : int
        Rows the synthesizer was fit on.
    reference_ : DataFrame of shape (n_reference_rows_, len(columns_))
        The rows it was fit on (index ``0..n-1``); stored by :meth:`reference_csv`.

    Notes
    -----
    Timing on the bundled German credit data (1000 rows, 21 columns, 2 cores):
    fit about 1.2-1.4 s, 10 000 rows sampled in about 0.4-0.5 s.
    """

    def __init__(self, *, seed: int = 42, target_column: str | None = None, marginal: str = "beta") -> None:
        self.seed = seed
        self.target_column = target_column
        self.marginal = marginal

    # ------------------------------------------------------------------ fit
    def fit(self, reference: pd.DataFrame, y: None = None, *, datetime_formats: Mapping | None = None) -> Synthesizer:
        """Detect SDV metadata and fit a Gaussian copula to the reference rows.

        Parameters
        ----------
        reference : DataFrame of shape (n_rows, n_columns)
            Real rows, target column included (synthesized like any other
            column, or per class with ``target_column``). Columns become ``str``, the index ``0..n-1``.
        y : None
            Ignored; accepted for the scikit-learn API.
        datetime_formats : mapping of str to str, optional
            The schema's date formats (:func:`daily_mlops.ml.schema.datetime_formats`), set as SDV ``datetime_format``.

        Returns
        -------
        self : Synthesizer

        Raises
        ------
        SchemaError
            If ``reference`` is not a DataFrame, has no rows or no columns.
        """
        if not isinstance(reference, pd.DataFrame):
            raise SchemaError(f"the reference data is a {type(reference).__name__}, not a pandas DataFrame; "
                              "read the CSV with daily_mlops.ml.preprocessing.read_csv")
        if reference.shape[0] == 0 or reference.shape[1] == 0:
            raise SchemaError(f"the reference data has shape {reference.shape}; the synthesizer needs at least "
                              "one row and one column (check MLOPS_REFERENCE_DATA)")
        from daily_mlops.ml._without_torch import import_without_torch

        import_without_torch("sdv")  # torch is not needed here (see that module)
        from sdv.metadata import Metadata

        frame = reference.copy().reset_index(drop=True)
        frame.columns = [str(column) for column in frame.columns]
        with quiet_sdv():
            metadata = Metadata.detect_from_dataframes({TABLE_NAME: frame})
            set_datetime_formats(metadata, TABLE_NAME, datetime_formats or {})
            keep_reference_values(metadata, TABLE_NAME)
        return self._fit(frame, metadata)

    def _fit(self, frame: pd.DataFrame, metadata: Any, models: list | None = None) -> Synthesizer:
        """Fit the copula(s) on ``frame`` (str columns, index 0..n-1) with SDV ``metadata`` (or restore ``models``)."""
        if self.marginal not in MARGINALS:
            raise SchemaError(f"the synthesizer's marginal {self.marginal!r} is not one of {list(MARGINALS)}; "
                              "set MLOPS_SYNTHESIS_MARGINAL to one of them")
        synthesizer = None
        self.classes_: list[Any] = []
        self.class_synthesizers_: list[Any] = []
        self.class_rates_: list[float] = []
        if self.target_column is not None:
            self.classes_, self.class_synthesizers_, self.class_rates_ = fit_class_copulas(
                frame, jsonable(metadata.to_dict()), str(self.target_column), seed=int(self.seed), models=models,
                fix=_REFIT_FIX, marginal=self.marginal)
        else:
            synthesizer = fit_copula(metadata, {TABLE_NAME: frame}, seed=int(self.seed),
                                     model=models[0] if models else None, fix=_REFIT_FIX, marginal=self.marginal)

        self.synthesizer_ = synthesizer
        self.metadata_ = jsonable(metadata.to_dict())
        self.columns_ = list(frame.columns)
        self.n_reference_rows_ = int(len(frame))
        self.reference_ = frame
        return self

    # ------------------------------------------------------------ generate
    def generate(self, n_rows: int, *, seed: int, logical_date: LogicalDate) -> pd.DataFrame:
        """Sample one logical date's batch.

        The same ``(seed, logical_date)`` always gives the same rows (also
        after storing and :meth:`from_reference`); another date gives other
        rows. Before sampling, SDV's sampling state is reset
        (``reset_sampling``) and the copula's generator is seeded with
        :func:`day_seed`; NumPy's global generator is not touched.

        Parameters
        ----------
        n_rows : int
            Rows to sample, >= 1.
        seed : int
            The run seed (``MLOPS_SEED``).
        logical_date : datetime.date, datetime.datetime or str
            The DAG run's logical date; only its UTC calendar day matters.

        Returns
        -------
        DataFrame of shape (n_rows, len(columns_))
            Columns in the reference order, index ``0..n_rows-1``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        MLOpsError
            If ``n_rows`` is not a positive integer, the seed or date cannot be
            read, or the installed SDV lacks the sampling-seed hook.
        """
        return next(self.generate_chunks(n_rows, seed=seed, logical_date=logical_date, chunk_rows=n_rows))

    def generate_chunks(
        self, n_rows: int, *, seed: int, logical_date: LogicalDate, chunk_rows: int
    ) -> Iterator[pd.DataFrame]:
        """Sample one logical date's batch as consecutive chunks of at most ``chunk_rows`` rows.

        Memory holds one chunk at a time. SDV's sampling state is reset once;
        chunk ``k`` seeds the copula with :func:`day_seed` (``k = 0``) or
        :func:`chunk_seed` of it (``k >= 1``). So for ``n_rows <= chunk_rows``
        the one chunk is :meth:`generate`'s batch; larger days depend only on
        ``(seed, logical_date, n_rows, chunk_rows)``. Two streams of one
        synthesizer must not interleave (they share SDV's sampling state).

        Parameters
        ----------
        n_rows, seed, logical_date
            As in :meth:`generate`.
        chunk_rows : int
            Rows per chunk, >= 1 (the last chunk may be shorter).

        Yields
        ------
        DataFrame of shape (<= chunk_rows, len(columns_))
            Columns in the reference order; the index is the row number in
            the batch (``start..start+len-1``).

        Raises
        ------
        sklearn.exceptions.NotFittedError, MLOpsError
            As :meth:`generate`, and when ``chunk_rows`` is not a positive integer.
        """
        check_is_fitted(self, "synthesizer_", msg=_NOT_FITTED)
        synthesizers = self.class_synthesizers_ or [self.synthesizer_]
        for name, value in (("n_rows", n_rows), ("chunk_rows", chunk_rows)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise MLOpsError(f"{name}={value!r} must be a positive integer (MLOPS_DAILY_ROWS sets n_rows)")
        random_state = day_seed(seed, logical_date)
        if not hasattr(synthesizers[0], "_set_random_state"):
            raise MLOpsError(
                "the installed SDV has no GaussianCopulaSynthesizer._set_random_state; "
                "install sdv>=2.0,<3 (the version this code was checked against)"
            )
        with quiet_sdv():
            for synthesizer in synthesizers:
                synthesizer.reset_sampling()
        for k, start in enumerate(range(0, int(n_rows), int(chunk_rows))):
            size = min(int(chunk_rows), int(n_rows) - start)
            if self.class_synthesizers_:
                frame = sample_class_copulas(
                    synthesizers, self.classes_, self.class_rates_, n_rows=size, target=str(self.target_column),
                    random_state=random_state if k == 0 else chunk_seed(random_state, k), columns=self.columns_,
                    target_dtype=self.reference_[str(self.target_column)].dtype)
                frame.index = pd.RangeIndex(start, start + size)
                yield frame
                continue
            with quiet_sdv():
                synthesizer._set_random_state(random_state if k == 0 else chunk_seed(random_state, k))  # SDV 2.0
                sampled = synthesizer.sample(size)
            frame = sampled[TABLE_NAME] if isinstance(sampled, dict) else sampled
            frame = frame.loc[:, self.columns_].reset_index(drop=True)
            frame.index = pd.RangeIndex(start, start + size)
            yield frame

    # ------------------------------------------------------------- storage
    def reference_csv(self) -> bytes:
        """The rows the synthesizer was fit on, as canonical UTF-8 CSV (the stored artifact).

        Checked before it is returned: parsing the bytes back with the
        recorded dtypes gives exactly :attr:`reference_`.

        Returns
        -------
        bytes
            :func:`daily_mlops.ml.serialization.frame_to_csv` of ``reference_``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        SchemaError
            If a column cannot be stored exactly (a dtype other than float,
            int, bool, str or ``datetime64[ns]``, an empty string, a non-string
            value in a text column); names the column.
        """
        from daily_mlops.ml.serialization import frame_columns, frame_difference, frame_from_csv, frame_to_csv

        check_is_fitted(self, "reference_", msg=_NOT_FITTED)
        data = frame_to_csv(self.reference_)
        back = frame_from_csv(data, frame_columns(self.reference_), what="the synthesizer's reference CSV")
        difference = frame_difference(back, self.reference_)
        if difference:
            raise SchemaError(
                f"the synthesizer's reference rows do not survive CSV storage ({difference}); "
                "fit on a frame from daily_mlops.ml.schema.validate_batch"
            )
        return data

    def storage_record(self) -> dict[str, Any]:
        """What :meth:`from_reference` needs besides the CSV (JSON-able, for the registry document).

        Returns
        -------
        dict
            ``reference_format`` (:data:`REFERENCE_FORMAT`), ``fit_seed``
            (int), ``reference_columns`` (``[{"name", "dtype"}, ...]``),
            ``sdv_metadata`` (``metadata_``), ``target_column`` (None: one
            copula), ``copula_params`` (:func:`~._copula_params.copula_params`), ``synthesis``, ``class_rates``,
            ``marginal``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        SchemaError
            If a column's dtype cannot be stored, or the detected metadata
            names an sdtype outside :data:`ALLOWED_SDTYPES`.
        """
        from daily_mlops.ml.serialization import frame_columns

        check_is_fitted(self, "reference_", msg=_NOT_FITTED)
        return {
            "reference_format": REFERENCE_FORMAT,
            "fit_seed": int(self.seed),
            "reference_columns": frame_columns(self.reference_),
            "sdv_metadata": _check_metadata(
                self.metadata_, self.columns_, fix="rename or drop that column so SDV detects a basic sdtype"
            ),
            "target_column": self.target_column,
            "copula_params": copula_params(self.class_synthesizers_ or [self.synthesizer_]),
            "synthesis": "per_class" if self.class_synthesizers_ else "single",
            "class_rates": {str(label): rate for label, rate in zip(self.classes_, self.class_rates_, strict=True)},
            "marginal": self.marginal,
        }

    @classmethod
    def from_reference(cls, data: bytes, *, sha256: str, record: Mapping[str, Any]) -> Synthesizer:
        """Rebuild a stored synthesizer: check and parse its reference rows, restore (or refit) its copulas.

        Nothing stored is deserialised as code: ``data`` is parsed as CSV with
        the recorded column dtypes, the parsed frame must write back to the
        same bytes (so it equals the frame fit at bootstrap), the SDV metadata
        must pass :data:`ALLOWED_SDTYPES`, and the copula (one per class with a recorded ``target_column``;
        one without, as stored before) is rebuilt from ``copula_params`` after its univariate types pass
        :data:`~daily_mlops.ml._copula_params.ALLOWED_UNIVARIATES` (SDV's preprocessing is refit), or, for a record
        without them, refit with the recorded seed; either way it samples the rows the original did.

        Parameters
        ----------
        data : bytes
            The stored artifact (:meth:`reference_csv`).
        sha256 : str
            The hex sha256 recorded when the artifact was stored.
        record : mapping
            Holds the keys of :meth:`storage_record` (the registry document
            itself can be passed).

        Returns
        -------
        Synthesizer
            Fitted, ``seed`` set to the recorded fit seed.

        Raises
        ------
        IntegrityError
            If ``sha256(data)`` differs from ``sha256`` (names both digests).
        UnsafeArtifactError
            If the record is not in :data:`REFERENCE_FORMAT` (e.g. written by
            an older version), ``data`` is not UTF-8 CSV text, or ``copula_params`` is refused.
        SchemaError
            If the columns, values or SDV metadata do not match the record.
        """
        from daily_mlops.ml._without_torch import import_without_torch

        import_without_torch("sdv")  # torch is not needed here (see that module)
        from sdv.errors import InvalidDataError, SynthesizerInputError
        from sdv.metadata import Metadata
        from sdv.metadata.errors import InvalidMetadataError

        from daily_mlops.checksums import check_sha256, sha256_hex
        from daily_mlops.ml.serialization import frame_from_csv, frame_to_csv

        what = "synthesizer artifact"
        data = check_sha256(data, sha256, what=what)
        if record.get("reference_format") != REFERENCE_FORMAT:
            raise UnsafeArtifactError(
                f"{what} has reference_format {record.get('reference_format')!r}, not {REFERENCE_FORMAT!r}; "
                f"only reference rows are loaded (it may have been stored by an older daily-mlops): {_REFIT_FIX}"
            )
        seed = record.get("fit_seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SchemaError(f"{what}: the recorded fit_seed {seed!r} is not an integer; {_REFIT_FIX}")
        columns = record.get("reference_columns")
        if not isinstance(columns, list) or not columns:
            raise SchemaError(f"{what}: reference_columns {columns!r} is not a non-empty list; {_REFIT_FIX}")
        frame = frame_from_csv(data, columns, what=what, fix=_REFIT_FIX)
        if sha256_hex(frame_to_csv(frame)) != sha256_hex(data):
            raise SchemaError(f"{what} is not canonical CSV (it does not write back to the same bytes); {_REFIT_FIX}")
        if frame.empty:
            raise SchemaError(f"{what} holds no rows; {_REFIT_FIX}")
        recorded = _check_metadata(record.get("sdv_metadata"), list(frame.columns))
        target, marginal = record.get("target_column"), record.get("marginal", "beta")  # absent: stored before
        if marginal not in MARGINALS:
            raise SchemaError(
                f"{what}: the recorded marginal {marginal!r} is not one of {list(MARGINALS)}; {_REFIT_FIX}")
        if target is not None and target not in frame.columns:
            raise SchemaError(f"{what}: the recorded target_column {target!r} is not a reference column; {_REFIT_FIX}")
        models = None if record.get("copula_params") is None else check_copula_params(
            record["copula_params"], 1 if target is None else frame[target].nunique(dropna=False), fix=_REFIT_FIX)
        try:
            with quiet_sdv():
                metadata = Metadata.load_from_dict(recorded)
            model = cls(seed=seed, target_column=target, marginal=marginal)._fit(frame, metadata, models)
        except (InvalidMetadataError, InvalidDataError, SynthesizerInputError, ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"{what}: SDV refused the recorded metadata or rows ({exc}); {_REFIT_FIX}") from exc
        if model.metadata_ != jsonable(recorded):
            raise SchemaError(f"{what}: the refit synthesizer's metadata differs from the recorded one; {_REFIT_FIX}")
        return model
