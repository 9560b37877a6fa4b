"""Promotion benchmark: do approvals mean a better model? Seven ordinary days forced to retrain, judged on rows
nothing chose on.

What it does (``python -m benchmarks promotion``; about 8 minutes on 2 cores):

1. bootstraps into a throw-away embedded MongoDB (``daily-mlops bootstrap``, the settings in effect);
2. draws an **independent split**: 15,000 rows from the same synthesizer, with a seed and a logical date no day
   uses (``MLOPS_SEED + 2``, 2099-12-31), never trained, calibrated or chosen on; scores version 1 there;
3. runs 7 ordinary days (``daily-mlops run --date 2026-11-01 --days 7``, drift ``none``, the real Airflow DAGs
   through ``dag.test``) with ``--f1-threshold`` fixed 0.01 above version 1's F1 on the independent split, so the
   champion sits below the floor on most days and every day recalibrates and retrains;
4. scores every model version on the independent split and on the real holdout, and prints one row per version:
   parent, lineage kind, status, the day's validation F1 and its paired interval against its baseline, the
   independent-split F1 and ROC-AUC, the real-holdout F1 and ROC-AUC;
5. for every version promoted (deployed on one of the 7 days), its F1 on the independent split minus its
   champion's, with a paired bootstrap 95% interval (:func:`daily_mlops.ml.comparison.paired_difference`).

Goal: at most 1 challenger promoted in the 7 days, and none worse on the independent split.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_DAY = dt.date(2026, 11, 1)
DAYS = 7
INDEPENDENT_ROWS = 15_000
#: Independent split: a logical date and a seed offset no day or bootstrap sample uses.
INDEPENDENT_DATE, INDEPENDENT_SEED_OFFSET = dt.date(2099, 12, 31), 2
PROMOTION_GOAL = 1


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("daily-mlops")), *args], env=env, cwd=REPO,
                          capture_output=True, text=True)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_promotion(days: int = DAYS) -> None:
    from daily_mlops.loop._common import load_model_version
    from daily_mlops.loop.evidence import real_holdout
    from daily_mlops.ml.comparison import paired_difference
    from daily_mlops.ml.metrics import classification_metrics
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.settings import load_settings
    from daily_mlops.storage.mongo import connect, embedded_server
    from daily_mlops.storage.registry import ModelRegistry, synthesizer_name

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(tmp) / "mongo") as uri:
        settings = load_settings(home=Path(tmp), mongo_uri=uri)
        env = {**os.environ, "MLOPS_HOME": tmp, "MLOPS_MONGO_URI": uri, "PYTHONWARNINGS": "ignore"}
        done = _cli(env, "bootstrap")
        if done.returncode:
            raise SystemExit(f"bootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        with connect(uri, settings.mongo_db) as db:
            registry = ModelRegistry(db)
            name = settings.model_name
            synth_doc = registry.latest(synthesizer_name(name), statuses=("approved",))
            synth = Synthesizer.from_reference(registry.load_artifact(synth_doc, "synthesizer"),
                                               sha256=synth_doc["sha256"]["synthesizer"], record=synth_doc)
            v1 = load_model_version(registry, registry.get(name, 1))
            pre = v1.preprocessor
            independent = pre.transform(validate_batch(
                synth.generate(INDEPENDENT_ROWS, seed=settings.seed + INDEPENDENT_SEED_OFFSET,
                               logical_date=INDEPENDENT_DATE), pre.schema))
            real = real_holdout(registry, name, pre)
            v1_f1 = classification_metrics(independent.y, v1.predict_proba_encoded(independent),
                                           decision_threshold=v1.decision_threshold)["f1"]
            threshold = round(v1_f1 + 0.01, 4)
        print(f"Promotion benchmark: bootstrap, then {days} days of drift none at --f1-threshold {threshold:.4f} "
              f"(v1's F1 {v1_f1:.4f} on an independent {INDEPENDENT_ROWS:,}-row split + 0.01); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        done = _cli(env, "run", "--date", FIRST_DAY.isoformat(), "--days", str(days), "--f1-threshold", str(threshold))
        if done.returncode:
            raise SystemExit(f"daily-mlops run failed:\n{done.stdout[-5000:]}\n{done.stderr[-3000:]}")
        with connect(uri, settings.mongo_db) as db:
            registry = ModelRegistry(db)
            scored, rows = {}, []
            for doc in registry.list(name):
                bundle = load_model_version(registry, doc)
                version = int(doc["model_version"])
                p_ind, p_real = bundle.predict_proba_encoded(independent), bundle.predict_proba_encoded(real)
                scored[version] = (bundle, p_ind)
                ind = classification_metrics(independent.y, p_ind, decision_threshold=bundle.decision_threshold)
                rea = classification_metrics(real.y, p_real, decision_threshold=bundle.decision_threshold)
                champ = (doc.get("comparisons") or {}).get("champion") or {}
                guard = (doc.get("comparisons") or {}).get("real") or {}
                day_f1 = ((doc.get("metrics") or {}).get("validation") or {}).get("f1")
                interval = champ.get("interval")
                rows.append((version, doc.get("parent_version"), doc.get("lineage_kind", "-"), doc["status"],
                             doc.get("logical_date") or "-", day_f1,
                             f"{champ['delta']:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}] "
                             f"vs v{champ['champion_version']}" if interval else "-",
                             ind["f1"], ind["roc_auc"], rea["f1"], rea["roc_auc"],
                             f"{guard['delta']:+.4f} [{guard['interval'][0]:+.4f}, {guard['interval'][1]:+.4f}]"
                             if guard.get("interval") else "-"))
            deployments = list(db["deployment_events"].find({"status": "deployed"}, {"_id": 0}).sort("logical_date", 1))
            alerts = db["alerts"].count_documents({})
        header = ("version", "parent", "kind", "status", "day", "day F1 (val)", "ΔF1 vs baseline, 95% interval",
                  "indep. F1", "indep. ROC-AUC", "real F1", "real ROC-AUC", "real ΔROC-AUC, 95% interval")
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join([f"v{r[0]}", f"v{r[1]}" if r[1] else "-", r[2], r[3], r[4], _fmt(r[5]), r[6],
                                     *(_fmt(x) for x in r[7:11]), r[11]]) + " |")
        promoted = [d for d in deployments if int(d["model_version"]) != 1]
        print(f"\n{days} days: {alerts} alert day(s), {len(deployments)} deployment(s), "
              f"{len(promoted)} promotion(s) of a new version   goal <= {PROMOTION_GOAL}   "
              f"{'ok' if len(promoted) <= PROMOTION_GOAL else 'GOAL NOT MET'}")
        live = 1
        for event in deployments:
            version = int(event["model_version"])
            if version == live:
                continue
            (new, p_new), (old, p_old) = scored[version], scored[live]
            diff = paired_difference(independent.y, (p_new >= new.decision_threshold).astype(int),
                                     (p_old >= old.decision_threshold).astype(int), metric="f1", seed=0)
            verdict = "not worse" if diff["interval"][1] >= 0 else "WORSE"
            print(f"  {event['logical_date']}: v{live} -> v{version}: independent-split F1 {diff['champion']:.4f} -> "
                  f"{diff['challenger']:.4f}, ΔF1 {diff['delta']:+.4f} [{diff['interval'][0]:+.4f}, "
                  f"{diff['interval'][1]:+.4f}] 95% paired: {verdict}")
            live = version
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":  # python -m benchmarks.promotion [DAYS], from the repository root
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__)
    else:
        print_promotion(int(sys.argv[1]) if len(sys.argv) > 1 else DAYS)
