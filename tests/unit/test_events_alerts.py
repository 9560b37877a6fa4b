"""Unit tests (mongomock) for daily_mlops.storage.alerts and daily_mlops.storage.events.

Fields, upsert keys, timestamps.
"""

from __future__ import annotations

import datetime as dt

import pytest

from daily_mlops.storage.alerts import MODEL_PERFORMANCE_FAILURE, raise_performance_alert
from daily_mlops.storage.events import (
    record_evaluation_event,
    record_notification,
    record_performance,
    record_training_event,
    utcnow,
)

DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)


def _aware_utc(value: dt.datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


def _stored_close_to(stored: dt.datetime, written: dt.datetime) -> bool:
    """mock_db is not tz_aware: it returns naive UTC truncated to milliseconds, as BSON does."""
    naive = written.astimezone(dt.UTC).replace(tzinfo=None) if written.tzinfo else written
    stored = stored.astimezone(dt.UTC).replace(tzinfo=None) if stored.tzinfo else stored
    return abs(stored - naive) < dt.timedelta(milliseconds=2)


def _metrics(f1: float) -> dict:
    return {"f1": f1, "roc_auc": 0.7, "precision": 0.5, "recall": 0.6, "accuracy": 0.8, "decision_threshold": 0.4,
            "n_samples": 150, "positive_rate": 0.3, "confusion_matrix": [[90, 15], [20, 25]]}


# --------------------------------------------------------------------------- alerts
def test_alert_document_has_every_field(mock_db) -> None:
    """raise_performance_alert writes a CRITICAL MODEL_PERFORMANCE_FAILURE with the documented fields."""
    before = utcnow()
    returned = raise_performance_alert(
        mock_db, logical_date=DAY, f1_score=0.61234, f1_threshold=0.75, retrain_attempts=3,
        model_versions_tried=[1, 2, 3, 4], dag_id="model_evaluation_pipeline", run_id="manual__x",
    )
    assert mock_db.alerts.count_documents({}) == 1
    stored = mock_db.alerts.find_one({}, {"_id": 0})
    for doc in (returned, stored):
        assert doc["alert_type"] == MODEL_PERFORMANCE_FAILURE == "MODEL_PERFORMANCE_FAILURE"
        assert doc["severity"] == "CRITICAL"
        assert doc["f1_score"] == pytest.approx(0.61234)
        assert doc["f1_threshold"] == pytest.approx(0.75)
        assert doc["retrain_attempts"] == 3
        assert doc["logical_date"] == "2026-11-20"
        assert doc["model_versions_tried"] == [1, 2, 3, 4]
        assert doc["dag_id"] == "model_evaluation_pipeline"
        assert doc["run_id"] == "manual__x"
        assert isinstance(doc["message"], str) and doc["message"]
        assert isinstance(doc["timestamp"], dt.datetime)
    assert "_id" not in returned
    assert _aware_utc(returned["timestamp"])
    assert returned["timestamp"] >= before
    assert _stored_close_to(stored["timestamp"], returned["timestamp"])
    # the message says what happened: date, scores and the versions tried
    message = returned["message"]
    assert "2026-11-20" in message
    assert "0.6123" in message and "0.7500" in message
    assert "3 retraining attempt" in message
    assert "1, 2, 3, 4" in message


def test_alert_message_carries_the_days_drift(mock_db) -> None:
    """A drift line passed to raise_performance_alert ends the message and is stored as drift; without one, nothing."""
    line = "drift score 0.71 (1 = like the reference) (drift param shift), worst: purpose 0.42"
    doc = raise_performance_alert(mock_db, logical_date=DAY, f1_score=0.2, f1_threshold=0.4, retrain_attempts=3,
                                  model_versions_tried=[1, 2], drift=line)
    assert doc["message"].endswith(f"Data: {line}.") and doc["drift"] == line
    plain = raise_performance_alert(mock_db, logical_date=DAY, f1_score=0.2, f1_threshold=0.4, retrain_attempts=3,
                                    model_versions_tried=[1, 2])
    assert "Data:" not in plain["message"] and plain["drift"] is None


def test_alert_types_are_plain_python(mock_db) -> None:
    """Numbers are cast to plain float/int (numpy scalars would not survive XCom or BSON)."""
    np = pytest.importorskip("numpy")
    doc = raise_performance_alert(
        mock_db, logical_date=DAY, f1_score=np.float32(0.5), f1_threshold=np.float64(0.75),
        retrain_attempts=np.int64(2), model_versions_tried=[np.int64(1), np.int64(2)],
    )
    assert type(doc["f1_score"]) is float
    assert type(doc["f1_threshold"]) is float
    assert type(doc["retrain_attempts"]) is int
    assert all(type(v) is int for v in doc["model_versions_tried"])


def test_alert_twice_for_the_same_date_leaves_one_document(mock_db) -> None:
    """A rerun of the same logical date replaces its alert (upsert), keeping the latest values."""
    raise_performance_alert(mock_db, logical_date=DAY, f1_score=0.5, f1_threshold=0.75, retrain_attempts=3,
                            model_versions_tried=[1, 2, 3, 4])
    raise_performance_alert(mock_db, logical_date=DAY, f1_score=0.55, f1_threshold=0.75, retrain_attempts=3,
                            model_versions_tried=[1, 5, 6, 7])
    assert mock_db.alerts.count_documents({}) == 1
    doc = mock_db.alerts.find_one({"logical_date": "2026-11-20"})
    assert doc["f1_score"] == pytest.approx(0.55)
    assert doc["model_versions_tried"] == [1, 5, 6, 7]


def test_alerts_for_different_dates_are_separate(mock_db) -> None:
    """Alerts are keyed by logical date: two days give two documents."""
    for day in (DAY, NEXT_DAY):
        raise_performance_alert(mock_db, logical_date=day, f1_score=0.5, f1_threshold=0.75, retrain_attempts=3,
                                model_versions_tried=[1])
    assert sorted(mock_db.alerts.distinct("logical_date")) == ["2026-11-20", "2026-11-21"]
    assert mock_db.alerts.count_documents({}) == 2


# --------------------------------------------------------------------------- performance_metrics
def test_record_performance_fields_and_passed_flag(mock_db) -> None:
    """record_performance stores the metrics, the threshold and passed = f1 >= threshold."""
    doc = record_performance(mock_db, logical_date=DAY, model_name="tabtransformer", model_version=1,
                             metrics=_metrics(0.75), attempt=0, f1_threshold=0.75, batch_id="batch-2026-11-20")
    assert doc["passed"] is True  # boundary: equal passes, consistent with next_step
    assert _aware_utc(doc["timestamp"])
    low = record_performance(mock_db, logical_date=DAY, model_name="tabtransformer", model_version=2,
                             metrics=_metrics(0.7), attempt=1, f1_threshold=0.75, batch_id="batch-2026-11-20")
    assert low["passed"] is False
    stored = mock_db.performance_metrics.find_one({"model_version": 1})
    assert stored["logical_date"] == "2026-11-20"
    assert stored["model_name"] == "tabtransformer"
    assert stored["f1"] == pytest.approx(0.75)
    assert stored["roc_auc"] == pytest.approx(0.7)
    assert stored["attempt"] == 0
    assert stored["split"] == "test"
    assert stored["batch_id"] == "batch-2026-11-20"
    assert _stored_close_to(stored["timestamp"], doc["timestamp"])


def test_record_performance_rerun_replaces(mock_db) -> None:
    """Recording the same (date, model, version) again replaces the document instead of adding one."""
    for f1, run_id in ((0.5, "scheduled__1"), (0.8, "manual__2")):
        record_performance(mock_db, logical_date=DAY, model_name="tabtransformer", model_version=1,
                           metrics=_metrics(f1), attempt=0, f1_threshold=0.75, batch_id="b", run_id=run_id)
    assert mock_db.performance_metrics.count_documents({}) == 1
    doc = mock_db.performance_metrics.find_one()
    assert doc["f1"] == pytest.approx(0.8)
    assert doc["passed"] is True
    assert doc["run_id"] == "manual__2"  # the DAG run that made the latest evaluation
    # another day or another version is a separate key
    record_performance(mock_db, logical_date=NEXT_DAY, model_name="tabtransformer", model_version=1,
                       metrics=_metrics(0.5), attempt=0, f1_threshold=0.75, batch_id="b2")
    record_performance(mock_db, logical_date=DAY, model_name="tabtransformer", model_version=2,
                       metrics=_metrics(0.5), attempt=1, f1_threshold=0.75, batch_id="b")
    assert mock_db.performance_metrics.count_documents({}) == 3


# --------------------------------------------------------------------------- evaluation_events
def test_record_evaluation_event_upserts_by_date_type_version(mock_db) -> None:
    """evaluation_events are keyed by (logical date, event type, model version); reruns converge."""
    first = record_evaluation_event(mock_db, "model_evaluated", logical_date=DAY, model_version=1, f1=0.5)
    record_evaluation_event(mock_db, "model_evaluated", logical_date=DAY, model_version=1, f1=0.6)
    assert mock_db.evaluation_events.count_documents({}) == 1
    assert mock_db.evaluation_events.find_one()["f1"] == pytest.approx(0.6)
    assert _aware_utc(first["timestamp"])
    assert first["event_type"] == "model_evaluated"
    assert first["logical_date"] == "2026-11-20"

    record_evaluation_event(mock_db, "evaluation_passed", logical_date=DAY, model_version=1)
    record_evaluation_event(mock_db, "model_evaluated", logical_date=DAY, model_version=2, f1=0.7)
    record_evaluation_event(mock_db, "alert_raised", logical_date=DAY, model_version=None)
    record_evaluation_event(mock_db, "alert_raised", logical_date=DAY, model_version=None)
    assert mock_db.evaluation_events.count_documents({}) == 4
    assert mock_db.evaluation_events.count_documents({"event_type": "alert_raised", "model_version": None}) == 1


# --------------------------------------------------------------------------- training_events
def test_record_training_event_upserts_by_model_version_stage(mock_db) -> None:
    """training_events are keyed by (model, version, stage); rerunning a stage replaces it."""
    doc = record_training_event(mock_db, model_name="tabtransformer", model_version=1, stage="pretrain",
                                losses=[2.0, 1.5], epochs=2, seconds=1.0, rows=700, logical_date=None)
    record_training_event(mock_db, model_name="tabtransformer", model_version=1, stage="pretrain",
                          losses=[1.9], epochs=1, seconds=0.5, rows=700, logical_date=None)
    record_training_event(mock_db, model_name="tabtransformer", model_version=1, stage="finetune",
                          losses=[0.7], epochs=1, seconds=0.5, rows=150, logical_date=None)
    assert doc["event_type"] == "pretrain_completed"
    assert _aware_utc(doc["timestamp"])
    assert mock_db.training_events.count_documents({}) == 2
    pre = mock_db.training_events.find_one({"stage": "pretrain"})
    assert pre["losses"] == [1.9]
    assert pre["epochs"] == 1
    assert mock_db.training_events.find_one({"stage": "finetune"})["event_type"] == "finetune_completed"


def test_record_training_event_key_wins_over_fields(mock_db) -> None:
    """A field that collides with a key cannot move the document to another key."""
    doc = record_training_event(mock_db, model_name="tabtransformer", model_version=3, stage="retrain",
                                event_type="custom")
    assert doc["model_version"] == 3 and doc["stage"] == "retrain"
    assert mock_db.training_events.count_documents({"model_version": 3, "stage": "retrain"}) == 1


# --------------------------------------------------------------------------- notifications
def test_record_notification_upserts_by_date_and_kind(mock_db) -> None:
    """notifications are keyed by (logical date, kind); a date may be a date or an ISO string."""
    first = record_notification(mock_db, "evaluation_results", logical_date=DAY, message="F1 0.80 passed")
    record_notification(mock_db, "evaluation_results", logical_date="2026-11-20", message="F1 0.81 passed")
    record_notification(mock_db, "deployment_complete", logical_date=DAY, message="v2 deployed", model_version=2)
    assert _aware_utc(first["timestamp"])
    assert first["logical_date"] == "2026-11-20"
    assert mock_db.notifications.count_documents({}) == 2
    assert mock_db.notifications.find_one({"kind": "evaluation_results"})["message"] == "F1 0.81 passed"
    assert mock_db.notifications.find_one({"kind": "deployment_complete"})["model_version"] == 2


def test_rerun_updates_timestamp_not_key(mock_db) -> None:
    """The timestamp is the last write time; rewriting keeps one document with a newer-or-equal timestamp."""
    a = record_notification(mock_db, "evaluation_results", logical_date=DAY, message="one")
    b = record_notification(mock_db, "evaluation_results", logical_date=DAY, message="two")
    assert b["timestamp"] >= a["timestamp"]
    assert mock_db.notifications.count_documents({"logical_date": "2026-11-20"}) == 1


def test_utcnow_is_timezone_aware_utc() -> None:
    """utcnow returns an aware datetime in UTC (never a naive local time)."""
    now = utcnow()
    assert _aware_utc(now)
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
