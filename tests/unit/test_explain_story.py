"""The pure story of a logical date (:func:`daily_mlops.loop.explain.explain_day`), from plain documents."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from daily_mlops.cli.output import explain_lines
from daily_mlops.errors import NotFoundError
from daily_mlops.loop.explain import NO_EVALUATION, explain_day, version_in_place

AT = dt.datetime(2026, 11, 5, 9, 30, tzinfo=dt.UTC)


def _records(**fields) -> dict:
    return {"logical_date": "2026-11-05", "batch": None, "run_id": None, "evaluations": [], "passed": None,
            "alert": None, "deployments": [], "in_place": None, "versions": [], **fields}


def test_nothing_recorded_is_a_not_found_error_naming_the_date() -> None:
    """A date without batch, evaluation, alert or deployment raises NotFoundError (the CLI's exit 2)."""
    with pytest.raises(NotFoundError, match="nothing was recorded for logical date 2026-11-05"):
        explain_day(_records())


def test_a_rollback_and_a_reviewers_rejection_say_by_whom_and_survive_json() -> None:
    """A reviewer's rejection names the reviewer; a rollback names the user and the reason; datetimes become ISO
    strings so the story round-trips through JSON; the batch without a verdict and the missing evaluation are
    named."""
    rejection = {"status": "rejected_by_reviewer", "event_type": "model_deployment_rejected", "model_version": 6,
                 "reviewer": "alice", "responded_at": AT, "timestamp": AT}
    rollback = {"status": "deployed", "event_type": "model_rolled_back", "model_version": 3, "from_version": 5,
                "user": "bob", "reason": "v5 flags every applicant", "version_in_place": 3, "timestamp": AT}
    story = explain_day(_records(batch={"batch_id": "batch-2026-11-05", "n_rows": 10, "drift_mode": "none"},
                                 deployments=[rejection, rollback], in_place=rollback))
    assert json.loads(json.dumps(story)) == story
    assert story["reviewer"] == {"answer": "rejected", "reviewer": "alice", "model_version": 6,
                                 "at": "2026-11-05T09:30:00+00:00"}
    back = story["deployments"][1]
    assert back["rollback"] and back["by"] == "bob" and back["previous_version"] == 5
    assert story["version_in_place"] == 3 == version_in_place(_records(in_place=rollback))
    assert story["missing"] == ["no data-quality verdict recorded (check_data_quality did not finish)", NO_EVALUATION]
    text = "\n".join(explain_lines(story))
    assert "reviewer: alice rejected v6" in text
    assert "deployment: rolled back from v5 to v3, by bob" in text and "v5 flags every applicant" in text
