"""The data-quality gate and the drift figures of a day's batch, measured against the reference rows.

The gate checks **structure**, never labels or distributions:

- the SDMetrics ``DiagnosticReport`` (data validity per column: values in
  the reference's range or categories, nulls only where the reference had
  them; data structure: the same columns), on a row sample;
- the share of unseen categories per categorical column: non-null values the
  fitted preprocessor never saw, which it would encode as "unknown";
- the share of nulls per column, compared with the reference's share.

A batch fails when a figure crosses its floor (:class:`QualityFloors`; the
settings ``quality_min_diagnostic``, ``quality_max_unseen_share`` and
``quality_max_null_increase``). **Drift** that is not breakage is measured
too and only recorded: SDMetrics ``KSComplement`` (numeric and datetime
columns) and ``TVComplement`` (categorical columns and the target), each
``1 - distance`` in [0, 1], 1 meaning the batch's column looks like the
reference's.

The batch is read in chunks (:class:`BatchProfile`): row counts, nulls and
unseen categories are counted on every row; the SDMetrics figures use a
seeded sample of at most :data:`SAMPLE_ROWS` rows. Pure: no MongoDB.

Sources
-------
- SDMetrics 0.32 ``sdmetrics.reports.DiagnosticReport`` (the unified
  report: dicts of tables and SDV multi-table metadata;
  https://docs.sdv.dev/sdmetrics/data-metrics/diagnostic/diagnostic-report-api),
  ``sdmetrics.single_column.KSComplement`` / ``TVComplement``
  (https://docs.sdv.dev/sdmetrics/data-metrics/quality/ks-complement), read
  from the installed source: ``CategoryAdherence`` counts a null as invalid
  when the metadata says ``range_is_nullable: false``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from daily_mlops.ml._columns import parse_date_columns
from daily_mlops.ml.drift_scenarios import drift_summary  # noqa: F401 - re-exported: it lives in the light module

__all__ = ["SAMPLE_ROWS", "BatchProfile", "QualityFloors", "drift_figures", "gate",
           "quality_figures"]

#: Rows of the batch the SDMetrics figures (diagnostic, drift) are computed on, drawn with a fixed seed.
SAMPLE_ROWS = 5_000
#: The columns a gate message and the ``worst`` list name.
WORST_SHOWN = 3
#: The SDV table name of the reference (``daily_mlops.ml.synthesis.TABLE_NAME``).
_TABLE = "reference"


@dataclasses.dataclass(frozen=True)
class QualityFloors:
    """The gate's floors (fractions in [0, 1]).

    Attributes
    ----------
    min_diagnostic : float
        Lowest SDMetrics data-validity score a column, and the structure score the table, may have.
    max_unseen_share : float
        Highest share of a categorical column's non-null values that the preprocessor never saw.
    max_null_increase : float
        Highest increase of a column's null share over the reference's share.
    """

    min_diagnostic: float
    max_unseen_share: float
    max_null_increase: float


class BatchProfile:
    """What the gate needs of a batch, accumulated chunk by chunk.

    Parameters
    ----------
    known_categories : mapping of str to iterable of str
        Per categorical column, the categories the fitted preprocessor knows.
    n_rows : int
        Rows the batch holds (sets the sampling fraction).
    sample_rows : int, default=SAMPLE_ROWS
        Rows kept (about) for the SDMetrics figures.
    seed : int, default=0
        Seeds the sample.
    date_formats : mapping of str to (str or None), optional
        The schema's date columns (:func:`daily_mlops.ml.schema.date_columns`):
        the sampled rows get them parsed to naive UTC ``datetime64[ns]``
        (:func:`daily_mlops.ml._columns.parse_date_columns`), the encoding of
        the reference rows, so the diagnostic and the drift compare dates on
        one scale. The counts (rows, nulls, unseen) are of the raw values.

    Attributes
    ----------
    rows_ : int
        Rows seen.
    nulls_ : dict of str to int
        Null count per column.
    unseen_ : dict of str to int
        Per categorical column, non-null values outside ``known_categories``.
    present_ : dict of str to int
        Per categorical column, non-null values.
    examples_ : dict of str to list of str
        Per categorical column, up to 3 unseen values.
    """

    def __init__(self, known_categories: Mapping[str, Iterable[str]], *, n_rows: int,
                 sample_rows: int = SAMPLE_ROWS, seed: int = 0,
                 date_formats: Mapping[str, str | None] | None = None) -> None:
        self.known = {name: set(map(str, values)) for name, values in known_categories.items()}
        self.date_formats = dict(date_formats or {})
        self.fraction = 1.0 if n_rows <= sample_rows else sample_rows / max(int(n_rows), 1)
        self._rng = np.random.default_rng(int(seed))
        self._samples: list[pd.DataFrame] = []
        self.rows_ = 0
        self.nulls_: dict[str, int] = {}
        self.unseen_: dict[str, int] = {}
        self.present_: dict[str, int] = {}
        self.examples_: dict[str, list[str]] = {}

    def update(self, chunk: pd.DataFrame) -> BatchProfile:
        """Count ``chunk`` (DataFrame of shape (n_rows, n_columns), validated) and sample from it; return self."""
        self.rows_ += len(chunk)
        for name, count in chunk.isna().sum().items():
            self.nulls_[str(name)] = self.nulls_.get(str(name), 0) + int(count)
        for name, known in self.known.items():
            if name not in chunk.columns:
                continue
            values = chunk[name].dropna().astype(str)
            unseen = values[~values.isin(known)]
            self.present_[name] = self.present_.get(name, 0) + len(values)
            self.unseen_[name] = self.unseen_.get(name, 0) + len(unseen)
            shown = self.examples_.setdefault(name, [])
            shown.extend(v for v in unseen.unique()[:3] if v not in shown and len(shown) < 3)
        keep = chunk if self.fraction >= 1.0 else chunk[self._rng.random(len(chunk)) < self.fraction]
        self._samples.append(parse_date_columns(keep, self.date_formats))
        return self

    @property
    def sample(self) -> pd.DataFrame:
        """The sampled rows (DataFrame of shape (about min(rows_, sample_rows), n_columns))."""
        return pd.concat(self._samples) if len(self._samples) != 1 else self._samples[0]


def _rounded(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _metadata_for(sdv_metadata: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    """The SDV metadata of the reference table limited to ``columns`` (both frames hold them)."""
    table = dict(sdv_metadata["tables"][_TABLE])
    described = table.get("columns", {})
    out: dict[str, Any] = {"columns": {name: dict(described[name]) for name in columns}}
    for key in ("primary_key", "alternate_keys"):
        value = table.get(key)
        if isinstance(value, str) and value in columns:
            out[key] = value
        elif isinstance(value, list):
            kept = [v for v in value if v in columns]
            if kept:
                out[key] = kept
    return {"tables": {_TABLE: out}, "relationships": [], "METADATA_SPEC_VERSION": "V2"}


def _diagnostic(sample: pd.DataFrame, reference: pd.DataFrame, sdv_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """SDMetrics DiagnosticReport scores: overall, validity, structure, and the validity of each column."""
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdmetrics")  # torch is not needed here (see that module)
    from sdmetrics.reports import DiagnosticReport

    described = sdv_metadata["tables"][_TABLE].get("columns", {})
    columns = [c for c in reference.columns if c in sample.columns and c in described]
    report = DiagnosticReport()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.generate({_TABLE: reference[columns]}, {_TABLE: sample[columns]},
                            _metadata_for(sdv_metadata, columns), verbose=False)
    except (ValueError, KeyError, TypeError) as exc:  # SDMetrics refused the metadata: the other checks still gate
        return {"score": None, "data_validity": None, "data_structure": None, "columns": {},
                "error": f"SDMetrics DiagnosticReport failed: {type(exc).__name__}: {exc}"}
    table = report.get_properties()
    properties = dict(zip(table["Property"], table["Score"], strict=True))
    details = report.get_details("Data Validity")
    per_column = details.groupby("Column")["Score"].min() if len(details) else pd.Series(dtype=float)
    return {
        "score": _rounded(report.get_score()),
        "data_validity": _rounded(properties.get("Data Validity", float("nan"))),
        "data_structure": _rounded(properties.get("Data Structure", float("nan"))),
        "columns": {str(name): _rounded(score) for name, score in per_column.items()},
    }


def quality_figures(profile: BatchProfile, reference: pd.DataFrame, *,
                    sdv_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The gate's figures of a batch: SDMetrics diagnostic, unseen-category and null shares.

    Parameters
    ----------
    profile : BatchProfile
        The batch, counted.
    reference : DataFrame of shape (n_reference_rows, n_columns)
        The real rows the synthesizer was fit on (validated).
    sdv_metadata : mapping
        The synthesizer's SDV metadata (``Metadata.to_dict()``: one table ``reference``).

    Returns
    -------
    dict
        ``rows``, ``sample_rows``; ``diagnostic`` (``score``, ``data_validity``,
        ``data_structure``, in [0, 1]; all None and an ``error`` when SDMetrics
        refused the metadata, and then only the other two checks gate);
        ``validity`` (SDMetrics data validity per column, in [0, 1]); the
        summaries ``min_validity``, ``max_unseen_share``, ``max_null_increase``;
        ``unseen_share`` (per categorical column, in [0, 1]); ``null_share``
        and ``reference_null_share`` and ``null_increase`` (per column of the
        reference, fractions; the increase may be negative); ``unseen_examples``.
    """
    ref_nulls = {str(c): float(reference[c].isna().mean()) for c in reference.columns}
    rows = max(profile.rows_, 1)
    null_share = {c: profile.nulls_.get(c, 0) / rows for c in ref_nulls if c in profile.nulls_}
    sample = profile.sample
    diagnostic = _diagnostic(sample, reference, sdv_metadata)
    validity = diagnostic.pop("columns")
    unseen = {c: _rounded(profile.unseen_[c] / profile.present_[c]) if profile.present_[c] else 0.0
              for c in profile.unseen_}
    increase = {c: _rounded(v - ref_nulls[c]) for c, v in null_share.items()}
    known = [v for v in validity.values() if v is not None]
    return {
        "rows": int(profile.rows_),
        "sample_rows": int(len(sample)),
        "diagnostic": diagnostic,
        "min_validity": min(known) if known else None,
        # _rounded gives None for a non-finite share; such a share cannot be a maximum
        "max_unseen_share": max((v for v in unseen.values() if v is not None), default=0.0),
        "max_null_increase": max((v for v in increase.values() if v is not None), default=0.0),
        "validity": validity,
        "unseen_share": unseen,
        "unseen_examples": {c: v for c, v in profile.examples_.items() if v},
        "null_share": {c: _rounded(v) for c, v in null_share.items()},
        "reference_null_share": {c: _rounded(ref_nulls[c]) for c in null_share},
        "null_increase": increase,
    }


