"""Measure what each ``drift`` param does to the loop on the bundled data: the figures behind the demo.

Bootstraps with the settings in effect (``MLOPS_*``, the YAML file) against a throw-away embedded
server, then for each demo day (``daily_mlops.loop.demo``: drift none, shift, label_noise, broken on
2026-11-01..04) runs the data steps and the gate, scores the champion (v1) and chains up to
``max_retrain_attempts`` fine-tuning attempts, each from the best version so far, as the evaluation
DAG does (after the champion's recalibration). Prints the validation F1 (positive class) and ROC-AUC of
each, with no threshold applied; compare
them with the ``auto`` floor (bootstrap floor-sample F1 minus ``MLOPS_F1_TOLERANCE``). About 5 minutes
on 2 cores. Usage: ``python scripts/measure_drift.py [ATTEMPTS]``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path


def main(attempts: int = 3) -> None:
    from daily_mlops.loop import bootstrap as boot
    from daily_mlops.loop import data, evaluation
    from daily_mlops.loop.demo import DEMO_PLAN
    from daily_mlops.loop.quality import check_data_quality
    from daily_mlops.settings import load_settings
    from daily_mlops.storage.mongo import connect, embedded_server

    first = dt.date(2026, 11, 1)
    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(tmp) / "mongo") as uri, \
            connect(uri, "measure") as db:
        settings = load_settings(home=Path(tmp))
        result = boot.bootstrap(settings, db=db)
        print(f"bootstrap v1: test-split F1 {result['metrics']['f1']:.4f}, ROC-AUC {result['metrics']['roc_auc']:.4f}")
        for i, mode in enumerate(DEMO_PLAN):
            day = first + dt.timedelta(days=i)
            data.generate_data(settings, logical_date=day, db=db, drift=mode)
            data.preprocess_data(settings, logical_date=day, db=db)
            gate = check_data_quality(settings, logical_date=day, db=db)
            print(f"{day} drift {mode}: {gate['reason']}\n    {gate['drift']}")
            if gate["status"] == "failed":
                continue
            data.store_processing_metadata(settings, logical_date=day, db=db)
            last = evaluation.evaluate_model(settings, model_version=1, logical_date=day, f1_threshold=2.0, db=db)
            print(f"    champion v1: F1 {last['f1']:.4f}, ROC-AUC {last['roc_auc']:.4f} (validation)")
            last = evaluation.recalibrate_champion(settings, logical_date=day, previous=last, f1_threshold=2.0, db=db)
            print(f"    recalibrated v{last['model_version']}: F1 {last['f1']:.4f}, ROC-AUC {last['roc_auc']:.4f}")
            for attempt in range(1, attempts + 1):
                last = evaluation.retrain_model(settings, logical_date=day, attempt=attempt, previous=last,
                                                f1_threshold=2.0, db=db)
                print(f"    attempt {attempt} (fine-tuned from v{last['parent_version']}): F1 {last['f1']:.4f}, "
                      f"ROC-AUC {last['roc_auc']:.4f}")


if __name__ == "__main__":
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
