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

#: A bar the bootstrap champion clears on synthetic batches (its measured F1(bad): 0.43-0.46).
REACHABLE_F1 = 0.40
#: Above the champion's F1 on 2026-11-03 (0.43) but below what one fine-tuning attempt on the
#: day's data reaches there (0.47): the challenger replaces the champion.
CHALLENGER_F1 = 0.45


def demo_days(settings: "Settings", first: dt.date) -> list[tuple[dt.date, dict[str, Any], str]]:
    """Three consecutive logical dates with their evaluation params and the reason for each."""
    return [
        (first, {"f1_threshold": REACHABLE_F1},
         f"threshold {REACHABLE_F1}: the champion clears it, so its version is deployed"),
        (first + dt.timedelta(days=1), {"f1_threshold": settings.f1_threshold},
         f"threshold {settings.f1_threshold} (MLOPS_F1_THRESHOLD): out of reach on this data, so three "
         "fine-tuning attempts fail and an alert is raised"),
        (first + dt.timedelta(days=2), {"f1_threshold": CHALLENGER_F1},
         f"threshold {CHALLENGER_F1}: the champion falls short, a fine-tuned challenger passes and is deployed"),
    ]
