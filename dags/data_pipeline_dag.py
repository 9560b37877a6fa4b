"""data_pipeline_dag: the day's synthetic batch, then the day's evaluation and deployment runs."""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag, task

from daily_mlops.orchestration.dags import (
    DATA_DAG_ID,
    DATA_SCHEDULE,
    DAY_PARAMS,
    DEPLOYMENT_DAG_ID,
    EVALUATION_DAG_ID,
    PREVIOUS_DAY_TASK,
    START_DATE,
    TAGS,
    day_params,
    day_run_id,
    default_args,
    logs_logical_date,
    previous_day_sensor,
    trigger_day_run,
)
from daily_mlops.settings.parse_time import parse_time_settings

SETTINGS = parse_time_settings()

DOC_MD = """
### data_pipeline_dag: one click runs a day
Trigger this DAG (or let the `@daily` schedule do it) and the whole day runs:

0. **wait_for_previous_day** waits until the previous logical date's runs of all three DAGs have finished
   (`depends_on_past`): that day deploys this day's champion. So days run in date order, also under
   `airflow backfill create` (whose runs ignore `max_active_runs`; pass `--reprocess-behavior failed` or
   `completed`, which Airflow requires for a DAG with `depends_on_past`).
1. **generate_data** samples `MLOPS_DAILY_ROWS` rows from the SDV GaussianCopulaSynthesizer (fit on the
   real reference data at bootstrap), seeded by the logical date, validates them against the schema and
   stores the raw batch as Parquet in the GridFS bucket `raw_data`.
2. **preprocess_data** applies the preprocessor fit at bootstrap, splits 70/15/15 into pretrain /
   finetune / test and writes one Parquet file per split to the GridFS bucket `processed_data`,
   indexed in `processing_metadata`.
3. **check_data_quality** is the data-quality gate: the SDMetrics diagnostic, unseen categories and
   null shares of the raw batch against the reference rows, with floors from the `MLOPS_QUALITY_*`
   settings. It records every figure (`quality`, with `status`), the day's drift (`drift`: recorded,
   never gated) and the batch's fidelity (`fidelity`: TSTR/TRTR ROC-AUC on the real holdout and SDMetrics
   quality scores of its first 5,000 rows; recorded, never gated, also for a failing batch) in
   `processing_metadata`. A failing batch fails this run with a message naming the
   worst columns, so `store_processing_metadata` never runs and the evaluation run's sensor fails:
   no model is judged or retrained on broken data.
4. **store_processing_metadata** checks the row counts and writes `processing_metadata` (status `ready`).
5. **trigger_evaluation** and **trigger_deployment** create the runs of `model_evaluation_pipeline` and
   `model_deployment_pipeline` for this logical date (run id `day__<date>`), passing on this run's params.
   They run last, so a failed batch starts nothing downstream, and clearing the failed task here resumes
   the day. A run that already exists for the date is left alone (the task is skipped).

The params are the day's: `f1_threshold` and `max_retrain_attempts` go to the evaluation run,
`require_approval` to the deployment run; `drift` (`none`, `shift`, `label_noise`, `broken`) alters this
run's sampled batch (docs/demo.md). Rerunning a logical date replaces that date's documents;
nothing is duplicated.
"""

