"""Unit tests for daily_mlops.ml.splits.calibration_split: the part the decision threshold is chosen on."""

from __future__ import annotations

import numpy as np
import pytest

from daily_mlops.errors import ConfigError, SchemaError
from daily_mlops.ml.splits import calibration_split


def test_calibration_split_is_stratified_disjoint_covering_and_seeded() -> None:
    """20% of the rows, the same positive rate in both parts, no overlap, every row once; same seed, same split."""
    y = np.array([1] * 300 + [0] * 700)
    parts = calibration_split(y, seed=7)
    fit, calibration = parts["fit"], parts["calibration"]
    assert len(calibration) == 200 and len(fit) == 800
    assert np.intersect1d(fit, calibration).size == 0
    assert np.array_equal(np.sort(np.concatenate([fit, calibration])), np.arange(1000))
    assert y[calibration].mean() == pytest.approx(0.3) and y[fit].mean() == pytest.approx(0.3)
    again = calibration_split(y, seed=7)
    assert np.array_equal(again["calibration"], calibration)
    assert not np.array_equal(calibration_split(y, seed=8)["calibration"], calibration)


def test_calibration_split_refuses_what_it_cannot_stratify() -> None:
    """A single positive row cannot be in both parts (SchemaError names the fix); a fraction outside (0, 1) is a
    ConfigError."""
    with pytest.raises(SchemaError, match="MLOPS_DAILY_ROWS"):
        calibration_split(np.array([0] * 20 + [1]), seed=0)
    with pytest.raises(ConfigError, match="calibration fraction"):
        calibration_split(np.array([0, 1] * 10), seed=0, fraction=1.0)
