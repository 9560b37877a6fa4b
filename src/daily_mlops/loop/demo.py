"""The four-day demo plan: which logical dates, which ``drift`` param, and why.

Every day runs with the default F1 floor (``MLOPS_F1_THRESHOLD``, ``auto``:
the bootstrap model's held-out F1 minus ``MLOPS_F1_TOLERANCE``) and the default
``min_improvement`` (0); only the day's data differ, through
``data_pipeline_dag``'s ``drift`` param (:mod:`daily_mlops.ml.drift_scenarios`). The console
says what each drift does before its day runs and, after it, what the loop did, read from
MongoDB (:func:`daily_mlops.orchestration.runner.day_story`); the figures in
docs/measurements.md ("The demo") come from ``make demo`` itself.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = ["DEMO_PLAN", "demo_days", "demo_floor"]

#: The demo's days in order: the ``drift`` param of each. What a mode does to the batch is
#: :data:`daily_mlops.ml.drift_scenarios.DRIFT_EFFECTS`; what the day then did is read from MongoDB after it ran.
DEMO_PLAN = ("none", "shift", "label_noise", "broken")


def demo_floor(settings: Settings) -> str:
    """One line for the demo's header: the F1 floor every day uses, before bootstrap has resolved an ``auto`` one."""
    if str(settings.f1_threshold) == "auto":  # resolved by bootstrap, which runs after this line is printed
        return (f"F1 floor auto (MLOPS_F1_THRESHOLD): the bootstrap model's held-out F1 minus f1_tolerance "
                f"{settings.f1_tolerance:g}, resolved at bootstrap; min_improvement {settings.min_improvement:g}")
    return f"F1 floor {settings.f1_threshold} (MLOPS_F1_THRESHOLD); min_improvement {settings.min_improvement:g}"


def demo_days(first: dt.date) -> list[tuple[dt.date, dict[str, Any], str]]:
    """Four consecutive logical dates, each with its ``data_pipeline_dag`` conf (``drift`` only) and what the
    drift does to the batch (:data:`~daily_mlops.ml.drift_scenarios.DRIFT_EFFECTS`; never the expected outcome).

    No F1 threshold is passed: every day uses ``MLOPS_F1_THRESHOLD`` (:func:`demo_floor`).
    """
    from daily_mlops.ml.drift_scenarios import DRIFT_EFFECTS

    return [(first + dt.timedelta(days=i), {"drift": mode}, f"drift {mode}: {DRIFT_EFFECTS[mode]}")
            for i, mode in enumerate(DEMO_PLAN)]
