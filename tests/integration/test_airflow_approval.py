"""The deployment DAG's human approval step through the REST API of a real ``daily-mlops airflow``.

Three days are triggered at once, each with ONE call on ``data_pipeline_dag``
and the params ``require_approval: true``, ``f1_threshold: 0.0`` (the champion
passes) and ``max_retrain_attempts: 0``; each day then waits for the day before
(``wait_for_previous_day``), so a day reaches its approval step only after the
previous day's deployment run ended. The reviewer answers over REST
(``PATCH .../taskInstances/approve_deployment/-1/hitlDetails``): Approve on
the first day, Reject on the second, nothing on the third, which times out
after ``MLOPS_APPROVAL_TIMEOUT_HOURS`` (0.01 h = 36 s in the session's
settings). Uses the session's ``airflow_cli`` (conftest); 335 s measured after
startup on 2 cores shared with other test processes, the days one after another,
with a 54 s window (the timeout day's approval step took 68 s; 45 s with 36 s).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APPROVE_DAY = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
REJECT_DAY = dt.datetime(2026, 7, 2, tzinfo=dt.UTC)
TIMEOUT_DAY = dt.datetime(2026, 7, 3, tzinfo=dt.UTC)
CONF = {"require_approval": True, "f1_threshold": 0.0, "max_retrain_attempts": 0}
DEPLOYMENT = "model_deployment_pipeline"
APPROVAL = "approve_deployment"
#: Seconds for one day to reach the approval step after the day before ended (data, evaluation, sensors poking
#: every 30 s); about 150 s on 2 cores shared with other test processes.
REACH_APPROVAL = 360
#: Seconds the test reviewer waits before answering (well inside the 36 s window).
REVIEWER_DELAY = 10


def _answer(airflow_cli, run_id: str, option: str) -> dict:
    response = airflow_cli.client.patch(
        f"/api/v2/dags/{DEPLOYMENT}/dagRuns/{run_id}/taskInstances/{APPROVAL}/-1/hitlDetails",
        json={"chosen_options": [option], "params_input": {}})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def outcomes(airflow_cli) -> dict:
    """Run the three days; answer Approve, Reject, nothing; return each deployment run's states and records.

    The champion (the version each day proposes: f1_threshold 0, no retraining) is read first: the backfill test
    runs before this module on the same Airflow and deploys versions of its own.
    """
    from daily_mlops.storage.registry import ModelRegistry

    champion = ModelRegistry(airflow_cli.db).champion()
    started = time.monotonic()
    run_ids = {day: airflow_cli.trigger("data_pipeline_dag", day, conf=CONF)
               for day in (APPROVE_DAY, REJECT_DAY, TIMEOUT_DAY)}
    assert set(run_ids.values()) == {"day__2026-07-01", "day__2026-07-02", "day__2026-07-03"}
    story: dict = {"waited": {}, "champion": champion["model_version"],
                   "was_deployed": champion["status"] == "deployed"}
    for day, option in ((APPROVE_DAY, "Approve"), (REJECT_DAY, "Reject"), (TIMEOUT_DAY, None)):
        run_id = run_ids[day]
        state = airflow_cli.wait_for_task(DEPLOYMENT, run_id, APPROVAL, ("awaiting_input", "failed", "skipped",
                                                                         "upstream_failed"), timeout=REACH_APPROVAL)
        story["waited"][option] = state
        assert state == "awaiting_input", (option, state, airflow_cli.task_states(DEPLOYMENT, run_id))
        detail = airflow_cli.client.get(
            f"/api/v2/dags/{DEPLOYMENT}/dagRuns/{run_id}/taskInstances/{APPROVAL}/-1/hitlDetails").json()
        story.setdefault("subjects", {})[option] = detail.get("subject")
        if option is not None:
            # A reviewer takes seconds, not milliseconds: an answer within ~1 s of the task parking can reach
            # the scheduler before the executor reports the parked process finished, and Airflow 3.3.2 then
            # marks the task failed ("finished with state success, but ... state attribute is queued").
            time.sleep(REVIEWER_DELAY)
            story.setdefault("answers", {})[option] = _answer(airflow_cli, run_id, option)
            # the deployed model before the next day's decision
            version_file = airflow_cli.home / "models" / "deployed" / "VERSION"
            airflow_cli.wait_for_runs((DEPLOYMENT,), day, timeout=120)
            story.setdefault("version_after", {})[option] = (
                version_file.read_text().strip() if version_file.is_file() else None,
                version_file.stat().st_mtime if version_file.is_file() else None)
    runs = airflow_cli.wait_for_runs((DEPLOYMENT,), TIMEOUT_DAY, timeout=240)
    story["seconds"] = time.monotonic() - started
    print(f"approval outcomes after {story['seconds']:.0f} s")
    story["runs"] = {day: airflow_cli.runs_at(DEPLOYMENT, day)[0] for day in run_ids}
    story["tasks"] = {day: airflow_cli.task_states(DEPLOYMENT, run_ids[day]) for day in run_ids}
    db = airflow_cli.db
    story["events"] = {day: list(db["deployment_events"].find({"logical_date": day.date().isoformat()}, {"_id": 0}))
                       for day in run_ids}
    story["timeout_log"] = "\n".join(airflow_cli.log_lines(DEPLOYMENT, run_ids[TIMEOUT_DAY], APPROVAL))
    assert runs, story
    return story


def test_the_reviewer_sees_the_version_and_the_date(outcomes) -> None:
    """The approval request's subject names the model version from wait_for_model_ready and the logical date."""
    assert outcomes["subjects"]["Approve"] == f"Deploy tabtransformer version {outcomes['champion']} for 2026-07-01?"


