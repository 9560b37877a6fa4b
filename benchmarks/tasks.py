"""The ``tasks`` section of ``scripts/benchmark.py`` (lighter task processes).

For every task of the three DAGs: the seconds a fresh task process spends importing before it works, and
the seconds of its work, at ``MLOPS_DAILY_ROWS`` (10,000) rows, against a real MongoDB-wire server
(SecantusDB in its own process) and a home bootstrapped by ``daily-mlops bootstrap``.

Each task runs in a new interpreter (``scripts/task_probe.py``), started
as an Airflow task process starts: ``import airflow.sdk``, load the DAG file, call the task's callable
with its XCom arguments and context. Per task:

* **import s**: wall seconds of ``import airflow.sdk`` plus the DAG file's load, plus every import made
  during the call (the task body's and the libraries' lazy imports: the outermost ``import`` statements,
  timed by ``task_probe.py``);
* **work s**: the call's wall seconds minus those imports;
* **beyond sdk**: import s minus the process's own ``import airflow.sdk`` (its first step, a bare
  import in a fresh interpreter), i.e. what the DAG file and the task add. Subtracting within one
  process keeps the load of this shared machine, which changes from process to process, out of the
  difference; the median bare ``import airflow.sdk`` (5 fresh interpreters) is printed for scale.
  Goal at most :data:`GOAL` s (the goal for every task). The same in CPU seconds (``time.process_time``) is printed
  next to it: CPU time is what the load of other processes inflates least.

``BENCH_TASKS_KEEP=DIR`` also runs each task under ``python -X importtime`` and keeps its output in DIR
(which module costs what).

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

#: Seconds a task's imports may add to a bare ``import airflow.sdk`` (the goal).
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


def probe(env: dict[str, str], dag_file: str | None, task_id: str = "", request: dict | None = None,
          extra: str | None = None) -> dict:
    """Run one task (or, without ``dag_file``, the bare ``import airflow.sdk``, then ``extra``) in a fresh interpreter.

    Adds ``import`` / ``import_cpu`` (everything imported before and during the call, wall / CPU s),
    ``work`` (the call's wall s minus its imports) and ``beyond`` / ``beyond_cpu`` (the imports after the
    process's own ``import airflow.sdk``: the DAG file's and the task's).
    """
    args = ["baseline", *([extra] if extra else [])] if dag_file is None else [dag_file, task_id, json.dumps(request or {})]
    keep = os.environ.get("BENCH_TASKS_KEEP")  # a directory: keep each task's -X importtime output there
    done = subprocess.run([sys.executable, *(["-X", "importtime"] if keep else []), str(PROBE), *args],
                          capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(l for l in done.stderr.splitlines() if not l.startswith("import time:"))[-4000:]
        raise SystemExit(f"task {task_id or 'baseline'} failed (rc {done.returncode}):\n{tail}")
    out = json.loads(lines[-1][len("RESULT "):])
    if keep:
        Path(keep, f"{task_id or 'baseline'}.importtime").write_text(done.stderr)
    out["beyond"] = out["parse"] + out["call_imports"]
    out["beyond_cpu"] = out["parse_cpu"] + out["call_imports_cpu"]
    out["import"] = out["sdk"] + out["beyond"]
    out["import_cpu"] = out["sdk_cpu"] + out["beyond_cpu"]
    out["work"] = max(out["call"] - out["call_imports"], 0.0)
    return out


def _day(env: dict[str, str], dags: Path, day: str, times: dict[str, list[dict[str, float | None]]]) -> None:
    """One logical date's chain of tasks, each in a fresh process; append each task's figures (:func:`probe`)."""
    run_id = f"day__{day}"
    xcom: dict[str, Any] = {}

    def task(dag_file: str, task_id: str, *args: Any, **params: Any) -> Any:
        request = {"logical_date": f"{day}T00:00:00+00:00", "run_id": run_id, "args": list(args),
                   "params": {"drift": "none", "min_improvement": 0.0, "max_retrain_attempts": 3,
                              "require_approval": False, **params}, "xcom": xcom}
        out = probe(env, str(dags / dag_file), task_id, request)
        times.setdefault(task_id, []).append({k: out[k] for k in ("import", "import_cpu", "beyond", "beyond_cpu")}
                                             | {"work": out["work"] if out["ran"] else None})
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


def measure(repos: list[Path], runs: int) -> list[dict[str, Any]]:
    """Per repo: medians of the bare ``import airflow.sdk`` (``sdk``, ``sdk_cpu``) and, per task id, of
    :func:`probe`'s figures (``tasks``); also ``torch`` / ``torch_cpu``: a bare ``import torch`` after it.

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
        baselines: list[list[dict]] = [[] for _ in repos]
        torch_alone: list[dict] = []
        times: list[dict[str, list[dict[str, float | None]]]] = [{} for _ in repos]
        for _ in range(max(runs, 5)):
            for k, env in enumerate(envs):
                baselines[k].append(probe(env, None))
            torch_alone.append(probe(envs[-1], None, extra="torch"))
        for r in range(runs):
            for k, (repo, env) in enumerate(zip(repos, envs)):
                _day(env, repo / "dags", f"2026-11-{r + 1:02d}", times[k])
            print(f"  run {r + 1}/{runs} done (load average {os.getloadavg()[0]:.1f})", flush=True)

    def median(samples: list[dict], key: str) -> float | None:
        values = [s[key] for s in samples if s[key] is not None]
        return statistics.median(values) if values else None

    torch_figures = {"torch": median(torch_alone, "extra"), "torch_cpu": median(torch_alone, "extra_cpu")}
    return [{"sdk": median(base, "sdk"), "sdk_cpu": median(base, "sdk_cpu"), **torch_figures,
             "tasks": {task_id: {key: median(samples, key) for key in samples[0]}
                       for task_id, samples in by_task.items()}}
            for base, by_task in zip(baselines, times)]


def print_tasks(argv: list[str]) -> None:
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    repos = [Path(argv[argv.index("--repo") + 1]).resolve()] if "--repo" in argv else []
    repos.append(Path(__file__).resolve().parents[1])
    print(f"task processes: import and work seconds per task at 10,000 rows, median of {runs} runs, each task in a "
          f"fresh\ninterpreter (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
    results = list(zip(repos, measure(repos, runs)))
    first = results[-1][1]
    print(f"\n  bare `import torch` after `import airflow.sdk`: {first['torch']:.2f} s wall, {first['torch_cpu']:.2f} s "
          "CPU (median): what a task that scores or trains the network cannot avoid")
    for repo, figures in results:
        print(f"\n  {repo}: bare `import airflow.sdk` {figures['sdk']:.2f} s wall, {figures['sdk_cpu']:.2f} s CPU "
              f"(median of 5); goal: a task imports at most {GOAL:.1f} s beyond it")
        print(f"  {'task':<36} {'import s':>8} {'work s':>7} {'beyond sdk':>11} {'beyond, CPU':>12}")
        for task_id, f in figures["tasks"].items():
            work = f"{f['work']:7.2f}" if f["work"] is not None else f"{'n/a':>7}"
            verdict = "ok" if f["beyond"] <= GOAL else ("ok in CPU s" if f["beyond_cpu"] <= GOAL else "OVER GOAL")
            print(f"  {task_id:<36} {f['import']:8.2f} {work} {f['beyond']:9.2f} s {f['beyond_cpu']:10.2f} s   {verdict}")
    if len(results) == 2:
        (_, before), (_, after) = results
        print("\n  before -> after: import s beyond sdk, wall (CPU)")
        for task_id, f in after["tasks"].items():
            b = before["tasks"][task_id]
            print(f"  {task_id:<36} {b['beyond']:6.2f} ({b['beyond_cpu']:.2f}) -> {f['beyond']:5.2f} ({f['beyond_cpu']:.2f}) s")
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
