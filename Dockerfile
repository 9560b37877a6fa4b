# Airflow image with the daily-mlops package, its DAGs and the bundled reference data.
#
# Built by `docker compose build` (every Airflow service in docker-compose.yml
# uses it). Dependencies are installed here, at build time, and never at
# container start (no _PIP_ADDITIONAL_REQUIREMENTS).
FROM apache/airflow:3.3.2-python3.11

# CPU-only PyTorch: installed first from the PyTorch CPU index, so that the
# project's `torch` requirement is already satisfied and pip never pulls the
# multi-GB CUDA build from PyPI.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Local state of the loop (MLOPS_HOME). models/ and data/ are replaced by shared
# volumes in docker-compose.yml; creating them here with the airflow user as
# owner lets fresh named volumes inherit that ownership.
USER root
RUN mkdir -p /opt/airflow/mlops/models/deployed /opt/airflow/mlops/data /opt/airflow/mlops/reference \
    && chown -R airflow:0 /opt/airflow/mlops \
    && chmod -R g+rwX /opt/airflow/mlops

# Packages are installed as the airflow user, as the official image expects.
USER airflow
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# The project itself. Pinning apache-airflow to the image's own version
# (AIRFLOW_VERSION is set by the base image) keeps pip from moving Airflow.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/daily-mlops/
COPY --chown=airflow:0 src /opt/airflow/daily-mlops/src
# The `celery` extra pins the CeleryExecutor's set (provider, celery < 5.7, kombu, psycopg2-binary, asyncpg):
# the same set `make stack` runs natively (pyproject.toml says how the versions were chosen).
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow/daily-mlops[celery]" \
    && python -c "import daily_mlops, torch, airflow.providers.mongo; print('torch', torch.__version__)" \
    && python -c "from airflow.providers.celery.executors.celery_executor import CeleryExecutor; import psycopg2, asyncpg"

# Reference data (the installed package cannot find the repo-relative default,
# so MLOPS_REFERENCE_DATA points here) and the DAGs (docker-compose.yml mounts
# ./dags over them read-only; they make the image usable on its own).
COPY --chown=airflow:0 data/reference /opt/airflow/mlops/reference
COPY --chown=airflow:0 dags /opt/airflow/dags

ENV MLOPS_HOME=/opt/airflow/mlops \
    MLOPS_REFERENCE_DATA=/opt/airflow/mlops/reference/german_credit.csv \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

WORKDIR /opt/airflow
