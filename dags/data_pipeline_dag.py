"""data_pipeline_dag: the day's synthetic batch, from sampling to processed rows in MongoDB."""

from __future__ import annotations

from airflow.sdk import dag, task

from daily_mlops.orchestration.dags import DATA_DAG_ID, SCHEDULE, START_DATE, TAGS, default_args, parse_time_settings

SETTINGS = parse_time_settings()

DOC_MD = """
### data_pipeline_dag
1. **generate_data** samples `MLOPS_DAILY_ROWS` rows from the SDV GaussianCopulaSynthesizer (fit on the
   real reference data at bootstrap), seeded by the logical date, validates them against the schema and
   stores the raw batch as CSV in the GridFS bucket `raw_data`.
2. **preprocess_data** applies the preprocessor fit at bootstrap and writes one `processed_data`
   document per row, split 70/15/15 into pretrain / finetune / test.
3. **store_processing_metadata** checks the row counts and writes `processing_metadata` (status `ready`).

Rerunning a logical date replaces that date's documents; nothing is duplicated.
"""


@dag(
    dag_id=DATA_DAG_ID, schedule=SCHEDULE, start_date=START_DATE, catchup=False, max_active_runs=1,
    default_args=default_args(SETTINGS), tags=[*TAGS, "data"], doc_md=DOC_MD,
)
def data_pipeline_dag():
    @task
    def generate_data(**context) -> dict:
        from daily_mlops.loop.data import generate_data
        from daily_mlops.settings import load_settings

        return generate_data(load_settings(), logical_date=context["logical_date"])

    @task
    def preprocess_data(batch: dict, **context) -> dict:
        from daily_mlops.loop.data import preprocess_data
        from daily_mlops.settings import load_settings

        return preprocess_data(load_settings(), logical_date=context["logical_date"])

    @task
    def store_processing_metadata(processed: dict, **context) -> dict:
        from daily_mlops.loop.data import store_processing_metadata
        from daily_mlops.settings import load_settings

        return store_processing_metadata(load_settings(), logical_date=context["logical_date"])

    store_processing_metadata(preprocess_data(generate_data()))


data_pipeline_dag()
