"""Store a fitted Gaussian copula's learned parameters as JSON and rebuild it without refitting.

Why
---
Refitting the stored synthesizer every day cost 1.4-3 s of each day's
``generate_data``, 83% of it SciPy fitting a beta distribution per column
(``copulas.univariate.beta.BetaUnivariate._fit`` -> ``rv_continuous.fit``).
The fit's result is small and plain: ``GaussianMultivariate.to_dict()`` is a
correlation matrix, the processed column names and, per column, a univariate
``type`` name with a few numbers (``a``, ``b``, ``loc``, ``scale`` for a beta).
:func:`copula_params` records it at fit time; :func:`restore_fitted` refits
only SDV's preprocessing (the RDT data processor, cheap and deterministic) on
the stored reference rows and rebuilds the copula from the record, so it samples
exactly the rows a refit copula samples.

Nothing stored names code that is run: ``copulas``' ``from_dict`` imports the
module a ``type`` string names, so every ``type`` is checked against
:data:`ALLOWED_UNIVARIATES` first and replaced by the class object itself
(``copulas.utils.get_instance`` accepts a class), so no stored string reaches an import.

Sources
-------
Read from the installed ``copulas`` 0.14.1 and SDV 2.0.0 source:
``copulas/multivariate/gaussian.py`` (``to_dict``, ``from_dict``),
``copulas/univariate/base.py`` (``Univariate.from_dict``: ``get_instance(params.pop('type'))``,
``_set_params``), ``copulas/utils.py`` (``get_instance``), and
``sdv/single_table/base.py`` (``fit`` = ``preprocess`` then ``fit_processed_data``,
which sets ``_fitted``, ``_fitted_date``, ``_fitted_sdv_version``,
``_fitted_sdv_enterprise_version``; ``sample`` checks ``_fitted``) and
``sdv/single_table/copulas.py`` (``_fit`` sets ``_num_rows`` and ``_model``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from daily_mlops.errors import UnsafeArtifactError

__all__ = ["ALLOWED_UNIVARIATES", "COPULA_FORMAT", "check_copula_params", "copula_params", "jsonable",
           "restore_fitted"]

#: ``format`` of the ``copula_params`` record: a list of ``GaussianMultivariate.to_dict()``.
COPULA_FORMAT = "daily_mlops.copula-params/v1"
#: The one multivariate ``type`` a record may name.
MULTIVARIATE_TYPE = "copulas.multivariate.gaussian.GaussianMultivariate"
#: Univariate ``type`` names a record may hold (the ``copulas.univariate`` classes), with their parameters.
ALLOWED_UNIVARIATES: Mapping[str, frozenset[str]] = {
    "copulas.univariate.beta.BetaUnivariate": frozenset({"a", "b", "loc", "scale"}),
    "copulas.univariate.gamma.GammaUnivariate": frozenset({"a", "loc", "scale"}),
    "copulas.univariate.gaussian.GaussianUnivariate": frozenset({"loc", "scale"}),
    "copulas.univariate.gaussian_kde.GaussianKDE": frozenset({"dataset"}),
    "copulas.univariate.log_laplace.LogLaplace": frozenset({"c", "loc", "scale"}),
    "copulas.univariate.student_t.StudentTUnivariate": frozenset({"df", "loc", "scale"}),
    "copulas.univariate.truncated_gaussian.TruncatedGaussian": frozenset({"a", "b", "loc", "scale"}),
    "copulas.univariate.uniform.UniformUnivariate": frozenset({"loc", "scale"}),
}


def jsonable(value: Any) -> Any:
    """Round-trip ``value`` through JSON, turning NumPy scalars and arrays into Python ones (others: ``str``)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _univariate_classes() -> dict[str, type]:
    """The allow-listed classes by ``type`` name, imported from fixed module names (not from a record)."""
    from copulas.univariate import (
        BetaUnivariate,
        GammaUnivariate,
        GaussianKDE,
        GaussianUnivariate,
        LogLaplace,
        StudentTUnivariate,
        TruncatedGaussian,
        UniformUnivariate,
    )

    classes = (BetaUnivariate, GammaUnivariate, GaussianUnivariate, GaussianKDE, LogLaplace, StudentTUnivariate,
               TruncatedGaussian, UniformUnivariate)
    by_name = {f"{cls.__module__}.{cls.__name__}": cls for cls in classes}
    assert set(by_name) == set(ALLOWED_UNIVARIATES), f"copulas renamed a univariate class: {sorted(by_name)}"
    return by_name


