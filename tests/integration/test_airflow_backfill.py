"""Airflow's own backfill of ``data_pipeline_dag`` ends each day as ``daily-mlops run`` does, in date order.

One ``POST /api/v2/backfills`` on the session's ``daily-mlops airflow``
(``airflow_cli`` in conftest: 2,000 rows a day, a small model, no retries)
creates the data runs of consecutive logical dates with the ``drift: shift``
param; the backfill's ``max_active_runs`` is left at Airflow's 10, so all its
data runs start at once and only ``wait_for_previous_day`` orders the days.
Meanwhile ``daily-mlops bootstrap`` and ``daily-mlops run --days N --drift
shift`` run the same dates with the same settings on a fresh database of the
same MongoDB server. Then, per date, the outcome (``decisions.day_outcome``),
the champion, the versions tried and the deployed version must be equal, and
no task of a day (but its wait) may start before every task of the day before
ended, in Airflow's task instances and in MongoDB's timestamps.

Shifted days make the comparison able to fail: the bootstrap champion falls on
the first shifted day, a fine-tuned version is deployed, and the later days'
champion is that version only if they ran after it was deployed.

A backfilled day takes 2 to 3.5 minutes on 2 cores shared with other test
processes (mostly task start-up), so ``make test`` runs 2 dates: the shortest
window where order matters (the second day's champion is what the first
deployed); measured 249 s through Airflow, the runner 126 s beside it. The
7-date version runs with ``-m backfill_week`` (``make test-backfill-week``;
measured 1,475 s). Both compare with a fresh database, so they run first among the tests
that use ``airflow_cli`` (conftest orders them).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_IDS = ("data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline")
FIRST_DAY = dt.date(2026, 6, 1)
CONF = {"drift": "shift"}
#: Seconds a backfilled day may take at 2,000 rows (a day with three retraining attempts takes about 2 minutes).
SECONDS_PER_DAY = 240
#: Seconds ``daily-mlops bootstrap`` plus ``run`` may take per day.
RUNNER_SECONDS_PER_DAY = 120


def _dates(n_days: int) -> list[dt.date]:
    return [FIRST_DAY + dt.timedelta(days=i) for i in range(n_days)]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _start_runner(airflow_cli, tmp_path: Path, n_days: int) -> tuple[subprocess.Popen, str, Path]:
    """``daily-mlops bootstrap`` then ``run --days n_days --drift shift`` on a fresh database, in the background."""
    db_name = f"runner_{uuid.uuid4().hex[:8]}"
    home = tmp_path / "runner_home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}, **airflow_cli.settings,
           "MLOPS_HOME": str(home), "MLOPS_MONGO_URI": airflow_cli.mongo_uri, "MLOPS_MONGO_DB": db_name}
    cli = Path(sys.executable).with_name("daily-mlops")
    script = (f"'{cli}' bootstrap && '{cli}' run --date {FIRST_DAY.isoformat()} --days {n_days} "
              f"--drift {CONF['drift']}")
    log = tmp_path / "runner.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(["sh", "-c", script], env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process, db_name, log


def _backfill(airflow_cli, n_days: int) -> dict:
    """POST one backfill of data_pipeline_dag over ``n_days`` logical dates; return Airflow's answer."""
    last = _midnight(_dates(n_days)[-1])
    body = {"dag_id": "data_pipeline_dag", "from_date": _midnight(FIRST_DAY).isoformat().replace("+00:00", "Z"),
            "to_date": last.isoformat().replace("+00:00", "Z"), "dag_run_conf": CONF,
            # depends_on_past (wait_for_previous_day) requires a reprocess behaviour other than "none"
            "reprocess_behavior": "failed"}
    # On SQLite Airflow refuses the creation while another component writes (503 "Database is locked"; nothing is
    # created), so a user sends it again; on Postgres it does not happen.
    for _ in range(12):
        created = airflow_cli.client.post("/api/v2/backfills", json=body)
        if created.status_code != 503:
            break
        time.sleep(5)
    assert created.status_code in (200, 201), created.text
    return created.json()


def _airflow_day(airflow_cli, day: dt.date) -> dict:
    """The day's runs (by DAG id) and the start/end of each of their task instances that ran."""
    runs, tasks = {}, []
    for dag_id in DAG_IDS:
        found = airflow_cli.runs_at(dag_id, _midnight(day))
        if not found:
            continue
        runs[dag_id] = found[0]
        got = airflow_cli.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{found[0]['dag_run_id']}/taskInstances")
        assert got.status_code == 200, got.text
        tasks += [(dag_id, ti["task_id"], dt.datetime.fromisoformat(ti["start_date"]),
                   dt.datetime.fromisoformat(ti["end_date"]))
                  for ti in got.json()["task_instances"] if ti["start_date"] and ti["end_date"]]
    return {"runs": runs, "tasks": tasks}


def _wait_for_days(airflow_cli, dates: list[dt.date], timeout: float) -> dict[dt.date, dict]:
    """Poll until every date has a finished data run and finished runs of the DAGs it triggered."""
    deadline = time.monotonic() + timeout
    while True:
        days = {day: _airflow_day(airflow_cli, day) for day in dates}
        finished = all(day["runs"] and all(r["state"] in ("success", "failed") for r in day["runs"].values())
                       and (len(day["runs"]) == len(DAG_IDS) or day["runs"]["data_pipeline_dag"]["state"] == "failed")
                       for day in days.values())
        if finished or time.monotonic() > deadline:
            return days
        time.sleep(5)