def gate(figures: Mapping[str, Any], floors: QualityFloors) -> dict[str, Any]:
    """Judge :func:`quality_figures` against ``floors``.

    Returns
    -------
    dict
        ``status`` (``"passed"`` or ``"failed"``), ``floors`` (the three
        values), ``failures`` (count), ``worst``: up to :data:`WORST_SHOWN`
        checks, failing ones first, each ``{"column", "check", "value",
        "floor", "failed"}``, ordered by how far past (or how close to) the
        floor they are; ``message``: one line naming the failing ones (at most
        :data:`WORST_SHOWN`) with their figures and floors, or counting the checks passed.
    """
    checks: list[dict[str, Any]] = []
    diagnostic = figures["diagnostic"]
    for column, score in figures["validity"].items():
        if score is not None:
            checks.append({"column": column, "check": "diagnostic_validity", "value": score,
                           "floor": floors.min_diagnostic, "margin": score - floors.min_diagnostic})
    if diagnostic.get("data_structure") is not None:
        checks.append({"column": "(table)", "check": "diagnostic_structure", "value": diagnostic["data_structure"],
                       "floor": floors.min_diagnostic, "margin": diagnostic["data_structure"] - floors.min_diagnostic})
    for column, share in figures["unseen_share"].items():
        checks.append({"column": column, "check": "unseen_share", "value": share,
                       "floor": floors.max_unseen_share, "margin": floors.max_unseen_share - share})
    for column, increase in figures["null_increase"].items():
        checks.append({"column": column, "check": "null_increase", "value": increase,
                       "floor": floors.max_null_increase, "margin": floors.max_null_increase - increase})
    checks.sort(key=lambda c: (c["margin"], c["column"], c["check"]))
    failed = [c for c in checks if c["margin"] < 0]
    worst = [{**{k: v for k, v in c.items() if k != "margin"}, "failed": c["margin"] < 0}
             for c in checks[:WORST_SHOWN]]
    status = "failed" if failed else "passed"
    shown = "; ".join(_describe(c) for c in (failed or checks)[:WORST_SHOWN])
    message = (f"{len(failed)} check(s) past the floor: {shown}" if failed
               else f"all {len(checks)} checks within their floors")
    return {"status": status, "floors": dataclasses.asdict(floors), "failures": len(failed), "worst": worst,
            "message": message}


