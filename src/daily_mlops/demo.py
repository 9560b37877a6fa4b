"""The three-day demo plan: which logical dates, which per-day params, and why.

F1 thresholds are chosen from F1 measured on the bundled data (README, "What
the demo shows"), not by hope.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings

__all__ = ["demo_days"]

#: A bar the bootstrap model clears on synthetic batches (measured F1 of the positive class ~0.45-0.50).
REACHABLE_F1 = 0.40


def demo_days(settings: "Settings", first: dt.date) -> list[tuple[dt.date, dict[str, Any], str]]:
    """Three consecutive logical dates with their evaluation params and the reason for each."""
    return [
        (first, {"f1_threshold": REACHABLE_F1},
         f"threshold {REACHABLE_F1}: the champion clears it, so its version is deployed"),
        (first + dt.timedelta(days=1), {"f1_threshold": settings.f1_threshold},
         f"threshold {settings.f1_threshold} (MLOPS_F1_THRESHOLD): out of reach on this data, so three "
         "fine-tuning attempts fail and an alert is raised"),
        (first + dt.timedelta(days=2), {"f1_threshold": REACHABLE_F1},
         f"threshold {REACHABLE_F1} again: the deployed champion passes; redeploying it is a recorded no-op"),
    ]