def _outcomes(db, dates: list[dt.date]) -> dict[str, tuple]:
    """Per date: (outcome, champion version, versions tried, deployed version), from ``summarise_day``."""
    from daily_mlops.decisions import day_outcome
    from daily_mlops.orchestration.runner import summarise_day

    rows = {}
    for day in dates:
        summary = summarise_day(db, day)
        rows[day.isoformat()] = (day_outcome(summary), summary["champion_version"], summary["versions_tried"],
                                 summary["deployed_version"])
    return rows


def _mongo_spans(db, dates: list[dt.date]) -> dict[str, tuple]:
    """Per date: the first and last timestamp the day's evaluation and deployment wrote in MongoDB."""
    spans = {}
    for day in dates:
        stamps = [doc["timestamp"] for name in ("performance_metrics", "evaluation_events", "deployment_events")
                  for doc in db[name].find({"logical_date": day.isoformat()}, {"timestamp": 1})]
        if stamps:
            spans[day.isoformat()] = (min(stamps), max(stamps))
    return spans


def _backfill_matches_the_runner(airflow_cli, tmp_path: Path, n_days: int) -> None:
    from pymongo import MongoClient

    from daily_mlops.orchestration.dags import PREVIOUS_DAY_TASK

    db = airflow_cli.db
    assert db["performance_metrics"].count_documents({}) == 0 and db["deployment_events"].count_documents({}) == 0, (
        "the shared Airflow's database is not as bootstrap left it: this test must run first among airflow_cli users")
    dates = _dates(n_days)
    started = time.monotonic()
    runner, runner_db_name, runner_log = _start_runner(airflow_cli, tmp_path, n_days)
    runner_ended: list[float] = []
    threading.Thread(target=lambda: (runner.wait(), runner_ended.append(time.monotonic() - started)),
                     daemon=True).start()
    try:
        backfill = _backfill(airflow_cli, n_days)
        assert backfill["max_active_runs"] == 10, backfill  # Airflow's default: every data run may start at once
        days = _wait_for_days(airflow_cli, dates, timeout=n_days * SECONDS_PER_DAY)
        airflow_seconds = time.monotonic() - started
        runner.wait(timeout=max(n_days * RUNNER_SECONDS_PER_DAY - (time.monotonic() - started), 1))
    finally:
        if runner.poll() is None:
            runner.kill()
    runner_seconds = runner_ended[0] if runner_ended else time.monotonic() - started
    print(f"{n_days}-date backfill through Airflow {airflow_seconds:.0f} s; bootstrap + daily-mlops run "
          f"--days {n_days} (in parallel) {runner_seconds:.0f} s")
    states = {day.isoformat(): {d: r["state"] for d, r in v["runs"].items()} for day, v in days.items()}
    assert runner.returncode == 0, runner_log.read_text(errors="replace")[-4000:]

    # the backfill created the data runs; their trigger tasks the downstream runs (run id day__<date>)
    for day, v in days.items():
        assert v["runs"]["data_pipeline_dag"]["run_type"] == "backfill", v["runs"]["data_pipeline_dag"]
        assert all(r["dag_run_id"] == f"day__{day.isoformat()}" for d, r in v["runs"].items()
                   if d != "data_pipeline_dag"), v["runs"]
        assert len(v["runs"]) == len(DAG_IDS), states

    with MongoClient(airflow_cli.mongo_uri, tz_aware=True) as client:
        runner_db = client[runner_db_name]
        through_airflow, through_runner = _outcomes(db, dates), _outcomes(runner_db, dates)
        spans = _mongo_spans(db, dates)
    for day in through_airflow:
        print(f"{day}: backfill {through_airflow[day]}  daily-mlops run {through_runner[day]}")
    assert through_airflow == through_runner, states

    # the window tests the order: a later day's champion is a version an earlier day deployed
    outcomes = list(through_airflow.values())
    deployed = {row[3] for row in outcomes if row[0] == "deployed"}
    assert any(row[1] in deployed and row[1] != outcomes[0][1] for row in outcomes[1:]), outcomes

    # date order across the three DAGs: no task of a day but its wait starts before the day before ended
    for earlier, later in zip(dates, dates[1:], strict=False):  # consecutive pairs: one fewer than dates
        ended = max(end for _, _, _, end in days[earlier]["tasks"])
        first = min(start for _, task, start, _ in days[later]["tasks"] if task != PREVIOUS_DAY_TASK)
        assert ended <= first, (earlier, later, ended, first)
    # ... while the backfill had started the later data runs before the earlier days ended
    data_starts = [dt.datetime.fromisoformat(days[day]["runs"]["data_pipeline_dag"]["start_date"]) for day in dates]
    last_ended = max(end for _, _, _, end in days[dates[-2]]["tasks"])
    assert data_starts[-1] < last_ended, (data_starts, last_ended)
    # ... and MongoDB saw each day's evaluation and deployment writes after the day before's
    ordered = [spans[day.isoformat()] for day in dates if day.isoformat() in spans]
    assert all(a[1] < b[0] for a, b in zip(ordered, ordered[1:], strict=False)), ordered  # consecutive pairs


def test_a_2_date_backfill_ends_each_day_as_daily_mlops_run_does(airflow_cli, tmp_path: Path) -> None:
    """A backfill of data_pipeline_dag over 2 logical dates (both data runs started at once) gives, per date, the
    outcome, champion, versions tried and deployed version of `daily-mlops run --days 2` on a fresh database, and
    the second day's tasks ran after all of the first day's."""
    _backfill_matches_the_runner(airflow_cli, tmp_path, 2)


@pytest.mark.backfill_week
def test_a_7_date_backfill_ends_each_day_as_daily_mlops_run_does(airflow_cli, tmp_path: Path) -> None:
    """The same over 7 logical dates (the issue's done-when), against `daily-mlops run --days 7`."""
    _backfill_matches_the_runner(airflow_cli, tmp_path, 7)
