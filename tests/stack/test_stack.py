"""The production topology on this host: one REST trigger runs a day on two Celery workers.

Uses the session's native stack (``stack`` in conftest: CeleryExecutor, Postgres,
Redis, two workers with separate MLOPS_HOMEs). About 2 minutes after startup
(the sensors poke every 30 s).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from daily_mlops.storage.deployment_dir import deployed_version
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAY = dt.date(2026, 11, 1)
DAY_TIMEOUT = 8 * 60


def test_one_rest_trigger_runs_a_day_on_both_workers(stack) -> None:
    """ONE POST on data_pipeline_dag (JWT from /auth/token) ends with the three DAG runs successful; tasks ran on
    worker-a and on worker-b; the deployment directory serves the registry's deployed version; one
    deployment event for the day; doctor finds nothing."""
    started = time.monotonic()
    run_id = stack.trigger(DAY)
    states = stack.wait_for_day(run_id, timeout=DAY_TIMEOUT)
    took = time.monotonic() - started
    tasks = {d: stack.task_instances(d, run_id) for d in states}
    hosts: dict[str, list[str]] = {}
    for dag_id, tis in tasks.items():
        for task_id, ti in tis.items():
            if ti["state"] == "success":
                hosts.setdefault(ti["hostname"], []).append(f"{dag_id}.{task_id}")
    print(f"day {DAY} on the native stack: {took:.0f} s, {states}; tasks per worker: "
          f"{ {h: len(t) for h, t in hosts.items()} }")
    assert states == {d: "success" for d in states}, {d: {t: ti["state"] for t, ti in tis.items()}
                                                      for d, tis in tasks.items()}
    assert {"worker-a", "worker-b"} <= set(hosts), hosts
    assert set(hosts) <= {"worker-a", "worker-b"}, hosts
    assert tasks["model_deployment_pipeline"]["deploy_model"]["state"] == "success"

    db = stack.db
    deployed = [d["model_version"] for d in ModelRegistry(db).list(MODEL_NAME) if d["status"] == "deployed"]
    assert deployed_version(stack.running.deployment_dir) == deployed[-1], deployed
    assert len(deployed) == 1, deployed
    events = list(db["deployment_events"].find({"logical_date": DAY.isoformat()}, {"_id": 0}))
    assert len(events) == 1, events
    assert events[0]["model_version"] == deployed[-1]
    assert db["processing_metadata"].find_one({"logical_date": DAY.isoformat()})["n_rows"] == 2000
    doctor = stack.doctor()
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-2000:]
