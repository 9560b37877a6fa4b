"""Print the data-quality gate's drift figures of ``none`` days on the wide benchmark table (goal: a mean >= 0.95).

Writes ``scripts/make_wide_table.py``'s table (5,000 rows x 99 columns, seed 0) to a temporary directory,
registers its synthesizer and preprocessor as bootstrap does (:func:`daily_mlops.loop.bootstrap.register_synthesizer`,
:func:`~daily_mlops.loop.bootstrap.register_preprocessor`; no model is trained: the gate needs none), then for
each of ``--days`` consecutive logical dates from 2026-11-01 runs ``generate_data`` with drift ``none`` and the
gate task (:func:`daily_mlops.loop.quality.check_data_quality`) against a throw-away embedded server, and
prints the day's mean drift score (SDMetrics KSComplement / TVComplement, 1 = like the reference; goal >= 0.95)
and its ``--worst`` lowest columns. The columns' mean over the days follows, lowest first.

Usage::

    PYTHONPATH=src python scripts/wide_drift.py [--days 3] [--rows 10000] [--worst 12]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="none days measured (default 3)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per day (MLOPS_DAILY_ROWS, default 10000)")
    parser.add_argument("--worst", type=int, default=12, help="lowest columns printed (default 12)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("daily_mlops").setLevel(logging.WARNING)

    import pandas as pd
    from make_wide_table import make_wide_table

    from daily_mlops.loop import data
    from daily_mlops.loop.bootstrap import reference_holdout, register_preprocessor, register_synthesizer
    from daily_mlops.loop.quality import check_data_quality
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.settings import Settings
    from daily_mlops.storage.mongo import connect, embedded_server
    from daily_mlops.storage.registry import ModelRegistry

    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(tmp) / "mongo") as uri, \
            connect(uri, "wide_drift") as db:
        path = Path(tmp) / "wide.csv"
        make_wide_table(seed=0).to_csv(path, index=False)
        settings = Settings(home=Path(tmp), reference_data=path, target_column="creditability",
                            positive_label="bad", daily_rows=args.rows, _env_file=None)
        reference = read_csv(path)
        schema = infer_schema(reference, target_column="creditability", positive_label="bad")
        reference = validate_batch(reference, schema)
        registry = ModelRegistry(db)
        register_synthesizer(registry, reference, schema, seed=settings.seed)
        register_preprocessor(registry, reference_holdout(reference, schema, seed=settings.seed)[0], schema)
        per_day = {}
        for i in range(args.days):
            day = dt.date(2026, 11, 1) + dt.timedelta(days=i)
            data.generate_data(settings, logical_date=day, db=db, drift="none")
            check_data_quality(settings, logical_date=day, db=db)
            drift = db.processing_metadata.find_one({"logical_date": day.isoformat()})["drift"]
            per_day[day.isoformat()] = pd.Series(drift["columns"])
            worst = ", ".join(f"{w['column']} {w['score']:.3f}" for w in drift["worst"])
            print(f"{day} drift none: mean drift score {drift['score']:.4f} over {len(drift['columns'])} columns; "
                  f"worst: {worst}")
        table = pd.DataFrame(per_day)
        table["mean"] = table.mean(axis=1)
        print(f"\nmean of the day means: {table.drop(columns='mean').mean().mean():.4f}")
        print(f"lowest {args.worst} columns (score per day and mean):")
        print(table.sort_values("mean").head(args.worst).round(3).to_string())


if __name__ == "__main__":
    main()
