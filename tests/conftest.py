"""Shared fixtures: settings, a mongomock database and a real MongoDB-wire server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from daily_mlops.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_user_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore a MLOPS_CONFIG the user exported: tests see the bundled YAML, which holds the defaults."""
    monkeypatch.delenv("MLOPS_CONFIG", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Small, fast settings rooted in a temporary MLOPS_HOME."""
    return Settings(
        home=tmp_path,
        daily_rows=1200,
        num_layers=2,
        pretrain_epochs=1,
        finetune_epochs=2,
        retrain_epochs=1,
        batch_size=128,
        _env_file=None,
    )


@pytest.fixture
def mock_db():
    """A mongomock database with the project's collections and indexes.

    mongomock 4.3's GridFS shim does not work with pymongo 4.20, so anything
    touching GridFS is tested against the real server (``real_db``).
    """
    import mongomock

    from daily_mlops.storage.mongo import COLLECTIONS, INDEXES

    db = mongomock.MongoClient()["mlops_test"]
    for name in COLLECTIONS:
        db.create_collection(name)
    for name, keys, options in INDEXES:
        db[name].create_index(keys, **options)
    return db


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MLOPS_* variable set and a working directory without a ``.env`` file."""
    for name in list(os.environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URI of a real MongoDB-wire server (SecantusDB on WiredTiger) for the whole session."""
    from daily_mlops.storage.mongo import embedded_server

    with embedded_server(tmp_path_factory.mktemp("secantus")) as uri:
        yield uri


@pytest.fixture
def real_db(mongo_uri: str):
    """A fresh database on the real server, dropped afterwards."""
    from pymongo import MongoClient

    from daily_mlops.storage.mongo import database

    client = MongoClient(mongo_uri, tz_aware=True)
    name = f"t_{uuid.uuid4().hex[:10]}"
    try:
        yield database(client, name)
    finally:
        client.drop_database(name)
        client.close()
