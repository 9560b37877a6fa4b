"""The four-day demo plan: which logical dates, which ``drift`` param, and why.

Every day runs with the default F1 floor (``MLOPS_F1_THRESHOLD``, ``auto``:
the bootstrap model's held-out F1 minus ``MLOPS_F1_TOLERANCE``) and the default
``min_improvement`` (0); only the day's data differ, through
``data_pipeline_dag``'s ``drift`` param (:mod:`daily_mlops.ml.drift`). The
outcomes come from F1 (positive class) measured on the bundled data with the
default settings (seed 42, CPU, 10,000 rows a day) on the demo's own dates,
``scripts/measure_drift.py`` (README, "What the demo shows"; :data:`MEASURED`):

- bootstrap v1: F1 0.417 on its synthetic test split, so the ``auto`` floor is about 0.37;
- 2026-11-01 ``none``: the champion scores 0.480 (one fine-tuning attempt would reach 0.481): it passes;
- 2026-11-02 ``shift``: the champion falls to 0.160 (ROC-AUC 0.475, below chance); the chained
  fine-tuning attempts reach 0.459, 0.473, 0.426: attempt 1 passes the floor and beats the champion;
- 2026-11-03 ``label_noise`` (60% of positive labels flipped): the champion scores 0.225, the attempts
  0.226, 0.206, 0.144: all below the floor, alert (at 40% flipped, on other dates: 0.28-0.32, too
  close to a floor a better synthesizer will raise);
- 2026-11-04 ``broken`` (80% of rows with an unseen category and a null): the gate fails on the
  unseen-category share (0.79 > 0.05), the null increase (0.79 > 0.10) and the SDMetrics validity of
  those columns (0.21 < 0.90); normal, shift and label-noise days score 0, 0 and 1.0 there.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = ["DEMO_PLAN", "MEASURED", "demo_days"]

#: F1 (positive class) measured with the current defaults on the bundled data (``scripts/measure_drift.py``,
#: seed 42, CPU): per demo day, the champion (v1) then each chained fine-tuning attempt.
MEASURED = {
    "bootstrap_test_f1": 0.417,
    "none": (0.4801, 0.4812),
    "shift": (0.1604, 0.4586, 0.4731, 0.4263),
    "label_noise": (0.2254, 0.2263, 0.2064, 0.1443),
}

#: The demo's days in order: the ``drift`` param and what the day shows.
DEMO_PLAN = (
    ("none", "the champion reaches the F1 floor and stays deployed"),
    ("shift", "numeric columns mirrored and categories rotated: the champion falls below the floor, a "
              "fine-tuned challenger beats it and is deployed"),
    ("label_noise", "60% of the positive labels flipped: the batch passes the data-quality gate (it checks "
                    "structure, not labels) but no fine-tuning attempt reaches the floor: alert"),
    ("broken", "80% of rows carry an unseen category and a null: the data-quality gate fails the data DAG "
               "before any model is judged"),
)


def demo_days(settings: "Settings", first: dt.date) -> list[tuple[dt.date, dict[str, Any], str]]:
    """Four consecutive logical dates, each with its ``data_pipeline_dag`` conf (``drift`` only) and the reason.

    No F1 threshold is passed: every day uses ``MLOPS_F1_THRESHOLD``.
    """
    floor = f"F1 floor {settings.f1_threshold} (MLOPS_F1_THRESHOLD)"
    return [(first + dt.timedelta(days=i), {"drift": mode}, f"drift {mode}, {floor}: {why}")
            for i, (mode, why) in enumerate(DEMO_PLAN)]
