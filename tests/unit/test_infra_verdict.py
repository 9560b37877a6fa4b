"""The infra-validation verdict (pure): which check refuses a probed version, and when it passes."""

from __future__ import annotations

import pytest

from daily_mlops.loop.infra_validation import CHECKS, SCORE_TOLERANCE, infra_verdict

RECORDED = {"roc_auc": 0.75, "f1": 0.5}
GOOD = {"ok": True, "roc_auc": 0.75, "f1": 0.5, "n_rows": 300, "p95_ms": 12.0}


def test_a_probe_equal_to_evaluation_and_fast_enough_passes() -> None:
    """Scores within the tolerance and a p95 under the limit: no check fails."""
    probed = {**GOOD, "roc_auc": 0.75 + SCORE_TOLERANCE / 2}
    assert infra_verdict(probed, RECORDED, max_p95_ms=200) == (None, None)


@pytest.mark.parametrize(("probed", "check", "words"), [
    ({"ok": False, "check": "load", "error": "RuntimeError: size mismatch"}, "load", "size mismatch"),
    ({"ok": False, "check": "schema", "error": "missing column(s) ['x']"}, "schema", "missing"),
    ({**GOOD, "roc_auc": 0.74}, "scores", "roc_auc 0.740000"),
    ({**GOOD, "f1": 0.49}, "scores", "f1 0.490000"),
    ({**GOOD, "p95_ms": 250.0}, "latency", "MLOPS_MAX_PREDICT_P95_MS=200"),
])
def test_each_failure_names_its_check(probed: dict, check: str, words: str) -> None:
    """A failed load or schema check, a score off by more than the tolerance, a slow p95: that check, with what
    was found."""
    failed, found = infra_verdict(probed, RECORDED, max_p95_ms=200)
    assert failed == check and failed in CHECKS
    assert words in found


def test_a_version_without_recorded_reference_metrics_is_not_compared() -> None:
    """Versions registered before metrics.reference was recorded are loaded and timed, their scores not compared."""
    assert infra_verdict({**GOOD, "roc_auc": 0.1}, None, max_p95_ms=200) == (None, None)
