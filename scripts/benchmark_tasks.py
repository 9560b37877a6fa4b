"""The ``tasks`` section of ``scripts/benchmark.py`` (issue 19, item 7: lighter task processes).

For every task of the three DAGs: the seconds a fresh task process spends importing before it works, and
the seconds of its work, at ``MLOPS_DAILY_ROWS`` (10,000) rows, against a real MongoDB-wire server
(SecantusDB in its own process) and a home bootstrapped by ``daily-mlops bootstrap``.

Each task runs in a new interpreter (``scripts/task_probe.py`` under ``python -X importtime``), started
as an Airflow task process starts: ``import airflow.sdk``, load the DAG file, call the task's callable
with its XCom arguments and context. Per task:

* **import s**: wall seconds of ``import airflow.sdk`` plus the DAG file's load, plus every import made
  during the call (the task body's and the library's lazy imports; the top-level ``cumulative`` times of
  ``-X importtime`` between the call's phase markers);
* **work s**: the call's wall seconds minus those imports;
* **beyond sdk**: import s minus the process's own ``import airflow.sdk`` (its first step, a bare
  import in a fresh interpreter), i.e. what the DAG file and the task add. Subtracting within one
  process keeps the load of this shared machine, which changes from process to process, out of the
  difference; the median bare ``import airflow.sdk`` (5 fresh interpreters) is printed for scale.
  Goal at most :data:`GOAL` s (issue 19).

Each run is one day's chain, so each task works on real upstream results: the data DAG's four tasks,
then the evaluation DAG's (the champion judged at ``f1_threshold`` 0, so it passes and is deployed;
the recalibration and retraining attempt 1 judged at 1.5, so they run and fail; ``send_alert``), then
the deployment DAG's. Each run uses its own logical date (a rerun of a date would reuse its versions).
Operators without a Python callable (sensors, triggers, the approval step) get the import column only:
their work needs the Airflow API server. Median of ``runs`` runs; the machine is shared, so the load
average is printed.

``python scripts/benchmark.py tasks [--runs N] [--repo PATH]``: ``--repo`` measures another checkout's
``src`` and ``dags`` (e.g. ``main``, for before/after figures) with this script.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Seconds a task's imports may add to a bare ``import airflow.sdk`` (issue 19, item 7).
GOAL = 1.5
PROBE = Path(__file__).resolve().parent / "task_probe.py"
DATA, EVALUATION, DEPLOYMENT = "data_pipeline_dag.py", "model_evaluation_pipeline.py", "model_deployment_pipeline.py"
#: Tasks with no Python callable: (DAG file, task id). Only their import (DAG file load) is measured.
OPERATORS = [(DATA, "trigger_evaluation"), (DATA, "trigger_deployment"), (EVALUATION, "wait_for_data"),
             (DEPLOYMENT, "wait_for_evaluation"), (DEPLOYMENT, "approve_deployment")]
_SERVER = """
import sys
from pathlib import Path
from daily_mlops.storage.mongo import embedded_server
with embedded_server(Path(sys.argv[1])) as uri:
    print(uri, flush=True)
    sys.stdin.read()
"""


def _env(repo: Path, tmp: Path, uri: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env.update({"PYTHONPATH": str(repo / "src"), "PYTHONWARNINGS": "ignore", "AIRFLOW_HOME": str(tmp / "airflow"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "MLOPS_HOME": str(tmp / "home"),
                "MLOPS_MONGO_DB": "bench_tasks", "MLOPS_TASK_RETRIES": "0"})
    if uri:
        from daily_mlops.orchestration.environment import airflow_conn_uri

        env.update({"MLOPS_MONGO_URI": uri, "AIRFLOW_CONN_MONGO_DEFAULT": airflow_conn_uri(uri)})
    return env


@contextlib.contextmanager
def _server(path: Path, env: dict[str, str]):
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)


def import_seconds_in(stderr: str, phase: str) -> float:
    """Seconds of the top-level imports ``-X importtime`` reports between ``@@phase <phase>`` and the next marker."""
    total, inside = 0, False
    for line in stderr.splitlines():
        if line.startswith("@@phase "):
            inside = line.split()[1] == phase
        elif inside and line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line[len("import time:"):].split("|", 2)
            if not name[1:].startswith(" "):  # nested imports are indented under their importer
                total += int(cumulative)
    return total / 1e6


def probe(env: dict[str, str], dag_file: str | None, task_id: str = "", request: dict | None = None,
          extra: str | None = None) -> dict:
    """Run one task (or, without ``dag_file``, the bare ``import airflow.sdk``, then ``extra``) in a fresh interpreter."""
    args = ["baseline", *([extra] if extra else [])] if dag_file is None else [dag_file, task_id, json.dumps(request or {})]
    done = subprocess.run([sys.executable, "-X", "importtime", str(PROBE), *args], capture_output=True, text=True,
                          env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(l for l in done.stderr.splitlines() if not l.startswith("import time:"))[-4000:]
        raise SystemExit(f"task {task_id or 'baseline'} failed (rc {done.returncode}):\n{tail}")
    out = json.loads(lines[-1][len("RESULT "):])
    if os.environ.get("BENCH_TASKS_KEEP"):  # a directory: keep each task's -X importtime output there
        Path(os.environ["BENCH_TASKS_KEEP"], f"{task_id or 'baseline'}.importtime").write_text(done.stderr)
    call_imports = import_seconds_in(done.stderr, "call")
    out["import"] = out["sdk"] + out["parse"] + call_imports
    out["work"] = max(out["call"] - call_imports, 0.0)
    return out


def _day(env: dict[str, str], dags: Path, day: str, times: dict[str, list[tuple[float, float | None, float]]]) -> None:
    """One logical date's chain of tasks, each in a fresh process; append (import s, work s, beyond sdk s) per task."""
    run_id = f"day__{day}"
    xcom: dict[str, Any] = {}

    def task(dag_file: str, task_id: str, *args: Any, **params: Any) -> Any:
        request = {"logical_date": f"{day}T00:00:00+00:00", "run_id": run_id, "args": list(args),
                   "params": {"drift": "none", "min_improvement": 0.0, "max_retrain_attempts": 3,
                              "require_approval": False, **params}, "xcom": xcom}
        out = probe(env, str(dags / dag_file), task_id, request)
        times.setdefault(task_id, []).append((out["import"], out["work"] if out["ran"] else None,
                                              out["import"] - out["sdk"]))
        xcom[task_id] = out["value"]
        return out["value"]

    batch = task(DATA, "generate_data")
    processed = task(DATA, "preprocess_data", batch)
    checked = task(DATA, "check_data_quality", processed)
    task(DATA, "store_processing_metadata", checked)
    model = task(EVALUATION, "load_latest_model")
    result = task(EVALUATION, "evaluate_model", model, f1_threshold=0.0)
    task(EVALUATION, "check_model_performance", result, f1_threshold=0.0)
    recalibrated = task(EVALUATION, "recalibration.recalibrate_champion", result, f1_threshold=1.5)
    task(EVALUATION, "attempt_1.retrain_model", recalibrated, f1_threshold=1.5)
    task(EVALUATION, "send_alert", f1_threshold=1.5)
    task(EVALUATION, "send_evaluation_results", f1_threshold=0.0)
    ready = task(DEPLOYMENT, "wait_for_model_ready")
    task(DEPLOYMENT, "validate_infra", ready)
    deployed = task(DEPLOYMENT, "deploy_model", ready)
    task(DEPLOYMENT, "notify_deployment_complete", deployed)
    for dag_file, task_id in OPERATORS:
        task(dag_file, task_id)


