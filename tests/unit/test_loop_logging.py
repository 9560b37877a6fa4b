"""Unit tests (mongomock): the loop's tasks say at INFO what they decided and why."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from daily_mlops.decisions import carry_best
from daily_mlops.loop.deployment import explain_skipped_deployment, live_version, stays_deployed
from daily_mlops.loop.evaluation import alert_reason, send_alert

DAY = dt.date(2026, 11, 6)
#: The chain result of the day's last evaluation (champion v5, its recalibration v6, then attempt 1's v7), as the DAG
#: passes it on.
LAST = carry_best(
    {"model_version": 7, "attempt": 1, "f1": 0.4612, "roc_auc": 0.7, "passed": False, "f1_threshold": 1.5},
    carry_best(
        {"model_version": 6, "attempt": 0, "stage": "recalibrated", "f1": 0.4501, "roc_auc": 0.7, "passed": False,
         "f1_threshold": 1.5},
        carry_best({"model_version": 5, "attempt": 0, "f1": 0.4433, "roc_auc": 0.7, "passed": False,
                    "f1_threshold": 1.5})),
)


def _deploy(db, version: int) -> None:
    db.model_metadata.insert_one({"model_name": "tabtransformer", "model_version": version, "status": "deployed"})


def test_send_alert_logs_the_alert_message_and_returns_a_one_line_reason(mock_db, settings, caplog) -> None:
    """send_alert logs the alert document's message at INFO; its reason names the type, F1s and the kept version."""
    _deploy(mock_db, 5)
    caplog.set_level(logging.INFO, logger="daily_mlops.loop")
    result = send_alert(settings, logical_date=DAY, last=LAST, f1_threshold=1.5, db=mock_db)
    stored = mock_db.alerts.find_one({}, {"_id": 0})
    assert stored["message"] in [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert result["reason"] == ("MODEL_PERFORMANCE_FAILURE on 2026-11-06: best F1 0.4612 < threshold 1.5000 (fixed) "
                                "after 1 retraining attempt(s); the deployed model stays v5")
    assert "\n" not in result["reason"]


def test_alert_reason_before_any_deployment() -> None:
    """Without a deployed version the reason says so instead of naming one."""
    alert = {"alert_type": "MODEL_PERFORMANCE_FAILURE", "logical_date": "2026-11-06", "f1_score": 0.4,
             "f1_threshold": 0.5, "retrain_attempts": 3}
    assert alert_reason(alert, None).endswith("after 3 retraining attempt(s); no model version is deployed yet")


def test_skipped_deployment_explains_the_alert_and_the_version_that_stays(mock_db, settings, caplog) -> None:
    """The deployment sensor's skip callback logs that the day ended in an alert and which version stays deployed."""
    _deploy(mock_db, 5)
    send_alert(settings, logical_date=DAY, last=LAST, f1_threshold=1.5, db=mock_db)
    caplog.set_level(logging.INFO, logger="daily_mlops.loop")
    caplog.clear()
    message = explain_skipped_deployment(settings, logical_date=DAY, db=mock_db)
    assert message == ("evaluation for 2026-11-06 ended in an alert (MODEL_PERFORMANCE_FAILURE); "
                       "the deployed model stays v5")
    assert [r.getMessage() for r in caplog.records] == [message]


@pytest.mark.parametrize(("deployed", "expected"), [
    ([], "no model version is deployed yet"),
    ([3], "the deployed model stays v3"),
])
def test_live_version_reads_the_registrys_deployed_version(mock_db, deployed, expected) -> None:
    """live_version is the registry's deployed version, or None before any deployment."""
    for version in deployed:
        _deploy(mock_db, version)
    assert stays_deployed(live_version(mock_db)) == expected
