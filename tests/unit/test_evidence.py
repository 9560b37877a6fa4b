"""Unit tests for the evidence behind a promotion: Platt calibration, ECE, the paired bootstrap, judge_candidate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from daily_mlops.decisions import judge_candidate
from daily_mlops.ml.calibration import calibrate, calibration_summary, expected_calibration_error, fit_platt
from daily_mlops.ml.comparison import paired_difference


def _scores(n: int, seed: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    return y, np.clip(0.5 * rng.random(n) + signal * y, 0.0, 1.0)


def test_platt_scaling_calibrates_overconfident_scores_and_keeps_their_order() -> None:
    """Scores pushed towards 1 (as a class-weighted network's are) get an ECE below 0.05 after Platt scaling,
    the Brier score falls, and the order of the rows (ROC-AUC) is unchanged."""
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.02, 0.9, 6000)
    y = (rng.random(6000) < true_p).astype(np.int64)
    raw = true_p ** 0.3  # monotone, badly calibrated
    fit = fit_platt(y[:3000], raw[:3000])
    assert fit["method"] == "platt" and fit["n_rows"] == 3000
    summary = calibration_summary(y[3000:], raw[3000:], fit)
    assert summary["ece_before"] > 0.15 and summary["ece_after"] < 0.05
    assert summary["brier_after"] < summary["brier_before"]
    assert roc_auc_score(y[3000:], calibrate(fit, raw[3000:])) == pytest.approx(roc_auc_score(y[3000:], raw[3000:]))
    assert np.array_equal(calibrate(None, raw), raw)


def test_platt_scaling_refuses_a_single_class_and_unknown_methods() -> None:
    """One class among the calibration rows cannot be calibrated against; an unknown stored method is refused."""
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(np.zeros(50, dtype=int), np.linspace(0, 1, 50))
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrate({"method": "isotonic"}, np.array([0.5]))


def test_expected_calibration_error_by_hand() -> None:
    """Two bins: [0.1, 0.1] with labels [0, 1] (gap 0.4) and [0.9] with label 1 (gap 0.1): ECE = (2*0.4 + 0.1)/3."""
    assert expected_calibration_error(np.array([0, 1, 1]), np.array([0.1, 0.1, 0.9])) == pytest.approx(0.3)


def test_paired_difference_matches_sklearn_and_its_interval_covers_it() -> None:
    """The delta equals sklearn's F1 / ROC-AUC difference; the 95% interval contains it; same seed, same interval."""
    y, a = _scores(1500, 1, 0.35)
    b = np.clip(a + np.random.default_rng(2).normal(0, 0.1, a.size), 0, 1)
    f1 = paired_difference(y, (a > 0.5).astype(int), (b > 0.5).astype(int), metric="f1", seed=3)
    assert f1["delta"] == pytest.approx(f1_score(y, a > 0.5) - f1_score(y, b > 0.5))
    assert f1["interval"][0] < f1["delta"] < f1["interval"][1]
    auc = paired_difference(y, a, b, metric="roc_auc", seed=3)
    assert auc["delta"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert auc["interval"][0] < auc["delta"] < auc["interval"][1]
    assert paired_difference(y, a, b, metric="roc_auc", seed=3)["interval"] == auc["interval"]
    assert auc["n_resamples"] == 1000 and auc["confidence_level"] == 0.95 and auc["n_rows"] == 1500


def test_paired_interval_excludes_zero_only_for_a_real_gain() -> None:
    """A much better model's interval lies above 0; two models that differ by noise have 0 inside theirs."""
    y, weak = _scores(1500, 4, 0.15)
    strong = np.clip(weak + 0.4 * y, 0, 1)
    better = paired_difference(y, strong, weak, metric="roc_auc", seed=0)
    assert better["interval"][0] > 0
    noisy = np.clip(weak + np.random.default_rng(5).normal(0, 0.02, weak.size), 0, 1)
    same = paired_difference(y, (noisy > 0.4).astype(int), (weak > 0.4).astype(int), metric="f1", seed=0)
    assert same["interval"][0] < 0 < same["interval"][1]


def test_paired_difference_of_identically_ranked_scores_is_exactly_zero() -> None:
    """Platt scaling keeps the ranking: the real-holdout ROC-AUC difference of a recalibrated champion is 0 [0, 0]."""
    y, a = _scores(300, 6, 0.3)
    result = paired_difference(y, calibrate({"method": "platt", "coef": 2.0, "intercept": -1.0}, a), a,
                               metric="roc_auc", seed=0)
    assert result["delta"] == pytest.approx(0.0) and result["interval"] == [result["delta"], result["delta"]]


def _diff(delta: float, low: float, high: float, challenger: float = 0.7, champion: float = 0.68) -> dict:
    return {"metric": "f1", "challenger": challenger, "champion": champion, "delta": delta, "interval": [low, high],
            "confidence_level": 0.95, "method": "paired bootstrap", "n_resamples": 1000, "n_rows": 1500}


@pytest.mark.parametrize(("f1", "f1_diff", "real_diff", "expected"), [
    (0.70, _diff(0.03, 0.01, 0.05), _diff(0.0, -0.03, 0.03), (True, True, True, True)),
    (0.60, _diff(0.03, 0.01, 0.05), _diff(0.0, -0.03, 0.03), (False, True, True, False)),   # below the floor
    (0.70, _diff(0.02, -0.004, 0.04), _diff(0.0, -0.03, 0.03), (True, False, True, False)),  # within the noise
    (0.70, _diff(0.03, 0.01, 0.05), _diff(-0.06, -0.09, -0.03), (True, True, False, False)),  # worse on real rows
    (0.70, _diff(0.03, 0.01, 0.05), None, (True, True, None, True)),                         # no real holdout
])
def test_judge_candidate_needs_the_floor_the_interval_and_the_real_guard(f1, f1_diff, real_diff, expected) -> None:
    """Each of the three comparisons can fail a candidate on its own, and each is recorded with its figures."""
    result = judge_candidate(f1=f1, f1_threshold=0.65, champion_version=2, f1_difference=f1_diff,
                             min_improvement=0.0, real_difference=real_diff, real_margin=0.05)
    floor, champion, real, passed = expected
    assert result["floor"]["passed"] is floor and result["champion"]["passed"] is champion
    assert (result["real"] or {}).get("passed") is real and result["passed"] is passed
    assert result["champion"]["interval"] == f1_diff["interval"] and result["champion"]["champion_version"] == 2
    if real_diff is not None:
        assert result["real"]["margin"] == 0.05 and result["real"]["interval"] == real_diff["interval"]


def test_min_improvement_applies_to_the_lower_bound() -> None:
    """With min_improvement 0.02, a gain of +0.03 whose interval starts at +0.01 does not pass."""
    result = judge_candidate(f1=0.7, f1_threshold=0.6, champion_version=1, f1_difference=_diff(0.03, 0.01, 0.05),
                             min_improvement=0.02)
    assert result["champion"]["passed"] is False and result["passed"] is False
