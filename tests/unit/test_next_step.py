"""Unit tests for the pure branch decision daily_mlops.pipeline.next_step."""

from __future__ import annotations

import pytest

from daily_mlops.pipeline import next_step

CASES = [
    # f1,   threshold, attempt, max_attempts, expected
    (0.80, 0.75, 0, 3, "pass"),  # champion passes
    (0.75, 0.75, 0, 3, "pass"),  # boundary: f1 == threshold passes
    (0.7499, 0.75, 0, 3, "retrain"),  # just below: first retraining
    (0.10, 0.75, 1, 3, "retrain"),
    (0.10, 0.75, 2, 3, "retrain"),  # last allowed attempt still ahead
    (0.10, 0.75, 3, 3, "alert"),  # attempt == max_attempts: exhausted
    (0.10, 0.75, 4, 3, "alert"),  # beyond max (defensive)
    (0.90, 0.75, 3, 3, "pass"),  # passing on the last attempt is a pass, not an alert
    (0.10, 0.75, 0, 0, "alert"),  # max_attempts 0: alert immediately
    (0.10, 0.75, 0, 1, "retrain"),
    (0.10, 0.75, 1, 1, "alert"),
    (0.0, 0.0, 0, 3, "pass"),  # threshold 0: anything passes
    (1.0, 1.0, 0, 3, "pass"),  # perfect F1 meets threshold 1
    (1.0, 1.01, 0, 3, "retrain"),  # threshold > 1 never passes
    (1.0, 1.5, 3, 3, "alert"),  # ... and ends in the alert
    (1.0, 2.0, 0, 0, "alert"),
]


@pytest.mark.parametrize(("f1", "threshold", "attempt", "max_attempts", "expected"), CASES)
def test_next_step_table(f1: float, threshold: float, attempt: int, max_attempts: int, expected: str) -> None:
    """next_step returns pass when f1 >= threshold, else retrain while attempt < max_attempts, else alert."""
    assert next_step(f1, threshold, attempt, max_attempts) == expected


@pytest.mark.parametrize("attempt", range(0, 4))
@pytest.mark.parametrize("max_attempts", range(0, 4))
def test_threshold_above_one_never_passes(attempt: int, max_attempts: int) -> None:
    """With a threshold above 1 (the DAG param's forced-alert setting) no F1 in [0, 1] passes."""
    for f1 in (0.0, 0.5, 0.99, 1.0):
        assert next_step(f1, 1.2, attempt, max_attempts) != "pass"


def test_full_loop_with_three_attempts_ends_in_alert() -> None:
    """Walking the unrolled DAG: champion + 3 failing attempts gives retrain x3 then alert."""
    steps = [next_step(0.5, 0.75, attempt, 3) for attempt in range(4)]
    assert steps == ["retrain", "retrain", "retrain", "alert"]


def test_returns_only_known_step_names() -> None:
    """Every output is one of the three step names the DAG's branch maps to task ids."""
    outputs = {
        next_step(f1 / 10, t / 10, a, m)
        for f1 in range(11) for t in range(13) for a in range(4) for m in range(4)
    }
    assert outputs == {"pass", "retrain", "alert"}
