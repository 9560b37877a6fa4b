"""``python -m benchmarks storage``: a day's data path at 10k, 100k and 1M rows, its storage against the original.

Run through ``python -m benchmarks storage`` (``--profile ROWS`` prints
cProfile's top entries of one pipeline run instead). Layout:

* The embedded SecantusDB server runs in its own process, so its CPU time
  (``psutil.Process.cpu_times``, user + system, all threads) is measured
  apart from ours.
* Each measurement runs in a fresh worker process (this file with a ``_``
  mode), so its peak resident memory (``resource.getrusage().ru_maxrss``) is
  its own. Workers import what the data DAG's tasks import (no torch).
* ``_run``: ``generate_data`` -> ``preprocess_data`` ->
  ``store_processing_metadata`` -> ``load_split`` of every split, timed as
  a whole (wall clock, ``time.perf_counter``) and per task; the fixed costs
  (synthesizer refit, preprocessor load) and the time inside SDV sampling
  and GridFS transfers are measured by wrapping those functions.
* ``_compare``: the batch is sampled and encoded first (not timed), then only
  the storage stages are timed: store raw, store processed, load back; ours
  (:mod:`daily_mlops.storage.batches`) and the original pattern
  (``baselines/storage.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000)
#: Rows of the storage-only comparison, and of the probe that decides whether the original pattern runs at COMPARE_ROWS.
COMPARE_ROWS, PROBE_ROWS = 1_000_000, 100_000
DB_NAME = "bench_storage"
GOAL_SECONDS_1M = 120.0
GOAL_RSS_MIB = 2048.0
GOAL_SPREAD = 0.25
GOAL_SPEEDUP = 10.0
ORIGINAL_LIMIT_SECONDS = 300.0
SPLITS = ("pretrain", "finetune", "test")
_SERVER = """
import sys
from pathlib import Path
from daily_mlops.storage.mongo import embedded_server
with embedded_server(Path(sys.argv[1])) as uri:
    print(uri, flush=True)
    sys.stdin.read()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("BENCH_PROFILE_TOP", "5")
    return env


@contextlib.contextmanager
def _server(path: str):
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", _SERVER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=_env())
    try:
        yield proc.stdout.readline().strip(), psutil.Process(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)


def _worker(*args: object) -> dict:
    done = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True, env=_env())
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"worker {args[:1]} failed (rc {done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    for line in done.stdout.splitlines():
        if not line.startswith("RESULT "):
            print(line)
    return json.loads(lines[-1][7:])


