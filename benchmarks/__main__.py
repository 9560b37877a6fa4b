"""Print speed and memory figures of the loop on this machine, each next to its goal.

Speed targets live here, never in timed tests. Run with ``make bench``, or from the repository root
``python -m benchmarks [parse|steps|storage|training|loop|wide|gate|promotion|tasks|all]`` (``make bench
BENCH_ARGS=tasks``; ``storage --profile ROWS`` prints cProfile's top entries of one pipeline run).

* ``parse``: what each DAG file adds to a parse, measured in a fresh
  interpreter against the baseline Airflow's DAG processor already pays
  (``import airflow.sdk`` and the standard provider's ``ExternalTaskSensor``).
  Before timing, the baseline's objects are moved out of the garbage
  collector's reach (``gc.collect(); gc.freeze()``), as they are in a
  long-running DAG processor, so a full collection of Airflow's heap is not
  charged to the DAG file. Median of 5 runs per file; goal at most 0.1 s.
* ``steps``: seconds per heavy step (wall clock, ``time.perf_counter``) and the
  peak resident memory of the process (``resource.getrusage``, MiB).
* ``storage``: a day's data path at 10k, 100k and 1M rows (``generate_data``
  -> ``preprocess_data`` -> ``store_processing_metadata`` -> ``load_split`` of
  every split), each size in a fresh process, against the embedded SecantusDB
  server running in its own process: wall clock, our process's CPU
  (``resource.getrusage``) and the server's (``psutil``), per-row cost and
  its spread across sizes, peak resident memory. Then the storage stages
  alone (store raw, store processed, load back) against the original
  one-document-per-row pattern (``baselines/storage.py``) on the
  same server. Details in ``benchmarks/storage.py``.
* ``training``: training throughput (rows/s, forward + backward + optimiser step)
  at the project's settings against the original model at its own, measured
  alternately in one process; the fraction of the GEMM ceiling; the bootstrap
  model's ROC-AUC on held-out real rows (``benchmarks/training.py``).
* ``loop``: the task bodies of one day's worst case at 10,000 rows (champion
  and 3 retraining attempts, then deploy), seconds per task and the total,
  side by side with the original code's equivalent day in the same run
  (``benchmarks/loop.py``).
* ``wide``: bootstrap and one retraining attempt on the 99-column wide table
  (``scripts/make_wide_table.py``), for both architectures (``MLOPS_ARCHITECTURE``).
* ``gate``: what the data-quality gate task (``check_data_quality``) adds to a day at 10,000 rows
  on the bundled data, against the embedded server: the whole task (read the raw Parquet file,
  the synthesizer's reference rows and the preprocessor's categories; SDMetrics diagnostic; unseen
  and null shares; drift figures; the fidelity report (TSTR and SDMetrics QualityReport on 5,000
  rows); the ``processing_metadata`` write), median of 3 runs, for a ``none`` and a ``broken`` day;
  goal at most 5 s.
* ``tasks``: every task of the three DAGs started two ways: in a fresh interpreter (cold: ``import
  airflow.sdk``, the DAG file, the task's callable) and forked from a stand-in Celery worker that
  started with the workers' config (production: ``orchestration/celery_config.py``'s preloaded
  modules); per task its import seconds and its work seconds at 10,000 rows against the embedded
  server and a bootstrapped home, and the imports beyond a bare ``import airflow.sdk`` (goal at most
  1.5 s, for the forked column); the worker's one-time preload cost; median of 3 runs (``--runs N``);
  ``--repo PATH`` adds another checkout's cold figures first (``benchmarks/tasks.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from daily_mlops.ml.metrics import classification_metrics
from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
from daily_mlops.ml.splits import split_indices
from daily_mlops.ml.synthesis import Synthesizer
from daily_mlops.ml.training import finetune, predict_proba, pretrain_contrastive, seed_everything
from daily_mlops.settings import load_settings
from daily_mlops.storage.artifacts import get_artifact, put_artifact
from daily_mlops.storage.mongo import connect, embedded_server

ROWS: list[tuple[str, float]] = []


@contextmanager
def timed(label: str):
    start = time.perf_counter()
    yield
    ROWS.append((label, time.perf_counter() - start))


REPO = Path(__file__).resolve().parents[1]
#: Goal for what one DAG file may add to a parse (seconds), from the layout issue.
PARSE_GOAL = 0.1
_PARSE_PROBE = """
import gc, json, runpy, sys, time
import airflow.sdk
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
if sys.argv[2] == "decorators":
    from airflow.sdk import dag, task  # the SDK's own decorators, which every TaskFlow DAG file resolves