def copula_params(synthesizers: list) -> dict[str, Any]:
    """The learned parameters of fitted SDV ``GaussianCopulaSynthesizer`` s, as a JSON-able record.

    Parameters
    ----------
    synthesizers : list of sdv.single_table.GaussianCopulaSynthesizer
        Fitted; one per target class (in class order) or a single one.

    Returns
    -------
    dict
        ``format`` (:data:`COPULA_FORMAT`) and ``models``: one
        ``GaussianMultivariate.to_dict()`` per synthesizer (``correlation``
        (n_columns x n_columns), ``columns``, ``univariates``, ``type``), NumPy
        scalars made Python numbers. Checked with :func:`check_copula_params`.
    """

    record = {"format": COPULA_FORMAT, "models": [jsonable(s._model.to_dict()) for s in synthesizers]}  # SDV 2.0
    check_copula_params(record, len(synthesizers), fix="this copula cannot be stored as parameters")
    return record


def check_copula_params(record: Any, n_models: int, *, fix: str) -> list[dict[str, Any]]:
    """Check a stored ``copula_params`` record before anything is built from it.

    Every univariate ``type`` must be a key of :data:`ALLOWED_UNIVARIATES` with
    exactly its parameters (numbers; a list of numbers for ``dataset``); the
    correlation must be ``len(columns)`` rows of ``len(columns)`` numbers. No
    module is imported for a name in the record.

    Parameters
    ----------
    record : Any
        The stored value (from the registry document).
    n_models : int
        The copulas expected: one per target class, or 1.
    fix : str
        What the user can do, appended to the error.

    Returns
    -------
    list of dict
        Copies of the models, each univariate ``type`` replaced by its class
        (ready for ``GaussianMultivariate.from_dict``).

    Raises
    ------
    UnsafeArtifactError
        Naming the field (``copula_params.models[i].univariates[j].type``, ...) that is malformed or not allowed.
    """
    def refuse(field: str, problem: str) -> UnsafeArtifactError:
        return UnsafeArtifactError(f"the synthesizer's stored copula parameters were refused: {field} {problem}; {fix} "
                                   "(or unset copula_params in its registry document to refit from the reference rows)")

    if not isinstance(record, Mapping) or record.get("format") != COPULA_FORMAT:
        raise refuse("copula_params.format", f"is not {COPULA_FORMAT!r}")
    models = record.get("models")
    if not isinstance(models, list) or len(models) != n_models:
        raise refuse("copula_params.models", f"is not a list of {n_models} copula(s)")
    checked, classes = [], None
    for i, model in enumerate(models):
        where = f"copula_params.models[{i}]"
        if not isinstance(model, Mapping) or set(model) != {"correlation", "univariates", "columns", "type"}:
            raise refuse(where, "does not have exactly the keys correlation, univariates, columns, type")
        if model["type"] != MULTIVARIATE_TYPE:
            raise refuse(f"{where}.type", f"is {str(model['type'])[:80]!r}, not {MULTIVARIATE_TYPE!r}")
        columns, univariates, correlation = model["columns"], model["univariates"], model["correlation"]
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise refuse(f"{where}.columns", "is not a non-empty list of column names")
        if not isinstance(univariates, list) or len(univariates) != len(columns):
            raise refuse(f"{where}.univariates", f"is not a list of {len(columns)} univariates (one per column)")
        if not isinstance(correlation, list) or len(correlation) != len(columns) or not all(
                isinstance(row, list) and len(row) == len(columns) and all(map(_is_number, row))
                for row in correlation):
            raise refuse(f"{where}.correlation", f"is not a {len(columns)} x {len(columns)} matrix of numbers")
        rebuilt = []
        for j, univariate in enumerate(univariates):
            name = univariate.get("type") if isinstance(univariate, Mapping) else None
            if not isinstance(name, str) or name not in ALLOWED_UNIVARIATES:
                raise refuse(f"{where}.univariates[{j}].type",
                             f"is {str(name)[:80]!r}, which is not in ALLOWED_UNIVARIATES "
                             f"{sorted(ALLOWED_UNIVARIATES)}")
            params = {key: value for key, value in univariate.items() if key != "type"}
            numbers_ok = all(
                isinstance(v, list) and v and all(map(_is_number, v)) if key == "dataset" else _is_number(v)
                for key, v in params.items())
            if set(params) != ALLOWED_UNIVARIATES[name] or not numbers_ok:
                raise refuse(f"{where}.univariates[{j}]", f"does not hold exactly the numbers "
                             f"{sorted(ALLOWED_UNIVARIATES[name])} of a {name.rsplit('.', 1)[1]}")
            classes = classes or _univariate_classes()
            rebuilt.append({**params, "type": classes[name]})
        checked.append({"columns": list(columns), "correlation": [list(row) for row in correlation],
                        "univariates": rebuilt, "type": MULTIVARIATE_TYPE})
    return checked


