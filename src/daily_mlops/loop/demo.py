"""The four-day demo plan: which logical dates, which ``drift`` param, and why.

Every day runs with the default F1 floor (``MLOPS_F1_THRESHOLD``, ``auto``:
the bootstrap model's held-out F1 minus ``MLOPS_F1_TOLERANCE``); only the
day's data differ, through ``data_pipeline_dag``'s ``drift`` param
(:mod:`daily_mlops.ml.drift`). The outcomes come from F1 measured on the
bundled data with the default settings (seed 42, CPU, 10,000 rows a day;
``scripts/measure_drift.py`` repeats the measurement; README, "What the demo shows"):

- bootstrap v1: F1 0.417 on its synthetic test split, so the ``auto`` floor is about 0.37;
- ``none``: the champion scores 0.46-0.48, one fine-tuning attempt 0.48;
- ``shift`` (:data:`MEASURED` ``shift``): the champion falls to 0.12-0.13 (ROC-AUC 0.44-0.45, below
  chance: the relation it learned is reversed), one fine-tuning attempt on the day's data reaches 0.46;
- ``label_noise`` (60% of positive labels flipped): the champion scores 0.24, a fine-tuning
  attempt 0.23-0.26, far below the floor: every attempt fails (with 40% flipped: 0.28-0.32, too
  close to the floor to rely on);
- ``broken`` (80% of rows with an unseen category and a null): the gate fails on
  the unseen-category share (0.80 > 0.05), the null increase (0.80 > 0.10) and the SDMetrics validity
  of those columns (0.20 < 0.90); normal days score 1.0, 0 and 0.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = ["DEMO_PLAN", "MEASURED", "demo_days"]

#: F1 (positive class) measured with the current defaults on the bundled data: (champion, one
#: fine-tuning attempt) on two days of each drift (``scripts/measure_drift.py``, seed 42, CPU).
MEASURED = {
    "bootstrap_test_f1": 0.417,
    "none": ((0.4801, 0.4812), (0.4622, 0.4803)),
    "shift": ((0.1323, 0.4613), (0.1230, 0.4558)),
    "label_noise": ((0.2365, 0.2640), (0.2354, 0.2346)),
    "label_noise 0.4": ((0.2828, 0.3103), (0.3214, 0.2989)),
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
