"""Tests of the pure classification metrics and the F1-maximising decision threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daily_mlops.ml.metrics import choose_decision_threshold, classification_metrics


def test_perfect_classifier() -> None:
    """Probabilities that rank and threshold every row correctly give 1.0 everywhere."""
    metrics = classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert metrics["accuracy"] == 1.0
    assert metrics["precision"] == 1.0
    assert metrics["recall"] == 1.0
    assert metrics["f1"] == 1.0
    assert metrics["roc_auc"] == 1.0
    assert metrics["confusion_matrix"] == [[2, 0], [0, 2]]


def test_fixed_example_by_hand() -> None:
    """A worked example: tn=2, fp=1, fn=1, tp=2 at threshold 0.5, so P = R = F1 = 2/3."""
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_prob = np.array([0.1, 0.4, 0.7, 0.3, 0.6, 0.9])
    metrics = classification_metrics(y_true, y_prob)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 2]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # positive/negative pairs ranked correctly: 6 of 9 (0.3 < 0.4, 0.3 < 0.7 and 0.6 < 0.7 are wrong)
    assert metrics["roc_auc"] == pytest.approx(6 / 9)
    assert metrics["n_samples"] == 6
    assert metrics["positive_rate"] == pytest.approx(0.5)
    assert metrics["predicted_positive_rate"] == pytest.approx(0.5)
    assert metrics["decision_threshold"] == 0.5


def test_threshold_is_inclusive_and_moves_predictions() -> None:
    """A row is positive when y_prob >= threshold; a higher threshold turns fp into tn."""
    y_true, y_prob = [0, 1, 0, 1], [0.5, 0.5, 0.7, 0.9]
    assert classification_metrics(y_true, y_prob, decision_threshold=0.5)["confusion_matrix"] == [[0, 2], [0, 2]]
    assert classification_metrics(y_true, y_prob, decision_threshold=0.8)["confusion_matrix"] == [[2, 0], [1, 1]]


def test_values_are_plain_python_and_json_able() -> None:
    """Every value is a built-in float/int/list/None, never a NumPy scalar, and survives JSON."""
    metrics = classification_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.4, 0.1], dtype=np.float32))
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "positive_rate", "decision_threshold"):
        assert type(metrics[key]) is float, key
    assert type(metrics["n_samples"]) is int
    assert all(type(v) is int for row in metrics["confusion_matrix"] for v in row)
    assert json.loads(json.dumps(metrics)) == metrics


def test_single_class_roc_auc_is_none() -> None:
    """With only one class in y_true, roc_auc is None instead of an error; F1 is 0 without positives."""
    metrics = classification_metrics([0, 0, 0], [0.1, 0.6, 0.3])
    assert metrics["roc_auc"] is None
    assert metrics["f1"] == 0.0
    assert metrics["confusion_matrix"] == [[2, 1], [0, 0]]


@pytest.mark.parametrize(
    ("y_true", "y_prob", "message"),
    [
        ([0, 1, 1], [0.2, 0.8], "3 labels but y_prob has 2"),
        ([0, 1], [0.2, 1.3], r"probabilities in \[0, 1\]"),
        ([0, 1], [-0.1, 0.5], r"probabilities in \[0, 1\]"),
        ([0, 1], [float("nan"), 0.5], r"probabilities in \[0, 1\]"),
        ([0, 2], [0.2, 0.5], "binary labels"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_raise_value_error(y_true, y_prob, message) -> None:
    """Mismatched lengths, probabilities outside [0, 1], non-binary labels and empty input raise ValueError."""
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_prob)
    with pytest.raises(ValueError, match=message):
        choose_decision_threshold(y_true, y_prob)


def test_bad_threshold_raises_value_error() -> None:
    """A threshold outside [0, 1] raises ValueError."""
    with pytest.raises(ValueError, match="threshold"):
        classification_metrics([0, 1], [0.2, 0.8], decision_threshold=1.5)


def test_choose_decision_threshold_maximises_f1() -> None:
    """On a hand-checked case the chosen cut-off 0.35 (tp=4, fp=1, F1=8/9) beats every other cut-off."""
    y_true = np.array([0, 0, 0, 1, 1, 1, 1])
    y_prob = np.array([0.05, 0.1, 0.4, 0.35, 0.45, 0.6, 0.9])
    threshold = choose_decision_threshold(y_true, y_prob)
    assert type(threshold) is float
    assert threshold == pytest.approx(0.35)
    best = classification_metrics(y_true, y_prob, decision_threshold=threshold)["f1"]
    assert best == pytest.approx(8 / 9)
    for other in np.linspace(0.01, 0.99, 99):
        assert classification_metrics(y_true, y_prob, decision_threshold=float(other))["f1"] <= best + 1e-12


def test_choose_decision_threshold_stays_inside_open_interval() -> None:
    """Scores of exactly 0 or 1 still give a threshold strictly inside (0, 1); one class gives 0.5."""
    assert 0.0 < choose_decision_threshold([1, 1, 0], [0.0, 0.0, 0.0]) < 1.0
    assert 0.0 < choose_decision_threshold([0, 1], [0.0, 1.0]) < 1.0
    assert choose_decision_threshold([1, 1, 1], [0.2, 0.5, 0.9]) == 0.5
