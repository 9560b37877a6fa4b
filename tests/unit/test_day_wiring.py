"""Unit tests for a day's wiring outside Airflow: run ids, the fail-fast message, the alert from the XCom chain,
and the reviewer's rejection record."""

from __future__ import annotations

import datetime as dt

import pytest

from daily_mlops.orchestration.dags import day_run_id, missing_upstream_message

DAY = dt.date(2026, 11, 6)


@pytest.mark.parametrize(("logical_date", "expected"), [
    (dt.datetime(2026, 11, 6, tzinfo=dt.UTC), "day__2026-11-06"),
    (dt.datetime(2026, 11, 6), "day__2026-11-06"),  # naive is UTC
    (dt.datetime(2026, 11, 6, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), "day__2026-11-06"),
    (dt.datetime(2026, 11, 6, 14, 33, 12, tzinfo=dt.UTC), "day__2026-11-06T14:33:12Z"),  # UI default: now
])
def test_day_run_id_is_readable_and_names_the_logical_date(logical_date: dt.datetime, expected: str) -> None:
    """Run ids of a day are day__<date> at midnight UTC, and keep the time otherwise (two runs of one day differ)."""
    assert day_run_id(logical_date) == expected


def test_missing_upstream_message_names_the_dag_to_trigger() -> None:
    """The fail-fast message says which run is missing and to trigger data_pipeline_dag for that logical date."""
    message = missing_upstream_message("model_deployment_pipeline", "model_evaluation_pipeline",
                                       dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    assert "no model_evaluation_pipeline run for logical date 2026-11-06T00:00:00+00:00" in message
    assert "Trigger data_pipeline_dag for logical date 2026-11-06T00:00:00+00:00" in message


def _chain(f1s: list[float]) -> dict:
    from daily_mlops.decisions import carry_best

    last = None
    for position, f1 in enumerate(f1s):  # champion, its recalibration, then fine-tuning attempts
        result = {"model_version": position + 1, "attempt": max(position - 1, 0), "f1": f1, "roc_auc": 0.6,
                  "passed": False, "f1_threshold": 0.9, "stage": _STAGES[min(position, 2)]}
        last = carry_best(result, last) if last else carry_best(result)
    return last


_STAGES = ("champion", "recalibrated", "finetuned")


def _record(db, version: int, position: int, f1: float, run_id: str) -> None:
    from daily_mlops.storage.events import record_performance

    record_performance(db, logical_date=DAY, model_name="tabtransformer", model_version=version,
                       metrics={"f1": f1, "roc_auc": 0.6}, attempt=max(position - 1, 0), f1_threshold=0.9,
                       batch_id="batch-2026-11-06", run_id=run_id, stage=_STAGES[min(position, 2)])


def test_send_alert_uses_the_last_chain_result(settings, mock_db) -> None:
    """send_alert takes the best F1, attempt count and versions from the last result; the alert document keeps
    its fields; the per-version details come from this run's performance_metrics."""
    from daily_mlops.loop.evaluation import send_alert

    for attempt, f1 in enumerate([0.40, 0.45, 0.38]):
        _record(mock_db, attempt + 1, attempt, f1, "day__2026-11-06")
    _record(mock_db, 9, 0, 0.99, "another-run")  # another run of the day: not this alert's detail
    out = send_alert(settings, logical_date=DAY, last=_chain([0.40, 0.45, 0.38]), f1_threshold=0.9,
                     dag_id="model_evaluation_pipeline", run_id="day__2026-11-06", db=mock_db)
    assert out["retrain_attempts"] == 1 and out["model_versions_tried"] == [1, 2, 3]
    assert out["f1_score"] == pytest.approx(0.45)
    assert out["details"] == ["v1 (champion): validation F1 0.4000", "v2 (recalibrated): validation F1 0.4500",
                              "v3 (finetuned): validation F1 0.3800"]
    alert = mock_db["alerts"].find_one({"logical_date": "2026-11-06"}, {"_id": 0})
    assert set(alert) == {"alert_type", "severity", "f1_score", "f1_threshold", "f1_threshold_note",
                          "retrain_attempts", "retry_attempts", "candidates", "message", "timestamp", "logical_date",
                          "model_versions_tried", "dag_id", "run_id", "status", "drift"}
    assert alert["drift"] is None and "Data:" not in alert["message"]  # no drift figures recorded for the day
    assert alert["retrain_attempts"] == 1 and alert["model_versions_tried"] == [1, 2, 3]
    assert alert["retry_attempts"] == 1  # the original design's field name, still queryable
    assert [c["model_version"] for c in alert["candidates"]] == [1, 2, 3]


def test_send_alert_message_ends_with_the_days_drift(settings, mock_db) -> None:
    """When the day's processing_metadata records drift figures, the alert message ends with their one-line summary."""
    from daily_mlops.loop.evaluation import send_alert

    mock_db["processing_metadata"].insert_one({"batch_id": "batch-2026-11-06", "logical_date": "2026-11-06", "drift": {
        "score": 0.43, "param": "shift",
        "worst": [{"column": "credit_amount", "score": 0.07, "metric": "KSComplement"}],
        "positive_rate": 0.3, "reference_positive_rate": 0.3}})
    _record(mock_db, 1, 0, 0.13, "day__2026-11-06")
    out = send_alert(settings, logical_date=DAY, last=_chain([0.13]), f1_threshold=0.9, run_id="day__2026-11-06",
                     db=mock_db)
    assert out["message"].endswith("Data: drift score 0.43 (1 = like the reference) (drift param shift), worst: "
                                   "credit_amount 0.07; positive rate 0.300 vs reference 0.300.")


def test_send_alert_rebuilds_the_summary_from_mongodb_when_the_xcom_is_gone(settings, mock_db) -> None:
    """Without a last result (XCom cleared) the run's performance_metrics give the same alert."""
    from daily_mlops.loop.evaluation import send_alert

    for attempt, f1 in enumerate([0.40, 0.45]):
        _record(mock_db, attempt + 1, attempt, f1, "day__2026-11-06")
    out = send_alert(settings, logical_date=DAY, last=None, f1_threshold=0.9, run_id="day__2026-11-06", db=mock_db)
    assert (out["retrain_attempts"], out["model_versions_tried"]) == (0, [1, 2])
    assert out["f1_score"] == pytest.approx(0.45)


def test_send_alert_without_any_result_is_an_error(settings, mock_db) -> None:
    """No result and no record of the run: an MLOpsError naming the run, and no alert written."""
    from daily_mlops.errors import MLOpsError
    from daily_mlops.loop.evaluation import send_alert

    with pytest.raises(MLOpsError, match="day__2026-11-06"):
        send_alert(settings, logical_date=DAY, last=None, f1_threshold=0.9, run_id="day__2026-11-06", db=mock_db)
    assert mock_db["alerts"].count_documents({}) == 0


def test_rejection_is_recorded_once_and_deploys_nothing(settings, mock_db) -> None:
    """A reviewer's Reject writes one deployment_events document (rejected_by_reviewer); rejecting again
    replaces it; no deployed status or deployment is recorded."""
    from daily_mlops.loop.deployment import record_rejection

    for _ in range(2):
        event = record_rejection(settings, logical_date=DAY, model_version=3, reviewer="admin",
                                 dag_id="model_deployment_pipeline", run_id="day__2026-11-06", db=mock_db)
    assert event["status"] == "rejected_by_reviewer" and event["model_version"] == 3
    docs = list(mock_db["deployment_events"].find({}, {"_id": 0}))
    assert len(docs) == 1
    assert docs[0]["reviewer"] == "admin" and docs[0]["logical_date"] == "2026-11-06"
    assert docs[0]["event_type"] == "model_deployment_rejected"
    assert not (settings.deployment_path / "VERSION").exists()
