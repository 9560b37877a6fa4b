"""Unit tests for daily_mlops.orchestration.environment: the Mongo URI as an Airflow connection."""

from __future__ import annotations

import pytest

from daily_mlops.errors import ConfigError
from daily_mlops.orchestration.environment import airflow_conn_uri


@pytest.mark.parametrize(("mongo_uri", "expected"), [
    ("mongodb://127.0.0.1:27017/", "mongo://127.0.0.1:27017/"),
    ("mongodb://127.0.0.1:27017", "mongo://127.0.0.1:27017/"),  # a path is added: MongoHook reads the schema
    ("mongodb://u:p@mongo:27017/mlops?authSource=admin", "mongo://u:p@mongo:27017/mlops?authSource=admin"),
    ("mongodb://mongo:27017?replicaSet=rs0", "mongo://mongo:27017/?replicaSet=rs0"),  # options stay extras
    ("mongodb://h1:1,h2:2/?tls=true", "mongo://h1:1,h2:2/?tls=true"),
])
def test_airflow_conn_uri_table(mongo_uri: str, expected: str) -> None:
    """A mongodb:// URI becomes the mongo:// form of AIRFLOW_CONN_MONGO_DEFAULT, keeping credentials and options."""
    assert airflow_conn_uri(mongo_uri) == expected


@pytest.mark.parametrize(("mongo_uri", "fragment"), [
    ("mongodb+srv://cluster.example/", "srv"),
    ("postgres://x/", "must start with mongodb://"),
    ("127.0.0.1:27017", "must start with mongodb://"),
])
def test_airflow_conn_uri_refuses_what_mongohook_cannot_take(mongo_uri: str, fragment: str) -> None:
    """SRV URIs and non-MongoDB URIs raise ConfigError naming the fix instead of a broken connection."""
    with pytest.raises(ConfigError, match=fragment):
        airflow_conn_uri(mongo_uri)