DOCS = {
    PREVIOUS_DAY_TASK: f"""
**Waits** (poke every 5 s in one process, poke mode) until this DAG's previous run (the latest earlier logical date,
any run type) has finished, and so have the `{EVALUATION_DAG_ID}` and `{DEPLOYMENT_DAG_ID}` runs at its
logical date. `depends_on_past`: it runs only after the previous run's own wait succeeded. Done at once when
there is no earlier run. **Reads/writes** nothing. **XCom**: none.
""",
    "generate_data": """
**Reads** the approved synthesizer (GridFS, sha256 checked) and the stored schema.
**Writes** `raw_data/batch-<date>.parquet` (GridFS bucket `raw_data`) and `processing_metadata` (status `raw`).
**XCom**: `batch_id`, `n_rows`, `raw_sha256` (of the Parquet file).
""",
    "preprocess_data": """
**Reads** the day's raw Parquet file (sha256 checked) and the bootstrap preprocessor.
**Writes** one Parquet file per split (pretrain / finetune / test, 70/15/15, stratified) to the GridFS bucket
`processed_data` (replaced), indexed in `processing_metadata`.
**XCom**: `batch_id`, `preprocessor_version`, `rows` (row count per split).
""",
    "check_data_quality": """
**Reads** the day's raw Parquet file (sha256 checked, in chunks), the reference rows and real holdout of
the synthesizer that sampled it and the categories of the preprocessor that encoded it.
**Writes** `processing_metadata.quality` (SDMetrics diagnostic per column, unseen-category and null shares,
`status` passed/failed, `worst` checks, floors) and `processing_metadata.drift` (KSComplement /
TVComplement per column, positive rates, the `drift` param) and `processing_metadata.fidelity` (TSTR /
TRTR ROC-AUC, SDMetrics QualityReport scores of the batch's first 5,000 rows; never gated).
**Fails** (no retry) when a figure crosses its floor, naming the worst columns and their figures.
**XCom**: `batch_id`, `status`, `reason`, `drift` (one line), `seconds`.
""",
    "store_processing_metadata": """
**Reads** the day's `processed_data` (an aggregation counts the rows per split).
**Writes** `processing_metadata` with status `ready`, the split sizes and `positive_rate`.
**XCom**: `batch_id`, `n_rows`, `positive_rate` (fraction of positive labels).
""",
    "trigger_evaluation": f"""
**Creates** the `{EVALUATION_DAG_ID}` run for this logical date (run id `day__<date>`, conf
`f1_threshold`, `max_retrain_attempts` from this run's params). Skipped when a run exists for the date.
**XCom** `trigger_run_id`: the run id it created (the "Triggered DAG" link).
""",
    "trigger_deployment": f"""
**Creates** the `{DEPLOYMENT_DAG_ID}` run for this logical date (run id `day__<date>`, conf
`require_approval`), after the evaluation run exists so its sensor finds it. Skipped when a run exists
for the date. **XCom** `trigger_run_id`: the run id it created.
""",
}


@dag(
    dag_id=DATA_DAG_ID, schedule=DATA_SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "data"], doc_md=DOC_MD,
    description="Samples and preprocesses the day's batch, then triggers the day's evaluation and deployment runs.",
    params=day_params(SETTINGS, tuple(DAY_PARAMS)), user_defined_macros={"day_run_id": day_run_id},
)
def data_pipeline_dag():
    @task(doc_md=DOCS["generate_data"])
    @logs_logical_date
    def generate_data(params: dict, **context) -> dict:
        from daily_mlops.loop.data import generate_data
        from daily_mlops.settings import load_settings

        return generate_data(load_settings(), logical_date=context["logical_date"], drift=params["drift"])

    @task(doc_md=DOCS["preprocess_data"])
    @logs_logical_date
    def preprocess_data(batch: dict, **context) -> dict:
        from daily_mlops.loop.data import preprocess_data
        from daily_mlops.settings import load_settings

        return preprocess_data(load_settings(), logical_date=context["logical_date"])

    # retries=0: the gate is deterministic, a retry would judge the same batch again.
    @task(doc_md=DOCS["check_data_quality"], retries=0)
    @logs_logical_date
    def check_data_quality(processed: dict, **context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from daily_mlops.loop.quality import check_data_quality
        from daily_mlops.settings import load_settings

        result = check_data_quality(load_settings(), logical_date=context["logical_date"])
        if result["status"] == "failed":
            raise AirflowFailException(result["reason"])
        return result

    @task(doc_md=DOCS["store_processing_metadata"])
    @logs_logical_date
    def store_processing_metadata(checked: dict, **context) -> dict:
        from daily_mlops.loop.data import store_processing_metadata
        from daily_mlops.settings import load_settings

        return store_processing_metadata(load_settings(), logical_date=context["logical_date"])

    trigger_evaluation = trigger_day_run("trigger_evaluation", trigger_dag_id=EVALUATION_DAG_ID,
                                         doc_md=DOCS["trigger_evaluation"])
    # none_failed: an evaluation run that already existed (trigger skipped) still gets its deployment run.
    trigger_deployment = trigger_day_run("trigger_deployment", trigger_dag_id=DEPLOYMENT_DAG_ID,
                                         trigger_rule=TriggerRule.NONE_FAILED, doc_md=DOCS["trigger_deployment"])

    batch = generate_data()
    previous_day_sensor(SETTINGS, doc_md=DOCS[PREVIOUS_DAY_TASK]) >> batch
    checked = check_data_quality(preprocess_data(batch))
    store_processing_metadata(checked) >> trigger_evaluation >> trigger_deployment


data_pipeline_dag()