# -- in the worker ---------------------------------------------------------------
def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Meter:
    """Wall, our CPU and the server's CPU (seconds) of named stages."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self.server = psutil.Process(server_pid)
        self.stages: dict[str, dict[str, float]] = {}

    def _server_cpu(self) -> float:
        times = self.server.cpu_times()
        return times.user + times.system

    @contextlib.contextmanager
    def stage(self, name: str):
        wall, cpu, server = time.perf_counter(), _own_cpu(), self._server_cpu()
        yield
        self.stages[name] = {"wall": time.perf_counter() - wall, "cpu": _own_cpu() - cpu,
                             "server_cpu": self._server_cpu() - server}


def _instrument() -> dict[str, float]:
    """Wrap the fixed-cost and transfer functions the tasks call; return seconds spent in each (filled as they run)."""
    import daily_mlops.storage.artifacts as artifacts
    import daily_mlops.storage.batches as batches
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.synthesis import Synthesizer

    spent = {"synthesizer refit": 0.0, "preprocessor load": 0.0, "SDV sampling": 0.0, "GridFS upload": 0.0,
             "GridFS download": 0.0}

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start
        return wrapper

    refit, load = Synthesizer.from_reference.__func__, TabularPreprocessor.from_bytes.__func__
    Synthesizer.from_reference = classmethod(timed("synthesizer refit", refit))
    TabularPreprocessor.from_bytes = classmethod(timed("preprocessor load", load))
    chunks = Synthesizer.generate_chunks

    def generate_chunks(self, *args, **kwargs):
        stream = chunks(self, *args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                chunk = next(stream)
            except StopIteration:
                return
            finally:
                spent["SDV sampling"] += time.perf_counter() - start
            yield chunk

    Synthesizer.generate_chunks = generate_chunks
    batches.put_artifact = timed("GridFS upload", batches.put_artifact)
    artifacts.download_artifact = timed("GridFS download", artifacts.download_artifact)
    batches.download_artifact = artifacts.download_artifact
    return spent


def _preimport() -> float:
    """Import what the tasks import lazily (SDV, scikit-learn, skops, pyarrow); return the seconds it took.

    Imports are a fixed cost of a fresh process (an Airflow task pays them
    once), not a cost per row, so they are done before the clock starts and
    reported on their own.
    """
    start = time.perf_counter()
    import pyarrow.parquet  # noqa: F401
    import sdv.metadata  # noqa: F401
    import sdv.single_table  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import skops.io  # noqa: F401

    import daily_mlops.loop.data  # noqa: F401
    import daily_mlops.ml.preprocessing  # noqa: F401
    import daily_mlops.ml.synthesis  # noqa: F401
    import daily_mlops.storage.batches  # noqa: F401
    import daily_mlops.storage.registry  # noqa: F401
    return time.perf_counter() - start


def _database(uri: str):
    from pymongo import MongoClient

    from daily_mlops.storage.mongo import database

    return database(MongoClient(uri, tz_aware=True), DB_NAME)


def _settings(rows: int, home: str):
    from daily_mlops.settings import Settings

    return Settings(home=Path(home), daily_rows=rows, _env_file=None)


def work_setup(uri: str) -> dict:
    """Register the synthesizer and preprocessor as bootstrap does (no model is trained)."""
    from daily_mlops.loop.bootstrap import BOOTSTRAP_RUN_KEY, register_synthesizer
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.storage.registry import PREPROCESSOR_NAME, ModelRegistry

    settings, db = _settings(10_000, tempfile.gettempdir()), _database(uri)
    reference = read_csv(settings.require_reference_data())
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)
    registry = ModelRegistry(db)
    register_synthesizer(registry, reference, schema, seed=settings.seed)
    pre = TabularPreprocessor(schema).fit(reference)
    registry.register(PREPROCESSOR_NAME, run_key=BOOTSTRAP_RUN_KEY, artifacts={"preprocessor": pre.to_bytes()},
                      status="approved", trained_on=["reference"], signature=pre.signature(), extra={"schema": schema})
    return {}


def work_run(uri: str, server_pid: str, rows: str, day: str, profile: str = "") -> dict:
    """The day's data path through the task functions; with ``profile``, print cProfile's top entries."""
    imports = _preimport()
    from daily_mlops.loop import data
    from daily_mlops.storage.batches import load_split

    spent = _instrument()
    db, meter, logical_date = _database(uri), _Meter(int(server_pid)), dt.date.fromisoformat(day)
    with tempfile.TemporaryDirectory() as home:
        settings = _settings(int(rows), home)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        with meter.stage("total"):
            with meter.stage("generate_data"):
                data.generate_data(settings, logical_date=logical_date, db=db)
            with meter.stage("preprocess_data"):
                data.preprocess_data(settings, logical_date=logical_date, db=db)
            with meter.stage("store_processing_metadata"):
                data.store_processing_metadata(settings, logical_date=logical_date, db=db)
            with meter.stage("load_split x3"):
                loaded = sum(len(load_split(db, logical_date, name)) for name in SPLITS)
        if profiler is not None:
            import pstats

            profiler.disable()
            top = int(os.environ.get("BENCH_PROFILE_TOP", "5"))
            for order in ("tottime", "cumulative"):
                print(f"cProfile, {int(rows):,} rows, top {top} by {order}:")
                pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)
    assert loaded == int(rows), f"loaded {loaded} rows of {rows}"
    index = db.processing_metadata.find_one({"logical_date": day})
    sizes = {"raw": index["raw_file"]["size"],
             "splits": sum(e["file"]["size"] for e in index["processed"]["splits"].values())}
    return {"rows": int(rows), "stages": meter.stages, "spent": spent, "imports": imports, "bytes": sizes,
            "peak_rss_mib": _peak_rss_mib()}


def work_compare(uri: str, server_pid: str, rows: str, day: str, original: str) -> dict:
    """The storage stages alone, ours and (when ``original`` is "1") the original pattern, on prepared data."""
    _preimport()
    import pandas as pd

    from baselines import storage as ref
    from daily_mlops.dates import day_seed
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.splits import split_indices
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.storage.batches import (
        load_split,
        record_raw_batch,
        store_processed_batch,
        store_raw_batch,
    )
    from daily_mlops.storage.registry import PREPROCESSOR_NAME, SYNTHESIZER_NAME, ModelRegistry

    db, meter, logical_date, n = _database(uri), _Meter(int(server_pid)), dt.date.fromisoformat(day), int(rows)
    registry = ModelRegistry(db)
    synth_doc = registry.latest(SYNTHESIZER_NAME, statuses=("approved",))
    synth = Synthesizer.from_reference(registry.load_artifact(synth_doc, "synthesizer"),
                                       sha256=synth_doc["sha256"]["synthesizer"], record=synth_doc)
    pre_doc = registry.latest(PREPROCESSOR_NAME, statuses=("approved",))
    pre = TabularPreprocessor.from_bytes(registry.load_artifact(pre_doc, "preprocessor"),
                                         sha256=pre_doc["sha256"]["preprocessor"])
    frame = pd.concat([validate_batch(c, synth_doc["schema"])
                       for c in synth.generate_chunks(n, seed=42, logical_date=logical_date, chunk_rows=100_000)])
    encoded = pre.transform(frame)
    splits = split_indices(encoded.y, seed=day_seed(42, logical_date))
    with meter.stage("ours: store raw"):
        raw_file = store_raw_batch(db, frame, logical_date=logical_date)
        record_raw_batch(db, {"status": "raw", "n_rows": n}, logical_date=logical_date)
    with meter.stage("ours: store processed"):
        store_processed_batch(db, encoded, splits, logical_date=logical_date, x_cat=pre.categorical_features_,
                              x_num=pre.numeric_features_, raw_file=raw_file)
    with meter.stage("ours: load back"):
        assert sum(len(load_split(db, logical_date, name)) for name in SPLITS) == n
    if original == "1":
        db.drop_collection(ref.COLLECTION)
        processed = ref.processed_frame(encoded, splits, logical_date=logical_date)  # preprocessing's output
        with meter.stage("original: store raw"):
            ref.store_raw(db, frame, logical_date=logical_date)
        with meter.stage("original: store processed"):
            ref.store_processed(db, processed)
        del processed
        with meter.stage("original: load back"):
            assert len(ref.load_processed(db)) == n
        db.drop_collection(ref.COLLECTION)
    return {"rows": n, "stages": meter.stages, "peak_rss_mib": _peak_rss_mib()}


# -- in the parent ---------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "ok" if ok else "NOT MET"


def _print_runs(runs: list[dict]) -> None:
    print(f"  {'rows':>9}  {'wall s':>7}  {'µs/row':>7}  {'µs/row*':>7}  {'our CPU s':>9}  {'server CPU s':>12}  "
          f"{'peak RSS MiB':>12}")
    for r in runs:
        total, fixed = r["stages"]["total"], r["spent"]["synthesizer refit"] + r["spent"]["preprocessor load"]
        print(f"  {r['rows']:>9,}  {total['wall']:7.1f}  {1e6 * total['wall'] / r['rows']:7.1f}  "
              f"{1e6 * (total['wall'] - fixed) / r['rows']:7.1f}  {total['cpu']:9.1f}  {total['server_cpu']:12.1f}  "
              f"{r['peak_rss_mib']:12.0f}")
    print("  µs/row* excludes the fixed costs: synthesizer refit + preprocessor load (same at every size)")
    for r in runs:
        stages = "; ".join(f"{k} {v['wall']:.1f} s (ours {v['cpu']:.1f} / server {v['server_cpu']:.1f} CPU s)"
                           for k, v in r["stages"].items() if k != "total")
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in r["spent"].items())
        print(f"  {r['rows']:,} rows: {stages}\n      inside: {spent}; before the clock: imports {r['imports']:.1f} s"
              f"\n      GridFS: raw file {r['bytes']['raw'] / 2**20:.1f} MiB, "
              f"split files {r['bytes']['splits'] / 2**20:.1f} MiB")


def _spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def _print_compare(result: dict, original: bool) -> float | None:
    stages, rows = result["stages"], result["rows"]
    print(f"  storage stages alone at {rows:,} rows (wall s, our CPU s / server CPU s):")
    total = {"ours": 0.0, "original": 0.0}
    for stage in ("store raw", "store processed", "load back"):
        ours = stages[f"ours: {stage}"]
        total["ours"] += ours["wall"]
        line = f"    {stage:<16} ours {ours['wall']:7.2f} ({ours['cpu']:.1f} / {ours['server_cpu']:.1f})"
        if original:
            orig = stages[f"original: {stage}"]
            total["original"] += orig["wall"]
            line += (f"   original {orig['wall']:7.2f} ({orig['cpu']:.1f} / {orig['server_cpu']:.1f})"
                     f"   {orig['wall'] / ours['wall']:6.1f}x")
        print(line)
    if not original:
        print(f"    {'total':<16} ours {total['ours']:7.2f}")
        return None
    speedup = total["original"] / total["ours"]
    print(f"    {'total':<16} ours {total['ours']:7.2f}{'':18}original {total['original']:7.2f}{'':14}"
          f"{speedup:6.1f}x   goal >= {GOAL_SPEEDUP:.0f}x   {_verdict(speedup >= GOAL_SPEEDUP)}")
    return speedup


def storage(argv: list[str]) -> None:
    """Print the storage figures, each next to its goal (or, with ``--profile ROWS``, cProfile's top entries)."""
    with tempfile.TemporaryDirectory() as tmp, _server(tmp) as (uri, server):
        print(f"storage: SecantusDB in its own process (pid {server.pid}); load average at start "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        _worker("_setup", uri)
        if argv[:1] == ["--profile"]:
            _worker("_run", uri, server.pid, int(argv[1]), "2026-12-01", "profile")
            return
        runs = [_worker("_run", uri, server.pid, rows, f"2026-11-{i + 1:02d}") for i, rows in enumerate(SIZES)]
        _print_runs(runs)
        by_rows = {r["rows"]: r for r in runs}
        wall_1m = by_rows[SIZES[-1]]["stages"]["total"]["wall"]
        rss_1m = by_rows[SIZES[-1]]["peak_rss_mib"]
        per_row = [r["stages"]["total"]["wall"] / r["rows"] for r in runs]
        per_row_var = [(r["stages"]["total"]["wall"] - r["spent"]["synthesizer refit"]
                        - r["spent"]["preprocessor load"]) / r["rows"] for r in runs]
        print(f"  {SIZES[-1]:,} rows, wall clock   {wall_1m:8.1f} s     goal <= {GOAL_SECONDS_1M:.0f} s     "
              f"{_verdict(wall_1m <= GOAL_SECONDS_1M)}")
        print(f"  {SIZES[-1]:,} rows, peak RSS     {rss_1m:8.0f} MiB   goal <= {GOAL_RSS_MIB:.0f} MiB   "
              f"{_verdict(rss_1m <= GOAL_RSS_MIB)}")
        print(f"  per-row cost spread, all    {100 * _spread(per_row):8.0f} %     "
              f"goal <= {100 * GOAL_SPREAD:.0f} %      {_verdict(_spread(per_row) <= GOAL_SPREAD)}")
        print(f"  per-row cost spread, µs/row* {100 * _spread(per_row_var):7.0f} %     "
              f"goal <= {100 * GOAL_SPREAD:.0f} %      {_verdict(_spread(per_row_var) <= GOAL_SPREAD)}")
        walls = [r["stages"]["total"]["wall"] for r in runs]
        marginal = [(walls[i + 1] - walls[i]) / (SIZES[i + 1] - SIZES[i]) for i in range(len(SIZES) - 1)]
        small = runs[0]
        fixed = small["spent"]["synthesizer refit"] + small["spent"]["preprocessor load"]
        other = walls[0] - fixed - marginal[-1] * small["rows"]
        print(f"  fixed per-day cost at {small['rows']:,} rows: "
              f"synthesizer refit {small['spent']['synthesizer refit']:.1f} s"
              f" + preprocessor load {small['spent']['preprocessor load']:.1f} s = "
              f"{100 * fixed / walls[0]:.0f} % of that day's wall clock "
              f"(SDV preprocessing refit + copulas rebuilt from "
              f"copula_params; a record without them refits scipy's beta fits); "
              f"other per-day overhead beyond the marginal cost: {other:.1f} s")
        steps = ", ".join(f"{SIZES[i]:,}->{SIZES[i + 1]:,}: {1e6 * m:.1f}" for i, m in enumerate(marginal))
        print(f"  marginal µs/row ({steps}) spread {100 * _spread(marginal):.0f} %  (cost of each extra row; "
              f"the spread goal applies to µs/row)")
        probe = _worker("_compare", uri, server.pid, PROBE_ROWS, "2026-11-10", "1")
        original_probe = sum(v["wall"] for k, v in probe["stages"].items() if k.startswith("original"))
        expected = original_probe * COMPARE_ROWS / PROBE_ROWS
        if expected > ORIGINAL_LIMIT_SECONDS:
            print(f"  the original pattern took {original_probe:.1f} s at {PROBE_ROWS:,} rows, "
                  f"so about {expected:.0f} s at {COMPARE_ROWS:,} (> {ORIGINAL_LIMIT_SECONDS:.0f} s): "
                  f"compared at {PROBE_ROWS:,} rows")
            _print_compare(probe, original=True)
            _print_compare(_worker("_compare", uri, server.pid, COMPARE_ROWS, "2026-11-11", "0"), original=False)
        else:
            print(f"  the original pattern took {original_probe:.1f} s at {PROBE_ROWS:,} rows, "
                  f"so about {expected:.0f} s at {COMPARE_ROWS:,} (<= {ORIGINAL_LIMIT_SECONDS:.0f} s): "
                  f"compared at {COMPARE_ROWS:,} rows")
            _print_compare(_worker("_compare", uri, server.pid, COMPARE_ROWS, "2026-11-11", "1"), original=True)
        print(f"  load average at end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":  # a worker of storage(); the section runs as ``python -m benchmarks storage``
    if sys.argv[1:2] in ([], ["-h"], ["--help"]):
        print(__doc__)
        raise SystemExit(0)
    mode, *args = sys.argv[1:]
    work = {"_setup": work_setup, "_run": work_run, "_compare": work_compare}[mode]
    print("RESULT " + json.dumps(work(*args)), flush=True)
