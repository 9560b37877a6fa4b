"""``daily-mlops stack`` takes its Airflow settings from docker-compose.yml and localises them (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daily_mlops.errors import ConfigError
from daily_mlops.orchestration.stack import (
    compose_environment,
    generate_secrets,
    localise,
    required_variables,
    stack_environment,
    substitute,
    worker_queues,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ADDRESSES = {"postgres": ("127.0.0.1", 15432), "redis": ("127.0.0.1", 16379), "airflow-apiserver": ("localhost", 18080)}
PATHS = {"AIRFLOW__CORE__DAGS_FOLDER": "/src/dags", "MLOPS_HOME": "/h", "MLOPS_REFERENCE_DATA": "/ref.csv",
         "MLOPS_DEPLOYMENT_DIR": "/shared/deployed"}


def _local(variables: dict[str, str] | None = None) -> dict[str, str]:
    raw = compose_environment(COMPOSE)
    secrets = generate_secrets(required_variables(COMPOSE))
    return localise(raw, variables={**(variables or {}), **secrets}, addresses=ADDRESSES, paths=PATHS,
                    mongo_uri="mongodb://127.0.0.1:27999/")


def test_the_compose_settings_become_host_local_with_generated_secrets() -> None:
    """Executor, broker, result backend and metadata DB come from the file; hosts become 127.0.0.1 private ports."""
    env = _local()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:15432/airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@127.0.0.1:15432/airflow")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:") and "@127.0.0.1:16379/0" in env[
        "AIRFLOW__CELERY__BROKER_URL"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:18080/execution/"
    assert env["AIRFLOW_CONN_MONGO_DEFAULT"] == "mongo://127.0.0.1:27999/"
    assert env["MLOPS_MONGO_URI"] == "mongodb://127.0.0.1:27999/"
    assert env["MLOPS_DEPLOYMENT_DIR"] == "/shared/deployed" and env["AIRFLOW__CORE__DAGS_FOLDER"] == "/src/dags"
    assert env["MLOPS_TRAINING_QUEUE"] == "default"
    assert not any(v.startswith("/opt/airflow") for v in env.values()), env
    assert len(env["AIRFLOW__CORE__FERNET_KEY"]) == 44  # a urlsafe-base64 Fernet key


def test_secrets_are_new_at_each_start_and_the_shell_sets_defaults() -> None:
    """Two localisations share no secret; ${MLOPS_TRAINING_QUEUE:-default} takes the shell's value."""
    first, second = _local(), _local({"MLOPS_TRAINING_QUEUE": "training"})
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CELERY__BROKER_URL"):
        assert first[key] != second[key], key
    assert second["MLOPS_TRAINING_QUEUE"] == "training"
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "_AIRFLOW_WWW_USER_PASSWORD"} <= set(required_variables(COMPOSE))


def test_a_compose_setting_without_a_local_equivalent_is_refused() -> None:
    """A URL of a service the stack does not run, or an unmapped container path, names the variable."""
    raw = {"AIRFLOW__X__URL": "http://statsd:8125/"}
    with pytest.raises(ConfigError, match="AIRFLOW__X__URL points at the service 'statsd'"):
        localise(raw, variables={}, addresses=ADDRESSES, paths=PATHS, mongo_uri="mongodb://h/")
    with pytest.raises(ConfigError, match="AIRFLOW__X__DIR to the container path /opt/airflow/x"):
        localise({"AIRFLOW__X__DIR": "/opt/airflow/x"}, variables={}, addresses=ADDRESSES, paths=PATHS,
                 mongo_uri="mongodb://h/")
    with pytest.raises(ConfigError, match="REDIS_PASSWORD is required"):
        substitute("${REDIS_PASSWORD:?set it}", {}, where="x")
    assert substitute("$${A} ${B:-b} ${C-c}", {"C": ""}) == "${A} b "


def test_stack_environment_reads_the_file(tmp_path: Path, settings) -> None:
    """Every component's environment: the compose values, then the host's ports, auth and AIRFLOW_HOME."""
    env = stack_environment(settings, compose_file=COMPOSE, mongo_uri="mongodb://127.0.0.1:1/", api_port=18080,
                            postgres_port=15432, redis_port=16379, root=tmp_path / "stack",
                            variables=generate_secrets(required_variables(COMPOSE)))
    assert env["AIRFLOW_HOME"] == str(tmp_path / "stack" / "airflow")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["MLOPS_DEPLOYMENT_DIR"] == str(settings.deployment_path)
    assert env["MLOPS_DAILY_ROWS"] == "1200"  # the launcher's settings reach the workers
    assert worker_queues("worker-a", "training") == ["default"]
    assert worker_queues("worker-b", "training") == ["default", "training"]
    assert worker_queues("worker-b", "default") == ["default"]


def test_a_missing_compose_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the compose file"):
        compose_environment(tmp_path / "nope.yml")
