"""Run one logical date through the three DAGs (``dag.test``, as ``daily-mlops run``) with the ``drift`` param.

Usage: ``python gate_day_harness.py MONGO_URI DB_NAME HOME DATE DRIFT [crash|classifier]``; with ``crash``,
``check_data_quality`` raises an unexpected RuntimeError (its ``batch_fidelity`` call is replaced) before it
records a verdict. Registers only the synthesizer
and the preprocessor (no model is trained: the evaluation DAG must stop at its sensor before it needs
one). With ``classifier`` it bootstraps a tiny model version 1 instead, then makes the fidelity report's
classifier raise (as it did on a 99-column table), so the whole day runs past the gate to its end.
It configures a local Airflow under HOME, runs the day and prints one JSON line ``OUTCOME=...``
with each DAG run's state and task states, ``stopped_by_gate`` and ``as_designed``.
Run in its own interpreter by ``test_quality_gate_dag.py``, so Airflow reads this environment.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def main(uri: str, db_name: str, home: str, day: str, drift: str, crash: str = "") -> None:
    import os

    from daily_mlops.settings import Settings

    if crash == "classifier":  # a tiny model, read by bootstrap here and by the DAG tasks from the environment
        os.environ.update({"MLOPS_NUM_LAYERS": "1", "MLOPS_D_MODEL": "8", "MLOPS_NHEAD": "2",
                           "MLOPS_DIM_FEEDFORWARD": "16", "MLOPS_FINETUNE_EPOCHS": "1", "MLOPS_RETRAIN_EPOCHS": "1",
                           "MLOPS_MAX_PREDICT_P95_MS": "5000"})
    settings = Settings(home=Path(home), mongo_db=db_name, daily_rows=1200, _env_file=None)
    from daily_mlops.orchestration.environment import configure_airflow

    configure_airflow(settings, uri, quiet=True)
    os.environ["MLOPS_DAILY_ROWS"] = "1200"
    from daily_mlops.loop.bootstrap import register_preprocessor, register_synthesizer
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
    from daily_mlops.orchestration.runner import load_dags, run_day
    from daily_mlops.storage.mongo import connect
    from daily_mlops.storage.registry import ModelRegistry

    if crash == "crash":  # dag.test runs the tasks in this process: the gate task sees the replacement
        from daily_mlops.loop import quality

        def crashed(*args, **kwargs):
            raise RuntimeError("the fidelity report crashed (gate_day_harness crash)")

        quality.batch_fidelity = crashed
    with connect(uri, db_name) as db:
        if crash == "classifier":
            from daily_mlops.loop.bootstrap import bootstrap
            from daily_mlops.ml import fidelity

            bootstrap(settings, db=db)

            def broken(*args, **kwargs):
                raise ValueError("window shape cannot be larger than input array shape")

            fidelity.classifier_roc_auc = broken  # after bootstrap, which scores TRTR with it
        else:
            reference = read_csv(settings.reference_data)
            schema = infer_schema(reference, target_column=settings.target_column,
                                  positive_label=settings.positive_label)
            reference = validate_batch(reference, schema)
            registry = ModelRegistry(db)
            register_synthesizer(registry, reference, schema, seed=settings.seed)
            register_preprocessor(registry, reference, schema)
        outcome = run_day(settings, db, dt.date.fromisoformat(day), evaluation_conf={"drift": drift},
                          dags=load_dags(settings))
        from rich.console import Console

        from daily_mlops.cli.output import summary_table

        table = Console(width=400, record=True, file=open(os.devnull, "w"))  # noqa: SIM115 (closed at exit)
        table.print(summary_table([outcome]))
        print("OUTCOME=" + json.dumps({
            "row": table.export_text(),
            "runs": {r.dag_id: {"state": r.state, "tasks": r.tasks} for r in outcome.runs},
            "stopped_by_gate": outcome.stopped_by_gate, "as_designed": outcome.as_designed,
            "summary": {k: v for k, v in outcome.summary.items()
                        if k.startswith(("quality", "drift")) or k in ("alert", "deployment_status")},
        }), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:7])
