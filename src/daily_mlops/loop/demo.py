"""The four-day demo plan: which logical dates, which ``drift`` param, and why.

Every day runs with the default F1 floor (``MLOPS_F1_THRESHOLD``, ``auto``:
the bootstrap model's held-out F1 minus ``MLOPS_F1_TOLERANCE``) and the default
``min_improvement`` (0); only the day's data differ, through
``data_pipeline_dag``'s ``drift`` param (:mod:`daily_mlops.ml.drift`). The
outcomes come from F1 (positive class) measured on the bundled data with the
default settings (seed 42, CPU, 10,000 rows a day) on the demo's own dates,
``scripts/measure_drift.py`` (README, "What the demo shows"; :data:`MEASURED`):

- bootstrap v1: F1 0.7107 on its test split, 0.6720 on its 20,000-row floor sample: the ``auto`` floor is 0.6220;
- 2026-11-01 ``none``: the champion scores 0.6918: it passes (0.659-0.692 over 7 default days);
- 2026-11-02 ``shift`` (numeric columns 30% of the way to their reference maximum): the champion falls to
  0.6014; fine-tuning attempt 1 reaches 0.6477: it passes the floor, beats the champion and is deployed
  (a mirrored or rotated relation was not relearned in three 3-epoch attempts: README);
- 2026-11-03 ``label_noise`` (60% of positive labels flipped): the champion (v2) scores 0.3601, the
  attempts 0.3175, 0.3474, 0.3596: all below the floor, alert;
- 2026-11-04 ``broken`` (80% of rows with an unseen category and a null): the gate fails on the
  unseen-category share (0.79 > 0.05), the null increase (0.79 > 0.10) and the SDMetrics validity of
  those columns (0.21 < 0.90); normal, shift and label-noise days score 0, 0 and 1.0 there.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = ["DEMO_PLAN", "MEASURED", "demo_days", "demo_floor"]

#: F1 (positive class) measured with the current defaults on the bundled data (``scripts/measure_drift.py``,
#: seed 42, CPU, ``make demo``): per demo day, the champion then each chained fine-tuning attempt.
MEASURED = {
    "bootstrap_test_f1": 0.7107,
    "bootstrap_floor_sample_f1": 0.6720,
    "none": (0.6918,),
    "shift": (0.6014, 0.6477),
    "label_noise": (0.3601, 0.3175, 0.3474, 0.3596),
}

#: The demo's days in order: the ``drift`` param and what the day shows.
DEMO_PLAN = (
    ("none", "the champion reaches the F1 floor and stays deployed"),
    ("shift", "numeric columns moved 30% of the way to their reference maximum: the champion falls below the "
              "floor, a fine-tuned challenger beats it and is deployed"),
    ("label_noise", "60% of the positive labels flipped: the batch passes the data-quality gate (it checks "
                    "structure, not labels) but no fine-tuning attempt reaches the floor: alert"),
    ("broken", "80% of rows carry an unseen category and a null: the data-quality gate fails the data DAG "
               "before any model is judged"),
)


def demo_floor(settings: "Settings") -> str:
    """One line for the demo's header: the F1 floor every day uses, before bootstrap has resolved an ``auto`` one."""
    if str(settings.f1_threshold) == "auto":  # resolved by bootstrap, which runs after this line is printed
        return (f"F1 floor auto (MLOPS_F1_THRESHOLD): the bootstrap model's held-out F1 minus f1_tolerance "
                f"{settings.f1_tolerance:g}, resolved at bootstrap; min_improvement {settings.min_improvement:g}")
    return f"F1 floor {settings.f1_threshold} (MLOPS_F1_THRESHOLD); min_improvement {settings.min_improvement:g}"


def demo_days(first: dt.date) -> list[tuple[dt.date, dict[str, Any], str]]:
    """Four consecutive logical dates, each with its ``data_pipeline_dag`` conf (``drift`` only) and the reason.

    No F1 threshold is passed: every day uses ``MLOPS_F1_THRESHOLD`` (:func:`demo_floor`).
    """
    return [(first + dt.timedelta(days=i), {"drift": mode}, f"drift {mode}: {why}")
            for i, (mode, why) in enumerate(DEMO_PLAN)]
