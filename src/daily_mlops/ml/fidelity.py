"""How much of the real data a synthetic batch keeps: the real holdout, TSTR/TRTR ROC-AUC, SDMetrics quality.

Pure functions (frames in, numbers out); nothing here reads or writes MongoDB.

- :func:`holdout_split` keeps a stratified, seeded 30% of the real reference
  rows out of the synthesizer's fit (bootstrap stores that holdout).
- :func:`classifier_roc_auc` trains a scikit-learn
  ``HistGradientBoostingClassifier`` on one frame and scores ROC-AUC on
  another. Trained on the 70% fit part and scored on the holdout it is TRTR
  (train real, test real, computed once at bootstrap); trained on a row sample
  of a synthetic batch and scored on the same holdout it is TSTR (train
  synthetic, test real). ``TSTR / TRTR`` near 1 means the batch keeps the
  label signal the real rows carry.
- :func:`quality_scores` is SDMetrics' ``QualityReport`` (column shapes and
  column pair trends) on a row sample, over at most ``max_column_pairs`` column
  pairs: on a 99-column table all 4,851 pairs took about 58 s at 5,000 rows;
  the cap (210 pairs, 21 columns, the target always among them) keeps it to a
  few seconds.
- :func:`fidelity_report` runs both for one day's batch (the ``fidelity`` key of
  its ``processing_metadata``). It never raises for what the batch holds: a
  part that cannot be computed (a single class, a classifier or SDMetrics
  error) is None, with its reason under ``errors``.
- :func:`evaluation_gap` is the champion's ROC-AUC on the day's synthetic test
  split minus its ROC-AUC on the real holdout (``fidelity.evaluation_gap``,
  written after the day's evaluation): how much easier the synthetic rows are
  than real ones. Recorded, never gated.

Sources
-------
- TSTR/TRTR: Esteban, Hyland and Rätsch (2017), "Real-valued (medical) time
  series generation with recurrent conditional GANs", arXiv:1706.02633.
- SDMetrics ``sdmetrics.reports.QualityReport`` (0.32): properties
  ``Column Shapes`` and ``Column Pair Trends``
  (https://docs.sdv.dev/sdmetrics/reports/quality-report).
- scikit-learn ``HistGradientBoostingClassifier`` (native categorical support
  up to ``max_bins`` = 255 levels) and ``train_test_split(stratify=...)``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.errors import SchemaError

__all__ = [
    "HOLDOUT_FRACTION", "MAX_COLUMN_PAIRS", "MAX_ROWS", "classifier_roc_auc", "evaluation_gap", "fidelity_report",
    "holdout_split", "quality_scores", "scored_columns",
]

#: Fraction of the real reference rows kept out of the synthesizer's fit.
HOLDOUT_FRACTION = 0.3
#: Rows sampled from a batch (and from the reference) for TSTR and the quality report.
MAX_ROWS = 5_000
#: Column pairs the quality report scores at most (21 columns: 210 pairs).
MAX_COLUMN_PAIRS = 210
#: Levels HistGradientBoostingClassifier takes per categorical feature (``max_bins`` 255, one kept for missing).
_MAX_LEVELS = 254


def holdout_split(
    frame: pd.DataFrame, target: str, *, fraction: float = HOLDOUT_FRACTION, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a stratified, seeded split of ``frame`` into a fit part and a holdout.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        The real reference rows.
    target : str
        The column to stratify on.
    fraction : float, default=0.3
        Holdout share, in (0, 1).
    seed : int
        ``random_state`` of ``sklearn.model_selection.train_test_split``.

    Returns
    -------
    (fit_rows, holdout_rows) : two sorted int64 arrays of positions
        Disjoint, together ``0..n_rows-1``; each class is split in the ratio
        ``1 - fraction : fraction`` (up to rounding).

    Raises
    ------
    SchemaError
        When ``target`` is missing or a class has fewer than 2 rows.
    """
    from sklearn.model_selection import train_test_split

    if target not in frame.columns:
        raise SchemaError(f"the target column {target!r} is not in the reference data; check MLOPS_TARGET_COLUMN")
    labels = frame[target].astype(str).to_numpy()
    counts = pd.Series(labels).value_counts()
    if counts.min() < 2:
        raise SchemaError(
            f"the target column {target!r} has a class with fewer than 2 rows ({counts.to_dict()}); a stratified "
            "holdout needs at least 2 per class: add rows to MLOPS_REFERENCE_DATA"
        )
    fit, holdout = train_test_split(np.arange(len(frame)), test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(fit).astype(np.int64), np.sort(holdout).astype(np.int64)


def _features(train: pd.DataFrame, test: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model-ready copies: text/bool columns as categoricals with the train's top levels, datetimes as days.

    A numeric or datetime column that is null in every training row is left out: it carries nothing, and
    scikit-learn 1.9's binning of a column without a value raises ``ValueError: window shape cannot be larger
    than input array shape`` (``_find_binning_thresholds``; met on a 99-column batch).
    """
    columns = [c for c in train.columns if c != target]
    out_train, out_test = train[columns].copy(), test[columns].copy()
    for column in columns:
        values = train[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            for out in (out_train, out_test):
                out[column] = pd.to_datetime(out[column]).astype("int64").where(out[column].notna()) / 86_400e9
        elif not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            levels = values.astype(str).where(values.notna()).value_counts().index[:_MAX_LEVELS]
            categories = sorted(levels)
            for out in (out_train, out_test):
                text = out[column].astype(str).where(out[column].notna())
                out[column] = pd.Categorical(text, categories=categories)
        else:
            for out in (out_train, out_test):
                out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    empty = [c for c in columns
             if not isinstance(out_train[c].dtype, pd.CategoricalDtype) and out_train[c].isna().all()]
    return out_train.drop(columns=empty), out_test.drop(columns=empty)


def classifier_roc_auc(
    train: pd.DataFrame, test: pd.DataFrame, *, target: str, positive_label: Any, seed: int
) -> float | None:
    """ROC-AUC on ``test`` of a HistGradientBoostingClassifier trained on ``train``.

    Parameters
    ----------
    train, test : DataFrame of shape (n_train, n_columns), (n_test, n_columns)
        Same columns, ``target`` included.
    target : str
        The label column.
    positive_label : object
        The positive class (compared as ``str``).
    seed : int
        The classifier's ``random_state``.

    Returns
    -------
    float or None
        ROC-AUC in [0, 1], rounded to 4 decimals; None when ``train`` or
        ``test`` holds a single class (ROC-AUC is undefined).

    Raises
    ------
    ValueError
        From scikit-learn, when the classifier cannot be fit (e.g. no
        feature column holds a value). Numeric and datetime columns that
        are null in every training row are left out first (:func:`_features`).

    Notes
    -----
    The classifier runs on one OpenMP thread (``threadpoolctl``): on the
    shared 2-core machine, with other processes busy, its OpenMP threads spun
    against each other and 5,000 German credit rows took 35 s instead of 1.2 s.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    y_train = (train[target].astype(str) == str(positive_label)).to_numpy(int)
    y_test = (test[target].astype(str) == str(positive_label)).to_numpy(int)
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        return None
    from threadpoolctl import threadpool_limits

    x_train, x_test = _features(train, test, target)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):  # see Notes
        model.fit(x_train, y_train)
        scores = model.predict_proba(x_test)[:, 1]
    return round(float(roc_auc_score(y_test, scores)), 4)


def _row_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame`` drawn without replacement (seeded), index reset."""
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def scored_columns(columns: list[str], target: str, *, max_column_pairs: int, seed: int) -> list[str]:
    """The columns the quality report scores: all when their pairs fit the cap, else the target and a seeded sample.

    Returns the largest ``k`` columns with ``k (k - 1) / 2 <= max_column_pairs``
    (at least 2), in the original order.
    """
    k = max(2, int((1 + np.sqrt(1 + 8 * max_column_pairs)) // 2))
    if len(columns) <= k:
        return list(columns)
    others = [c for c in columns if c != target]
    chosen = set(np.random.default_rng(seed).choice(len(others), size=k - 1, replace=False).tolist())
    keep = {target} | {others[i] for i in chosen}
    return [c for c in columns if c in keep]


def quality_scores(
    reference: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict, *, target: str,
    max_column_pairs: int = MAX_COLUMN_PAIRS, seed: int = 0,
) -> dict[str, Any]:
    """SDMetrics QualityReport column-shapes and column-pair-trends scores of ``synthetic`` against ``reference``.

    Parameters
    ----------
    reference, synthetic : DataFrame
        Real and synthetic rows (already row-sampled by the caller).
    metadata : dict
        One-table SDV metadata (``{"tables": {name: {"columns": ...}}}``).
    target : str
        Always among the scored columns.
    max_column_pairs : int, default=210
        Cap on scored column pairs (:func:`scored_columns`).
    seed : int
        Picks the columns when the cap applies.

    Returns
    -------
    dict
        ``column_shapes``, ``column_pair_trends`` (scores in [0, 1], 4
        decimals, None when SDMetrics could not compute one), ``columns_scored``
        and ``column_pairs``.
    """
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdmetrics")  # torch is not needed here (see that module)
    from sdmetrics.reports import QualityReport

    table_name = next(iter(metadata["tables"]))
    described = metadata["tables"][table_name]["columns"]
    columns = scored_columns([c for c in reference.columns if c in described], target,
                             max_column_pairs=max_column_pairs, seed=seed)
    table = {"columns": {c: described[c] for c in columns}}
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({table_name: reference[columns]}, {table_name: synthetic[columns]},
                        {"tables": {table_name: table}}, verbose=False)
    scores = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True))

    def score(name: str) -> float | None:
        value = scores.get(name)
        return None if value is None or not np.isfinite(value) else round(float(value), 4)

    return {"column_shapes": score("Column Shapes"), "column_pair_trends": score("Column Pair Trends"),
            "columns_scored": len(columns), "column_pairs": len(columns) * (len(columns) - 1) // 2}


def fidelity_report(
    batch: pd.DataFrame, *, reference: pd.DataFrame, holdout: pd.DataFrame, metadata: dict, target: str,
    positive_label: Any, trtr_roc_auc: float | None, seed: int, max_rows: int = MAX_ROWS,
    max_column_pairs: int = MAX_COLUMN_PAIRS,
) -> dict[str, Any]:
    """The fidelity figures of one synthetic batch (the ``fidelity`` key of its ``processing_metadata``).

    The report is recorded, never gated, so it never raises for what a batch
    holds (all-null, constant or single-value columns, a single class): a
    part that cannot be computed is None and ``errors`` says why.

    Parameters
    ----------
    batch : DataFrame of shape (n_rows, n_columns)
        The day's synthetic rows (or a chunk of them); at most ``max_rows``
        rows are sampled (seeded).
    reference : DataFrame
        The real rows the synthesizer was fit on (quality report's real side,
        at most ``max_rows`` rows sampled).
    holdout : DataFrame
        The real rows kept out of the fit (TSTR is scored on them).
    metadata : dict
        The synthesizer's SDV metadata.
    target, positive_label
        The label column and its positive class.
    trtr_roc_auc : float or None
        TRTR ROC-AUC stored at bootstrap.
    seed : int
        Seeds the row samples, the column choice and the classifier.

    Returns
    -------
    dict
        ``tstr_roc_auc``, ``trtr_roc_auc``, ``ratio`` (TSTR / TRTR, None when
        either is missing), ``column_shapes``, ``column_pair_trends``,
        ``columns_scored``, ``column_pairs`` (None when the quality report
        failed), ``rows`` (``synthetic``, ``reference``, ``holdout``: row
        counts used), ``seconds`` (``tstr``, ``quality``, ``total``) and
        ``errors``: ``{part: reason}`` for each of ``tstr_roc_auc``,
        ``ratio``, ``column_shapes`` and ``column_pair_trends`` that is None,
        the reason one line (``"ValueError: ..."`` when it raised); ``{}``
        when every part was computed.
    """
    started = time.perf_counter()
    errors: dict[str, str] = {}
    sample = _row_sample(batch, max_rows, seed)
    tstr = None
    try:
        tstr = classifier_roc_auc(sample, holdout, target=target, positive_label=positive_label, seed=seed)
        if tstr is None:
            errors["tstr_roc_auc"] = _single_class_reason(sample, holdout, target, positive_label)
    except Exception as exc:  # the report is recorded, never gated: the part is None, the reason kept
        errors["tstr_roc_auc"] = _reason(exc)
    t_tstr = time.perf_counter() - started
    real = _row_sample(reference, max_rows, seed + 1)
    try:
        quality = quality_scores(real, sample, metadata, target=target, max_column_pairs=max_column_pairs, seed=seed)
        for part in ("column_shapes", "column_pair_trends"):
            if quality[part] is None:
                errors[part] = "SDMetrics QualityReport gave no finite score"
    except Exception as exc:  # as above
        quality = dict.fromkeys(("column_shapes", "column_pair_trends", "columns_scored", "column_pairs"))
        errors["column_shapes"] = errors["column_pair_trends"] = _reason(exc)
    total = time.perf_counter() - started
    ratio = round(tstr / trtr_roc_auc, 4) if tstr is not None and trtr_roc_auc else None
    if ratio is None:
        errors["ratio"] = "no TSTR ROC-AUC" if tstr is None else "no TRTR ROC-AUC recorded at bootstrap"
    return {
        "tstr_roc_auc": tstr, "trtr_roc_auc": trtr_roc_auc, "ratio": ratio, **quality,
        "rows": {"synthetic": int(len(sample)), "reference": int(len(real)), "holdout": int(len(holdout))},
        "seconds": {"tstr": round(t_tstr, 3), "quality": round(total - t_tstr, 3), "total": round(total, 3)},
        "errors": errors,
    }


def evaluation_gap(
    *, model_version: int, synthetic_test_roc_auc: float | None, real_holdout_roc_auc: float | None,
) -> dict[str, Any]:
    """How much easier a model finds the day's synthetic test split than the real holdout (ROC-AUC).

    Recorded, never gated: nothing reads it to decide. A positive ``gap``
    means the synthetic rows separate the classes more easily than real rows
    do (on the bundled data about 0.85-0.87 against 0.76-0.78).

    Parameters
    ----------
    model_version : int
        The version scored (the day's champion).
    synthetic_test_roc_auc, real_holdout_roc_auc : float or None
        Its ROC-AUC, in [0, 1], on the day's synthetic ``test`` split and on
        the real holdout (None: not computed, e.g. no real holdout stored).

    Returns
    -------
    dict
        ``model_version``, ``synthetic_test_roc_auc``, ``real_holdout_roc_auc``,
        ``gap`` (synthetic minus real, in [-1, 1], rounded to 4 decimals; None
        when either is missing) and ``reason`` (why ``gap`` is None, else None).
    """
    def _value(x: float | None) -> float | None:
        return None if x is None or not np.isfinite(x) else float(x)

    synthetic, real = _value(synthetic_test_roc_auc), _value(real_holdout_roc_auc)
    gap = round(synthetic - real, 4) if synthetic is not None and real is not None else None
    missing = [name for name, x in (("synthetic test split", synthetic), ("real holdout", real)) if x is None]
    return {"model_version": int(model_version), "synthetic_test_roc_auc": synthetic, "real_holdout_roc_auc": real,
            "gap": gap, "reason": f"no ROC-AUC on the {' nor the '.join(missing)}" if missing else None}


#: Characters of an exception message a report's ``errors`` keeps.
_REASON_CHARS = 300


def _reason(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` on one line, at most :data:`_REASON_CHARS` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + "..."


def _single_class_reason(sample: pd.DataFrame, holdout: pd.DataFrame, target: str, positive_label: Any) -> str:
    """Why :func:`classifier_roc_auc` gave None: which side holds a single class, with its positive count."""
    for side, frame in (("synthetic sample", sample), ("real holdout", holdout)):
        positives = int((frame[target].astype(str) == str(positive_label)).sum()) if target in frame else 0
        if positives in (0, len(frame)):
            return (f"the {side} holds a single class ({positives} of {len(frame)} rows are {positive_label!r}); "
                    "ROC-AUC is undefined")
    return "ROC-AUC is undefined"