def restore_fitted(synthesizer: Any, data: dict, model: dict[str, Any], *, fix: str) -> None:
    """Make an unfitted SDV ``GaussianCopulaSynthesizer`` fitted from checked copula parameters.

    SDV's preprocessing (constraints and the RDT data processor) is fit on
    ``data`` exactly as ``fit`` does (:func:`_fit_preprocessing`); the copula model is
    ``GaussianMultivariate.from_dict(model)`` instead of a fit; then the
    attributes ``fit_processed_data`` sets are set (``_num_rows``, ``_model``,
    ``_fitted``, ``_fitted_date``, ``_fitted_sdv_version``,
    ``_fitted_sdv_enterprise_version``).

    Parameters
    ----------
    synthesizer : sdv.single_table.GaussianCopulaSynthesizer
        New (unfitted), built with the metadata of the fit.
    data : dict of str to DataFrame
        ``{table_name: rows}``, the rows of the original fit.
    model : dict
        One entry of :func:`check_copula_params`'s result.
    fix : str
        Appended to the error.

    Raises
    ------
    UnsafeArtifactError
        When the processed columns differ from the model's ``columns``.
    """
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdv")  # torch is not needed here (see that module)
    from copulas.multivariate import GaussianMultivariate
    from sdv import version

    columns, n_rows = _fit_preprocessing(synthesizer, data)
    if columns != model["columns"]:
        raise UnsafeArtifactError(
            f"the synthesizer's stored copula parameters were refused: copula_params columns {model['columns'][:10]} "
            f"differ from the processed reference columns {columns[:10]}; {fix}")
    restored = GaussianMultivariate.from_dict({**model, "univariates": [dict(u) for u in model["univariates"]]})
    synthesizer._num_rows = n_rows
    synthesizer._model = restored
    synthesizer._fitted = True
    synthesizer._fitted_date = datetime.datetime.today().strftime("%Y-%m-%d")
    synthesizer._fitted_sdv_version = getattr(version, "community", None)
    synthesizer._fitted_sdv_enterprise_version = getattr(version, "enterprise", None)


def _fit_preprocessing(synthesizer: Any, data: dict) -> tuple[list[str], int]:
    """Fit SDV's preprocessing on ``data`` as ``preprocess`` does, without transforming the rows.

    ``preprocess`` (SDV 2.0 ``sdv/single_table/base.py``) is ``validate``,
    the constraints (``_preprocess_helper``), then ``_preprocess``:
    ``DataProcessor.fit`` and ``DataProcessor.transform`` of every row (its
    renaming of integer column names does not apply: they are ``str``). A
    restore needs only the processed column names and row count, so the
    rows are not transformed again (a third of the restore's time): the
    fitted RDT ``HyperTransformer`` records the columns its ``transform``
    returns for a table with every fitted column (``_output_columns``, in
    that order, read from ``rdt/hyper_transformer.py`` ``fit`` and
    ``_transform``). The transformers' random states are reset before
    sampling (``reset_sampling``), so skipping that transform changes no
    sampled row.

    Returns
    -------
    (columns, n_rows)
        The processed column names, in order, and the rows the preprocessing was fit on.
    """
    table = next(iter(data.values()))
    synthesizer.validate(data)
    table = synthesizer._preprocess_helper(table)  # SDV 2.0: constraints (none here), composite keys
    synthesizer._data_processor.fit(table)
    return [str(c) for c in synthesizer._data_processor._hyper_transformer._output_columns], len(table)