_CHECK_WORDS = {
    "diagnostic_validity": ("SDMetrics data validity", "<", "quality_min_diagnostic"),
    "diagnostic_structure": ("SDMetrics data structure", "<", "quality_min_diagnostic"),
    "unseen_share": ("unseen-category share", ">", "quality_max_unseen_share"),
    "null_increase": ("null-share increase", ">", "quality_max_null_increase"),
}


def _describe(check: Mapping[str, Any]) -> str:
    words, sign, setting = _CHECK_WORDS[check["check"]]
    if check.get("margin", 0) >= 0:
        sign = ">=" if sign == "<" else "<="
    return f"{check['column']} {words} {check['value']:.3f} {sign} {check['floor']:g} ({setting})"


def drift_figures(sample: pd.DataFrame, reference: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, Any]:
    """Per-column drift of a batch sample from the reference: SDMetrics KSComplement / TVComplement.

    Parameters
    ----------
    sample : DataFrame of shape (n_sample_rows, n_columns)
        Rows of the batch (:attr:`BatchProfile.sample`).
    reference : DataFrame of shape (n_reference_rows, n_columns)
        The real rows the synthesizer was fit on. A date column must be in
        the same encoding on both sides (``BatchProfile(date_formats=...)``
        and :func:`daily_mlops.ml.schema.parse_date_columns`): SDMetrics
        compares datetimes as integers of their unit, and text not at all.
    kinds : mapping of str to str
        Column kind: ``numeric`` or ``datetime`` (KSComplement), ``categorical``
        or ``target`` (TVComplement); other columns are skipped.

    Returns
    -------
    dict
        ``method``; ``columns``: score per column in [0, 1] (1: same
        distribution); ``score``: their mean; ``min``; ``worst``: the
        :data:`WORST_SHOWN` lowest as ``{"column", "score", "metric"}``;
        ``positive_rate`` is left to the caller.
    """
    from daily_mlops.ml._without_torch import import_without_torch

    import_without_torch("sdmetrics")  # torch is not needed here (see that module)
    from sdmetrics.single_column import KSComplement, TVComplement

    scores: dict[str, float] = {}
    metrics: dict[str, str] = {}
    for column, kind in kinds.items():
        if column not in sample.columns or column not in reference.columns:
            continue
        real, synthetic = reference[column], sample[column]
        if real.notna().sum() == 0 or synthetic.notna().sum() == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind in ("numeric", "datetime"):
                value, metrics[column] = KSComplement.compute(real, synthetic), "KSComplement"
            elif kind in ("categorical", "target"):
                value, metrics[column] = TVComplement.compute(real.astype(object), synthetic.astype(object)), \
                    "TVComplement"
            else:
                continue
        if value is not None and math.isfinite(value):
            scores[column] = round(float(value), 6)
    ordered = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))
    return {
        "method": "SDMetrics KSComplement (numeric, datetime) / TVComplement (categorical, target); 1 = no drift",
        "columns": scores,
        "score": _rounded(float(np.mean(list(scores.values())))) if scores else None,
        "min": ordered[0][1] if ordered else None,
        "worst": [{"column": c, "score": s, "metric": metrics[c]} for c, s in ordered[:WORST_SHOWN]],
    }