gc.collect(); gc.freeze()
start = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="dag_file")
print(json.dumps(time.perf_counter() - start))
"""


def parse_times(baseline: str, runs: int = 5) -> list[tuple[str, float]]:
    """Median seconds each DAG file adds to a parse beyond ``baseline``, a fresh interpreter per run.

    ``baseline`` is ``"sdk"`` (``import airflow.sdk`` and ``ExternalTaskSensor``) or
    ``"decorators"`` (that, plus resolving ``airflow.sdk.dag`` / ``task``).
    """
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONWARNINGS": "ignore"}
    out = []
    for path in sorted((REPO / "dags").glob("*.py")):
        samples = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", _PARSE_PROBE, str(path), baseline], env=env,
                                  capture_output=True, text=True, check=True)
            samples.append(float(json.loads(done.stdout.strip().splitlines()[-1])))
        out.append((path.name, statistics.median(samples)))
    return out


def print_parse_times() -> None:
    print("DAG file parse time, median of 5 runs in fresh interpreters (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    sdk, decorators = parse_times("sdk"), parse_times("decorators")
    print(f"  {'file':<34} {'beyond sdk+sensor':>18} {'beyond sdk+sensor+@dag/@task':>30}   goal <= {PARSE_GOAL:.1f} s")
    for (name, a), (_, b) in zip(sdk, decorators, strict=True):  # the same sorted dags/*.py in both
        verdict = "ok" if a <= PARSE_GOAL else ("ok beyond @dag/@task" if b <= PARSE_GOAL else "OVER GOAL")
        print(f"  {name:<34} {a:16.3f} s {b:28.3f} s   {verdict}")


SECTIONS = ("parse", "steps", "storage", "training", "loop", "wide", "gate", "promotion", "tasks")
#: Seconds the data-quality gate may add to a day at 10,000 rows (the goal set when the gate was added).
GATE_GOAL = 5.0


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("-h", "--help") or {"-h", "--help"} & set(sys.argv[2:]):
        print(__doc__)
        return
    if which not in (*SECTIONS, "all"):
        raise SystemExit(f"usage: python -m benchmarks [{'|'.join(SECTIONS)}|all] (storage [--profile ROWS])")
    if which in ("parse", "all"):
        print_parse_times()
    if which in ("steps", "all"):
        steps()
    if which in ("storage", "all"):
        from benchmarks.storage import storage

        storage(sys.argv[2:])
    if which in ("training", "all"):
        from benchmarks.training import print_training

        print_training()
    if which in ("loop", "all"):
        from benchmarks.loop import print_loop

        print_loop()
    if which in ("wide", "all"):
        from benchmarks.training import print_wide

        print_wide()
    if which in ("gate", "all"):
        gate()
    if which in ("promotion", "all"):
        from benchmarks.promotion import print_promotion

        print_promotion()
    if which in ("tasks", "all"):
        from benchmarks.tasks import print_tasks

        print_tasks(sys.argv[2:])


def steps() -> None:
    settings = load_settings()
    reference = read_csv(settings.reference_data)
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)
    with timed("synthesizer fit (1,000 real rows)"):
        synth = Synthesizer(seed=settings.seed).fit(reference)
    with timed(f"synthesizer sample ({settings.daily_rows} rows)"):
        batch = synth.generate(settings.daily_rows, seed=settings.seed, logical_date="2026-11-01")
    pre = TabularPreprocessor(schema).fit(reference)
    with timed(f"validate + preprocess ({settings.daily_rows} rows)"):
        encoded = pre.transform(validate_batch(batch, schema))
    idx = split_indices(encoded.y, seed=settings.seed)
    seed_everything(settings.seed)
    model = TabTransformer(cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=settings.d_model,
                           nhead=settings.nhead, num_layers=settings.num_layers,
                           dim_feedforward=settings.dim_feedforward, dropout=settings.dropout,
                           architecture=settings.architecture, encoder_dropout=settings.encoder_dropout)
    p, f, t = (idx[k] for k in ("pretrain", "finetune", "test"))
    with timed(f"pretrain 1 epoch ({len(p)} rows)"):
        pretrain_contrastive(model, encoded.x_cat[p], encoded.x_num[p], epochs=1, batch_size=settings.batch_size,
                             learning_rate=settings.learning_rate, temperature=settings.temperature,
                             mask_probability=settings.mask_probability, seed=settings.seed)
    with timed(f"fine-tune 1 epoch ({len(f)} rows)"):
        finetune(model, encoded.x_cat[f], encoded.x_num[f], encoded.y[f], epochs=1, batch_size=settings.batch_size,
                 learning_rate=settings.learning_rate, seed=settings.seed)
    with timed(f"predict + metrics ({len(t)} rows)"):
        classification_metrics(encoded.y[t], predict_proba(model, encoded.x_cat[t], encoded.x_num[t]))
    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(tmp)) as uri, connect(uri, "bench") as db:
        data = batch.to_csv(index=False).encode()
        with timed(f"GridFS put + verified get ({len(data) / 2**20:.1f} MiB, SecantusDB)"):
            get_artifact(db, put_artifact(db, "raw_data", "bench.csv", data))
    width = max(len(label) for label, _ in ROWS)
    for label, seconds in ROWS:
        print(f"{label:<{width}}  {seconds:8.2f} s")
    print(f"{'peak resident memory':<{width}}  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MiB")


def gate(rows: int = 10_000, runs: int = 3) -> None:
    """Seconds of the check_data_quality task at ``rows`` rows (median of ``runs``), for a none and a broken day."""
    import datetime as dt
    import logging

    from daily_mlops.loop.bootstrap import register_preprocessor, register_synthesizer
    from daily_mlops.loop.data import generate_data
    from daily_mlops.loop.quality import check_data_quality
    from daily_mlops.storage.registry import ModelRegistry

    logging.getLogger("daily_mlops").setLevel(logging.CRITICAL)  # the broken day's gate logs its failure
    settings = load_settings().model_copy(update={"daily_rows": rows})
    reference = read_csv(settings.reference_data)
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)
    print(f"data-quality gate (check_data_quality) at {rows:,} rows, median of {runs} runs (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)   goal <= {GATE_GOAL:.0f} s")
    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(tmp)) as uri, connect(uri, "bench") as db:
        registry = ModelRegistry(db)
        register_synthesizer(registry, reference, schema, seed=settings.seed)
        register_preprocessor(registry, reference, schema)
        for i, drift in enumerate(("none", "broken")):
            day = dt.date(2026, 11, 1 + i)
            generate_data(settings, logical_date=day, db=db, drift=drift)
            results = [check_data_quality(settings, logical_date=day, db=db) for _ in range(runs)]
            wall = statistics.median(r["seconds"] for r in results)
            imports, cold = _gate_in_fresh_process(uri, day, rows)
            verdict = "ok" if wall <= GATE_GOAL else "OVER GOAL"
            print(f"  drift {drift:<8} gate {results[-1]['status']:<7} {wall:5.2f} s   {verdict}   (in a fresh "
                  f"interpreter, as an Airflow task process: {imports:.2f} s of imports, then {cold:.2f} s)")
    print("  The goal counts the gate's work (the dag.test runner's process, which daily-mlops run and demo use, has "
          "imported\n  SDMetrics already: SDV imports it). A fresh task process first imports pandas, pyarrow, "
          "scikit-learn, skops\n  and SDMetrics (with torch hidden: daily_mlops.ml._without_torch), a fixed cost "
          "that does not grow with the rows.")


def _gate_in_fresh_process(uri: str, day: dt.date, rows: int) -> tuple[float, float]:
    """(import seconds, gate seconds) of ``check_data_quality`` in a new interpreter."""
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from daily_mlops.ml._without_torch import import_without_torch\n"
        "import pandas, pyarrow.parquet, sklearn.compose\n"
        "import_without_torch('skops.io', 'sdmetrics.reports')  # as the task imports them\n"
        "from daily_mlops.loop.quality import check_data_quality\n"
        "from daily_mlops.settings import load_settings\n"
        "from daily_mlops.storage.mongo import connect\n"
        "i = time.perf_counter() - t; t = time.perf_counter()\n"
        "with connect(sys.argv[1], 'bench') as db:\n"
        "    check_data_quality(load_settings(daily_rows=int(sys.argv[3])), logical_date=sys.argv[2], db=db)\n"
        "print(i, time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, uri, day.isoformat(), str(rows)], capture_output=True,
                          text=True, check=True)
    imports, seconds = done.stdout.strip().splitlines()[-1].split()
    return float(imports), float(seconds)


if __name__ == "__main__":
    main()
