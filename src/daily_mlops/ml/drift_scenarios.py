"""Deliberate drift of a sampled batch: the ``drift`` param of ``data_pipeline_dag``.

The demo (``daily-mlops demo``) and tests need days whose outcome comes from
the day's data, not from a per-day F1 threshold. :func:`apply_drift` alters a
validated chunk of the day's batch, after sampling, seeded by the day, in one
of four documented ways (:data:`DRIFT_MODES`):

``none``
    The batch as sampled (the default; the function returns it unchanged).
``shift``
    Covariate shift that keeps the relation to the label: every numeric
    feature moves a share :data:`SHIFT_SHARE` of the way to the top of its
    reference range (``x -> x + SHIFT_SHARE * (max - x)``, rounded for a
    column whose reference values are whole numbers), as when amounts,
    durations and ages of a new customer segment run higher. The order of
    the values, so their relation to the label, is kept, but the champion's
    inputs (standardized with the bootstrap reference's scale) and so its
    scores move, and its decision threshold no longer fits; fine-tuning on
    the day's rows and choosing a new threshold on them recovers it.
    Values stay within the reference range and keep their type, and
    categorical features are untouched, so the data-quality gate passes;
    the drift figures show the shift.
``label_noise``
    A share :data:`LABEL_NOISE_SHARE` of the positive labels, drawn at random,
    is flipped to the negative label (under-reported defaults, a common label
    noise in credit data). Features are untouched, so the gate (which checks
    structure, not labels) passes; the positive class becomes rarer and most
    rows the model should flag are labelled negative, so no attempt reaches
    the F1 floor.
``broken``
    Structural breakage: in a share :data:`BROKEN_SHARE` of the rows, drawn
    at random, the first categorical feature (schema order) holds a category
    the reference never had (:data:`UNSEEN_CATEGORY`) and the first numeric
    feature is null. The data-quality gate stops such a day.

The sizes were chosen from F1 measured on the bundled data (docs/measurements.md,
"The demo"; :mod:`daily_mlops.loop.demo`). Pure: pandas and NumPy only, imported
when a function runs, so the DAG files can read :data:`DRIFT_MODES` at parse time.

:func:`drift_summary` is the one line on a batch's recorded drift figures
(:func:`daily_mlops.ml.quality.drift_figures`); it lives here, free of pandas, because
tasks that only read MongoDB (``send_alert``) and the CLI print it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["BROKEN_SHARE", "DRIFT_EFFECTS", "DRIFT_MODES", "LABEL_NOISE_SHARE", "SHIFT_SHARE", "UNSEEN_CATEGORY",
           "DriftPlan", "apply_drift", "check_drift_mode", "drift_summary"]

#: The values of the ``drift`` param, ``none`` first (the default).
DRIFT_MODES = ("none", "shift", "label_noise", "broken")
#: How far ``shift`` moves each numeric value toward its reference maximum (measured: docs/measurements.md).
SHIFT_SHARE = 0.3
#: Fraction of the positive labels ``label_noise`` flips to negative (measured: docs/measurements.md).
LABEL_NOISE_SHARE = 0.6
#: Fraction of rows ``broken`` gives an unseen category and a null.
BROKEN_SHARE = 0.8
#: The category ``broken`` writes; the reference never holds it.
UNSEEN_CATEGORY = "__unseen_by_reference__"
#: What each mode does to the day's batch, in one line (printed before a day runs; never its outcome).
DRIFT_EFFECTS = {
    "none": "the batch as sampled from the synthesizer",
    "shift": f"every numeric column moved {SHIFT_SHARE:.0%} of the way to the top of its reference range "
             "(order and relation to the label kept, values in range); categories untouched",
    "label_noise": f"{LABEL_NOISE_SHARE:.0%} of the positive labels, drawn at random, flipped to negative "
                   "(under-reported defaults); features untouched",
    "broken": f"in {BROKEN_SHARE:.0%} of the rows the first categorical column holds a category the reference never "
              "had and the first numeric column is null",
}


def check_drift_mode(mode: object, where: str = "DAG param drift") -> str:
    """``mode`` when it is one of :data:`DRIFT_MODES`.

    Raises
    ------
    ConfigError
        Naming ``where`` and the allowed values.
    """
    if not isinstance(mode, str) or mode not in DRIFT_MODES:
        raise ConfigError(f"{where}={mode!r} is not a drift mode; use one of {', '.join(DRIFT_MODES)}")
    return mode


class DriftPlan:
    """What :func:`apply_drift` needs from the reference rows, computed once per day.

    Parameters
    ----------
    reference : DataFrame of shape (n_reference_rows, n_columns)
        The real rows the synthesizer was fit on (validated: categorical
        columns as strings, numeric as float64).
    features : sequence of dict
        The schema's feature entries (``name``, ``kind``); ``dropped`` ones are ignored.
    target_column, positive_label, negative_label : str
        The schema's target.

    Attributes
    ----------
    categories_ : dict of str to list of str
        Per categorical feature, its reference categories in sorted order.
    ranges_ : dict of str to (float, float)
        Per numeric feature, its reference (min, max).
    whole_ : set of str
        The numeric features whose reference values are all whole numbers (``shift`` rounds them).
    """

    def __init__(self, reference: pd.DataFrame, features: Sequence[Mapping], *, target_column: str,
                 positive_label: str, negative_label: str) -> None:
        import pandas as pd

        self.target_column = target_column
        self.positive_label = positive_label
        self.negative_label = negative_label
        self.categories_: dict[str, list[str]] = {}
        self.ranges_: dict[str, tuple[float, float]] = {}
        self.whole_: set[str] = set()
        for feature in features:
            name, kind = feature["name"], feature["kind"]
            if name not in reference.columns:
                continue
            if kind == "categorical":
                values = reference[name].dropna().map(str).unique()
                self.categories_[name] = sorted(values)
            elif kind == "numeric":
                numbers = pd.to_numeric(reference[name], errors="coerce")
                if numbers.notna().any():
                    self.ranges_[name] = (float(numbers.min()), float(numbers.max()))
                    if bool((numbers.dropna() % 1 == 0).all()):
                        self.whole_.add(name)


def apply_drift(frame: pd.DataFrame, mode: str, plan: DriftPlan, *, seed: int) -> pd.DataFrame:
    """Alter a validated chunk of the day's batch as ``mode`` documents (module docstring).

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        A chunk from :func:`daily_mlops.ml.schema.validate_batch` (not modified).
    mode : str
        One of :data:`DRIFT_MODES`.
    plan : DriftPlan
        Categories, ranges and labels of the reference.
    seed : int
        Seeds the rows ``label_noise`` and ``broken`` draw (the chunk's
        sampling seed: the same day gives the same batch).

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        A new frame, same columns, index and dtypes (a numeric column may gain nulls).

    Raises
    ------
    ConfigError
        When ``mode`` is not one of :data:`DRIFT_MODES`.
    """
    import numpy as np

    check_drift_mode(mode)
    if mode == "none":
        return frame
    out = frame.copy()
    rng = np.random.default_rng(int(seed))
    if mode == "shift":
        for name, (_, high) in plan.ranges_.items():
            if name in out.columns:
                values = out[name].astype(np.float64)
                moved = values + SHIFT_SHARE * (high - values)
                out[name] = np.round(moved) if name in plan.whole_ else moved
    elif mode == "label_noise":
        target = plan.target_column
        if target in out.columns:
            positive = (out[target] == plan.positive_label).to_numpy()
            flip = positive & (rng.random(len(out)) < LABEL_NOISE_SHARE)
            out.loc[flip, target] = plan.negative_label
    else:  # broken
        rows = rng.random(len(out)) < BROKEN_SHARE
        categorical = [c for c in plan.categories_ if c in out.columns]
        numeric = [c for c in plan.ranges_ if c in out.columns]
        if categorical:
            out.loc[rows, categorical[0]] = UNSEEN_CATEGORY
        if numeric:
            out.loc[rows, numeric[0]] = np.nan
    return out


def drift_summary(drift: Mapping[str, Any] | None) -> str:
    """One line on a batch's drift, e.g. ``drift 0.71 mean, worst: purpose 0.42, age_in_years 0.55``.

    Returns ``"drift not measured"`` for a batch without drift figures.
    """
    if not drift or drift.get("score") is None:
        return "drift not measured"
    worst = ", ".join(f"{w['column']} {w['score']:.2f}" for w in drift.get("worst", []))
    mode = f" (drift param {drift['param']})" if drift.get("param") not in (None, "none") else ""
    rate = ""
    if drift.get("positive_rate") is not None and drift.get("reference_positive_rate") is not None:
        rate = f"; positive rate {drift['positive_rate']:.3f} vs reference {drift['reference_positive_rate']:.3f}"
    return f"drift score {drift['score']:.2f} (1 = like the reference){mode}, worst: {worst}{rate}"