def measure(repos: list[Path], runs: int) -> list[tuple[float, dict[str, tuple[float, float | None, float]]]]:
    """Per repo: (median bare ``import airflow.sdk`` s, {task id: medians of (import s, work s or None, beyond sdk s)}).

    Each repo gets its own server and bootstrapped home; the repos' runs alternate, so both see the same load.
    """
    with contextlib.ExitStack() as stack:
        envs = []
        for repo in repos:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tasks-")))
            uri = stack.enter_context(_server(tmp / "mongo", _env(repo, tmp, None)))
            env = _env(repo, tmp, uri)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", "from daily_mlops.cli import app; app()", "bootstrap"],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"bootstrap failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
            print(f"  [{repo}] bootstrap {time.perf_counter() - start:.0f} s", flush=True)
            envs.append(env)
        baselines: list[list[float]] = [[] for _ in repos]
        torch_alone: list[float] = []
        times: list[dict[str, list[tuple[float, float | None, float]]]] = [{} for _ in repos]
        for _ in range(max(runs, 5)):
            for k, env in enumerate(envs):
                baselines[k].append(probe(env, None)["sdk"])
            torch_alone.append(probe(envs[-1], None, extra="torch")["extra"])
        print(f"  bare `import torch` after `import airflow.sdk`: {statistics.median(torch_alone):.2f} s (median of "
              f"{len(torch_alone)}): what a task that trains or scores the network cannot avoid", flush=True)
        for r in range(runs):
            for k, (repo, env) in enumerate(zip(repos, envs)):
                _day(env, repo / "dags", f"2026-11-{r + 1:02d}", times[k])
            print(f"  run {r + 1}/{runs} done (load average {os.getloadavg()[0]:.1f})", flush=True)
    out = []
    for baseline, samples_by_task in zip(baselines, times):
        medians = {}
        for task_id, samples in samples_by_task.items():
            works = [w for _, w, _ in samples if w is not None]
            medians[task_id] = (statistics.median(i for i, _, _ in samples), statistics.median(works) if works else None,
                                statistics.median(b for _, _, b in samples))
        out.append((statistics.median(baseline), medians))
    return out


def print_tasks(argv: list[str]) -> None:
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    repos = [Path(argv[argv.index("--repo") + 1]).resolve()] if "--repo" in argv else []
    repos.append(Path(__file__).resolve().parents[1])
    print(f"task processes: import and work seconds per task at 10,000 rows, median of {runs} runs, each task in a "
          f"fresh\ninterpreter under -X importtime (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    results = [(repo, *measured) for repo, measured in zip(repos, measure(repos, runs))]
    for repo, baseline, medians in results:
        print(f"\n  {repo}: bare `import airflow.sdk` {baseline:.2f} s (median); goal: import at most "
              f"{GOAL:.1f} s beyond it")
        print(f"  {'task':<38} {'import s':>9} {'work s':>8} {'beyond sdk':>11}")
        for task_id, (imports, work, beyond) in medians.items():
            verdict = "ok" if beyond <= GOAL else "OVER GOAL"
            shown = f"{work:8.2f}" if work is not None else f"{'n/a':>8}"
            print(f"  {task_id:<38} {imports:9.2f} {shown} {beyond:9.2f} s   {verdict}")
    if len(results) == 2:
        (_, b0, before), (_, b1, after) = results
        print(f"\n  before -> after, import s beyond sdk (bare sdk {b0:.2f} / {b1:.2f} s)")
        for task_id in after:
            print(f"  {task_id:<38} {before[task_id][2]:6.2f} -> {after[task_id][2]:5.2f} s")
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
