"""The ``tasks`` section of ``python -m benchmarks`` (lighter task processes).

For every task of the three DAGs: the seconds a task process spends importing before it works, and
the seconds of its work, at ``MLOPS_DAILY_ROWS`` (10,000) rows, against a real MongoDB-wire server
(SecantusDB in its own process) and a home bootstrapped by ``daily-mlops bootstrap``. Each task is
started two ways, side by side (``benchmarks/task_probe.py``):

* **cold**: a new interpreter, started as an Airflow task process starts when nothing is preloaded:
  ``import airflow.sdk``, load the DAG file, call the task's callable with its XCom arguments and context;
* **forked from the worker** (production, CeleryExecutor): one stand-in worker process per run starts as
  ``airflow celery worker`` does, from the same ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` as
  ``docker-compose.yml``'s ``x-airflow-common`` (read from the file), i.e. the provider's Celery app built
  with ``daily_mlops.orchestration.celery_config.CELERY_CONFIG`` and ``app.loader.init_worker()``, which
  imports the config's ``imports``; it then forks each task from itself, as Airflow's supervisor does in a
  worker's pool process. Its one-time cost (seconds and RSS) is printed once.

Per task and way:

* **import s**: wall seconds of ``import airflow.sdk`` (0 in a fork: the worker has it) plus the DAG
  file's load (a fork's own start counts here too), plus every import made during the call (the task
  body's and the libraries' lazy imports: the outermost ``import`` statements, timed by ``task_probe.py``);
* **work s**: the call's wall seconds minus those imports;
* **beyond sdk**: import s minus the process's own ``import airflow.sdk``, i.e. what the DAG file and
  the task add (wall, and CPU seconds in brackets: CPU time is what the load of other processes
  inflates least). Goal at most :data:`GOAL` s, checked on the forked column (how production starts a
  task). The median bare ``import airflow.sdk`` (5 fresh interpreters) is printed for scale.

``BENCH_TASKS_KEEP=DIR`` also runs each cold task under ``python -X importtime`` and keeps its output in
DIR (which module costs what).

Each run is one day's chain, so each task works on real upstream results: the data DAG's four tasks,
then the evaluation DAG's (the champion judged at ``f1_threshold`` 0, so it passes and is deployed;
the recalibration and retraining attempt 1 judged at 1.5, so they run and fail; ``send_alert``), then
the deployment DAG's. Each run uses its own logical date (a rerun of a date would reuse its versions);
each way has its own server and home, on the same dates, so the forked tasks' XCom values are compared
with the cold ones (a forked task that trains or scores differently would show there).
Operators without a Python callable (sensors, triggers, the approval step) get the import column only:
their work needs the Airflow API server. Median of ``runs`` runs; the machine is shared, so the load
average is printed.

``python -m benchmarks tasks [--runs N] [--repo PATH]``: ``--repo`` adds another checkout's
``src`` and ``dags`` (e.g. ``main``) as a third, cold column, first.
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
from collections.abc import Callable
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
    if dag_file is None:
        args = ["baseline", *([extra] if extra else [])]
    else:
        args = [dag_file, task_id, json.dumps(request or {})]
    keep = os.environ.get("BENCH_TASKS_KEEP")  # a directory: keep each task's -X importtime output there
    done = subprocess.run([sys.executable, *(["-X", "importtime"] if keep else []), str(PROBE), *args],
                          capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))[-4000:]
        raise SystemExit(f"task {task_id or 'baseline'} failed (rc {done.returncode}):\n{tail}")
    out = json.loads(lines[-1][len("RESULT "):])
    if keep:
        Path(keep, f"{task_id or 'baseline'}.importtime").write_text(done.stderr)
    return _figures(out)


class _Worker:
    """``task_probe.py worker`` for one checkout: a stand-in Celery worker that forks every task from itself.

    ``ready`` holds its start figures (``task_probe._worker``: ``sdk``, ``preload``, ``preload_cpu``,
    ``rss_before``, ``rss_after``, ``imports``). Its stderr (the tasks' tracebacks) goes to ``log``.
    """

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self._proc = subprocess.Popen([sys.executable, str(PROBE), "worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self.ready = json.loads(self._answer("READY "))

    def _answer(self, *prefixes: str) -> str:
        for line in self._proc.stdout:
            for prefix in prefixes:
                if line.startswith(prefix):
                    return line[len(prefix):] if len(prefixes) == 1 else line
        raise SystemExit(f"the worker stopped (rc {self._proc.wait()}):\n{self.log.read_text()[-4000:]}")

    def run(self, dag_file: str, task_id: str, request: dict) -> dict:
        """One task forked from the worker: :func:`_figures` of the child's result."""
        self._proc.stdin.write(json.dumps([dag_file, task_id, request]) + "\n")
        self._proc.stdin.flush()
        line = self._answer("RESULT ", "FAILED ")
        if line.startswith("FAILED "):
            raise SystemExit(f"task {task_id} failed in a forked process ({line.strip()}):\n"
                             f"{self.log.read_text()[-4000:]}")
        out = json.loads(line[len("RESULT "):])
        out["parse"] += out["fork"]  # the fork is part of the task process's start
        return _figures(out)

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._stderr.close()


def _figures(out: dict) -> dict:
    """``out`` (a probe's result) with ``beyond`` / ``beyond_cpu`` (the DAG file's load plus the call's imports),
    ``import`` / ``import_cpu`` (``sdk`` plus those) and ``work`` (the call's wall s minus its imports)."""
    out["beyond"] = out["parse"] + out["call_imports"]
    out["beyond_cpu"] = out["parse_cpu"] + out["call_imports_cpu"]
    out["import"] = out["sdk"] + out["beyond"]
    out["import_cpu"] = out["sdk_cpu"] + out["beyond_cpu"]
    out["work"] = max(out["call"] - out["call_imports"], 0.0)
    return out


def _day(run: Callable[[str, str, dict], dict], dags: Path, day: str,
         times: dict[str, list[dict[str, Any]]]) -> None:
    """One logical date's chain of tasks, each run by ``run(dag_file, task_id, request)`` (a fresh process or
    a fork); append each task's figures and XCom value to ``times[task_id]``."""
    run_id = f"day__{day}"
    xcom: dict[str, Any] = {}

    def task(dag_file: str, task_id: str, *args: Any, **params: Any) -> Any:
        request = {"logical_date": f"{day}T00:00:00+00:00", "run_id": run_id, "args": list(args),
                   "params": {"drift": "none", "min_improvement": 0.0, "max_retrain_attempts": 3,
                              "require_approval": False, **params}, "xcom": xcom}
        out = run(str(dags / dag_file), task_id, request)
        times.setdefault(task_id, []).append({k: out[k] for k in ("import", "import_cpu", "beyond", "beyond_cpu")}
                                             | {"work": out["work"] if out["ran"] else None, "value": out["value"]})
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


def celery_config_option(repo: Path) -> str:
    """``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` of ``repo``'s ``docker-compose.yml`` (``x-airflow-common``), as the
    workers get it: the bench's worker starts from the same setting.

    Raises ``SystemExit`` when the compose file does not set it.
    """
    from daily_mlops.orchestration.stack import compose_environment

    value = compose_environment(repo / "docker-compose.yml").get("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS")
    if not value:
        raise SystemExit(f"{repo / 'docker-compose.yml'} sets no AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS")
    return value


def measure(variants: list[tuple[Path, str]], runs: int) -> list[dict[str, Any]]:
    """Per variant ``(repo, mode)``, mode ``cold`` (each task in a fresh interpreter, :func:`probe`) or ``fork``
    (each task forked from a stand-in Celery worker, :class:`_Worker`): medians of the bare ``import airflow.sdk``
    (``sdk``, ``sdk_cpu``; 5 fresh interpreters), per task id of the task's figures (``tasks``) and its XCom
    values per run (``values``); a ``fork`` variant also has ``worker`` (its start figures). Also ``torch`` /
    ``torch_cpu``: a bare ``import torch`` after ``import airflow.sdk``.

    Each variant gets its own server and bootstrapped home and runs the same logical dates; the variants'
    runs alternate, so all see the same load.
    """
    with contextlib.ExitStack() as stack:
        runners: list[Callable[[str, str, dict], dict]] = []
        envs: list[dict[str, str]] = []
        workers: dict[int, _Worker] = {}
        for k, (repo, mode) in enumerate(variants):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tasks-")))
            uri = stack.enter_context(_server(tmp / "mongo", _env(repo, tmp, None)))
            env = _env(repo, tmp, uri)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", "from daily_mlops.cli import app; app()", "bootstrap"],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"bootstrap failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
            print(f"  [{repo}, {mode}] bootstrap {time.perf_counter() - start:.0f} s", flush=True)
            envs.append(env)
            if mode == "fork":
                env = {**env, "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": celery_config_option(repo)}
                workers[k] = _Worker(env, tmp / "worker.log")
                stack.callback(workers[k].close)
                runners.append(workers[k].run)
            else:
                runners.append(lambda dag_file, task_id, request, env=env: probe(env, dag_file, task_id, request))
        baselines: list[list[dict]] = [[] for _ in variants]
        torch_alone: list[dict] = []
        times: list[dict[str, list[dict[str, Any]]]] = [{} for _ in variants]
        for _ in range(max(runs, 5)):
            for k, env in enumerate(envs):
                baselines[k].append(probe(env, None))
            torch_alone.append(probe(envs[-1], None, extra="torch"))
        for r in range(runs):
            for k, ((repo, _mode), run) in enumerate(zip(variants, runners, strict=True)):
                _day(run, repo / "dags", f"2026-11-{r + 1:02d}", times[k])
            print(f"  run {r + 1}/{runs} done (load average {os.getloadavg()[0]:.1f})", flush=True)

    def median(samples: list[dict], key: str) -> float | None:
        values = [s[key] for s in samples if s[key] is not None]
        return statistics.median(values) if values else None

    torch_figures = {"torch": median(torch_alone, "extra"), "torch_cpu": median(torch_alone, "extra_cpu")}
    return [{"sdk": median(base, "sdk"), "sdk_cpu": median(base, "sdk_cpu"), **torch_figures,
             "tasks": {task_id: {key: median(samples, key) for key in samples[0] if key != "value"}
                       for task_id, samples in by_task.items()},
             "values": {task_id: [s["value"] for s in samples] for task_id, samples in by_task.items()},
             **({"worker": workers[k].ready} if k in workers else {})}
            for k, (base, by_task) in enumerate(zip(baselines, times, strict=True))]


def _differing_keys(a: Any, b: Any) -> str:
    """The keys (dotted, for nested dicts; ``[i]`` for list items) at which two XCom values differ, or ``value``."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [f"{k}.{sub}" if sub != "value" else str(k)
                for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)
                for sub in [_differing_keys(a.get(k), b.get(k))]]
        return ", ".join(keys)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return ", ".join(f"[{i}]" + ("" if sub == "value" else f".{sub}") for i, (x, y) in pairs
                         if x != y for sub in [_differing_keys(x, y)])
    return "value"


def print_tasks(argv: list[str]) -> None:
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    here = Path(__file__).resolve().parents[1]
    variants = [(Path(argv[argv.index("--repo") + 1]).resolve(), "cold")] if "--repo" in argv else []
    variants += [(here, "cold"), (here, "fork")]
    print(f"task processes: import and work seconds per task at 10,000 rows, median of {runs} runs; each task in a "
          f"fresh\ninterpreter (cold) and forked from a worker started as `airflow celery worker` starts (production)"
          f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
    results = measure(variants, runs)
    worker = results[-1]["worker"]
    print(f"\n  worker start, once per Celery worker: `app.loader.init_worker()` with "
          f"{celery_config_option(here)}\n  ({len(worker['imports'])} modules in Celery's `imports`): "
          f"{worker['preload']:.2f} s wall, {worker['preload_cpu']:.2f} s CPU, RSS {worker['rss_before']:.0f} -> "
          f"{worker['rss_after']:.0f} MB (+{worker['rss_after'] - worker['rss_before']:.0f} MB, shared copy-on-write "
          "by its pool processes and their task processes)")
    print(f"  bare `import torch` after `import airflow.sdk`: {results[-1]['torch']:.2f} s wall, "
          f"{results[-1]['torch_cpu']:.2f} s CPU (median): "
          "what a cold task that scores or trains the network cannot avoid")
    for (repo, mode), figures in zip(variants, results, strict=True):
        print(f"  [{repo}, {mode}] bare `import airflow.sdk` in a fresh interpreter: {figures['sdk']:.2f} s wall, "
              f"{figures['sdk_cpu']:.2f} s CPU (median of 5)")
    print(f"\n  beyond sdk: the seconds a task process imports beyond `import airflow.sdk` (wall, and CPU in brackets);"
          f"\n  goal: at most {GOAL:.1f} s in production (the forked column)")
    groups = [f"{'cold' if mode == 'cold' else 'forked from the worker'}" + (f" ({repo.name})" if len(variants) > 2 and
              mode == "cold" else "") for repo, mode in variants]
    print("  " + " " * 36 + "".join(f" {g[:31]:>31} |" for g in groups))
    print(f"  {'task':<36}" + f" {'import s':>8} {'beyond sdk':>13} {'work s':>6} |" * len(variants))
    tasks = results[-1]["tasks"]
    for task_id, f in tasks.items():
        cells = []
        for figures in results:
            g = figures["tasks"][task_id]
            work = f"{g['work']:6.2f}" if g["work"] is not None else f"{'n/a':>6}"
            cells.append(f" {g['import']:8.2f} {g['beyond']:5.2f} ({g['beyond_cpu']:4.2f}) {work} |")
        verdict = "ok" if f["beyond"] <= GOAL else "OVER GOAL"
        print(f"  {task_id:<36}" + "".join(cells) + f"  {verdict}")
    cold, fork = results[-2]["values"], results[-1]["values"]
    differ = {task_id: _differing_keys(cold.get(task_id), fork[task_id]) for task_id in fork
              if cold.get(task_id) != fork[task_id]}
    print(f"\n  XCom values of the forked tasks equal to the cold ones (same dates, separate homes): "
          f"{len(fork) - len(differ)} of {len(fork)} tasks" +
          (f"; differ (keys): {'; '.join(f'{t} ({k})' for t, k in differ.items())}" if differ else ""))
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