def test_approve_deploys(outcomes) -> None:
    """Approve: deploy_model and notify_deployment_complete run; the version is deployed (a recorded no-op when it
    already was) and recorded."""
    tasks = outcomes["tasks"][APPROVE_DAY]
    assert tasks[APPROVAL] == "success" and tasks["deploy_model"] == "success", tasks
    assert tasks["notify_deployment_complete"] == "success"
    assert outcomes["runs"][APPROVE_DAY]["state"] == "success"
    expected = "already_deployed" if outcomes["was_deployed"] else "deployed"
    assert [(e["status"], e["model_version"]) for e in outcomes["events"][APPROVE_DAY]] == [
        (expected, outcomes["champion"])]
    assert outcomes["version_after"]["Approve"][0] == str(outcomes["champion"])


def test_reject_records_rejected_by_reviewer_and_deploys_nothing(outcomes) -> None:
    """Reject: deploy_model is skipped, one rejected_by_reviewer event names the reviewer, the deployed files are
    untouched."""
    tasks = outcomes["tasks"][REJECT_DAY]
    assert tasks[APPROVAL] == "success", tasks  # a human answer is not a task failure
    assert tasks["deploy_model"] == "skipped" and tasks["notify_deployment_complete"] == "skipped", tasks
    events = outcomes["events"][REJECT_DAY]
    assert [(e["status"], e["model_version"], e["reviewer"]) for e in events] == [
        ("rejected_by_reviewer", outcomes["champion"], "admin")]
    assert outcomes["version_after"]["Reject"] == outcomes["version_after"]["Approve"]  # same version, same mtime


def test_no_answer_times_out_and_deploys_nothing(outcomes) -> None:
    """No answer: after the timeout the approval step fails with a message, nothing is deployed or recorded."""
    tasks = outcomes["tasks"][TIMEOUT_DAY]
    assert tasks[APPROVAL] == "failed", tasks
    assert tasks["deploy_model"] == "upstream_failed", tasks
    assert outcomes["runs"][TIMEOUT_DAY]["state"] == "failed"
    assert outcomes["events"][TIMEOUT_DAY] == []
    assert "no reviewer answered within 0.01 h" in outcomes["timeout_log"]
