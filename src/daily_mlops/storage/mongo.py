"""The one way to reach MongoDB: the client, the database, its collections and indexes.

Three entry points, one mechanism (a :class:`pymongo.database.Database`):

* :func:`open_database` — for the CLI: ``MLOPS_MONGO_URI`` when set, otherwise
  the embedded SecantusDB server (a real MongoDB-wire server on WiredTiger,
  persisted under ``MLOPS_HOME/data/mongo``) started for the duration.
* :func:`airflow_database` — inside Airflow tasks: the ``mongo_default``
  connection through :class:`~airflow.providers.mongo.hooks.mongo.MongoHook`.
* :func:`database` — wraps an existing client (tests, mongomock).

Every entry point calls :func:`ensure_schema`, which creates the collections
and their indexes idempotently (``create_index`` on an existing identical
index is a no-op, MongoDB manual "db.collection.createIndex()").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

    from daily_mlops.settings import Settings

__all__ = [
    "ARTIFACTS_BUCKET",
    "BUCKETS",
    "MONGOSH_EXAMPLE",
    "COLLECTIONS",
    "INDEXES",
    "PROCESSED_DATA_BUCKET",
    "RAW_DATA_BUCKET",
    "UPLOADS_JOURNAL",
    "airflow_database",
    "database",
    "embedded_server",
    "ensure_schema",
    "connect",
    "mongo_uri",
    "open_database",
]

log = logging.getLogger(__name__)

#: A first mongosh query to try against the loop's database (printed by ``daily-mlops mongo``).
MONGOSH_EXAMPLE = "db.alerts.find().sort({timestamp: -1})"
#: GridFS bucket holding each logical date's raw synthetic batch (CSV).
RAW_DATA_BUCKET = "raw_data"
#: GridFS bucket holding each logical date's processed splits (one Parquet file per split).
PROCESSED_DATA_BUCKET = "processed_data"
#: GridFS bucket holding model weights, preprocessors and the synthesizer.
ARTIFACTS_BUCKET = "artifacts"
#: Every GridFS bucket the loop writes (``<bucket>.files`` / ``<bucket>.chunks``).
BUCKETS = (RAW_DATA_BUCKET, PROCESSED_DATA_BUCKET, ARTIFACTS_BUCKET)
#: Journal of GridFS uploads in progress (see :mod:`daily_mlops.storage.artifacts`).
UPLOADS_JOURNAL = "gridfs_uploads"

#: Plain collections and what each holds (see ARCHITECTURE.md for examples).
COLLECTIONS: dict[str, str] = {
    "processing_metadata": "one document per daily batch, its index: raw file, split files, split sizes, class balance",
    "model_metadata": "the model registry: one immutable document per (model_name, version)",
    "performance_metrics": "one document per (logical date, model version) evaluation",
    "training_events": "pretraining and fine-tuning runs",
    "evaluation_events": "evaluations, branch decisions and their outcome",
    "deployment_events": "deployments (and no-op re-deployments)",
    "alerts": "MODEL_PERFORMANCE_FAILURE alerts when every retraining attempt failed",
    "notifications": "messages sent by the loop (results, deployments, alerts)",
    UPLOADS_JOURNAL: "one document per GridFS upload in progress: file id, bucket, filename, writer",
}

#: (collection, keys, options) for every index the loop relies on.
INDEXES: list[tuple[str, list[tuple[str, int]], dict[str, Any]]] = [
    ("processing_metadata", [("batch_id", 1)], {"unique": True}),
    ("model_metadata", [("model_name", 1), ("model_version", -1)], {"unique": True}),
    ("model_metadata", [("model_name", 1), ("run_key", 1)], {"unique": True}),
    ("model_metadata", [("status", 1)], {}),
    ("performance_metrics", [("logical_date", 1), ("model_name", 1), ("model_version", 1)], {"unique": True}),
    ("training_events", [("model_name", 1), ("model_version", 1), ("stage", 1)], {"unique": True}),
    ("evaluation_events", [("logical_date", 1), ("event_type", 1), ("model_version", 1)], {"unique": True}),
    ("deployment_events", [("logical_date", 1), ("model_version", 1), ("status", 1)], {"unique": True}),
    ("deployment_events", [("status", 1), ("timestamp", -1)], {}),
    ("alerts", [("logical_date", 1), ("alert_type", 1)], {"unique": True}),
    ("alerts", [("timestamp", -1)], {}),
    ("notifications", [("logical_date", 1), ("kind", 1)], {"unique": True}),
    (UPLOADS_JOURNAL, [("bucket", 1), ("filename", 1)], {}),
]


def ensure_schema(db: Database) -> Database:
    """Create the collections, GridFS buckets and indexes if missing; return ``db``.

    Idempotent: running it twice leaves the same indexes (tested against a
    real MongoDB-wire server).
    """
    import gridfs
    from pymongo.errors import CollectionInvalid, OperationFailure

    existing = set(db.list_collection_names())
    for name in COLLECTIONS:
        if name not in existing:
            try:
                db.create_collection(name)
            except CollectionInvalid:  # another process created it first (pymongo's check)
                pass
            except OperationFailure as exc:  # ... or the server's: NamespaceExists
                if exc.code != 48:
                    raise
    for name, keys, options in INDEXES:
        db[name].create_index(keys, **options)
    for bucket in BUCKETS:
        gridfs.GridFSBucket(db, bucket_name=bucket)  # creates its indexes lazily on first write
        db[f"{bucket}.files"].create_index([("filename", 1), ("uploadDate", 1)])
        db[f"{bucket}.chunks"].create_index([("files_id", 1), ("n", 1)], unique=True)
    return db


def database(client: Any, name: str) -> Database:
    """Return database ``name`` of an existing client, with the schema ensured."""
    return ensure_schema(client[name])


@contextlib.contextmanager
def embedded_server(storage_path: Path, *, port: int = 0) -> Iterator[str]:
    """Run the embedded SecantusDB MongoDB-wire server; yield its ``mongodb://`` URI.

    The server listens on loopback ``port`` (0: a free port) and persists to ``storage_path``
    (WiredTiger); it stops when the context exits. SecantusDB is GPL-2.0 beta
    software and only the laptop/demo/test default; production uses MongoDB.

    Raises
    ------
    ConfigError
        When SecantusDB is not installed (install ``daily-mlops[embedded]`` or
        set ``MLOPS_MONGO_URI``) or its storage directory is locked by another
        running ``daily-mlops`` process.
    """
    try:
        from secantus import SecantusDBServer
    except ImportError:  # pragma: no cover - dev extra always installs it
        raise ConfigError(
            "MLOPS_MONGO_URI is not set and the embedded MongoDB server (SecantusDB) is not installed; "
            "install it with `pip install 'daily-mlops[embedded]'` or set MLOPS_MONGO_URI"
        ) from None
    storage_path.mkdir(parents=True, exist_ok=True)
    for noisy in ("secantus", "secantus.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        server = SecantusDBServer(host="127.0.0.1", port=port, storage_path=str(storage_path))
        server.__enter__()
    except Exception as exc:
        raise ConfigError(
            f"could not start the embedded MongoDB server on {storage_path}: {exc}. "
            "Is another daily-mlops process using MLOPS_HOME? Stop it, or set MLOPS_MONGO_URI."
        ) from exc
    try:
        yield server.uri
    finally:
        server.__exit__(None, None, None)


@contextlib.contextmanager
def mongo_uri(settings: Settings) -> Iterator[str]:
    """Yield the MongoDB URI the CLI uses: ``MLOPS_MONGO_URI``, or the embedded server's.

    The embedded server (when ``MLOPS_MONGO_URI`` is unset) runs until the
    context exits, so commands that hand the URI to Airflow tasks (``run``,
    ``airflow``) keep it open for their whole duration.
    """
    if settings.mongo_uri:
        yield settings.mongo_uri
    else:
        with embedded_server(settings.embedded_mongo_path) as uri:
            yield uri


@contextlib.contextmanager
def connect(uri: str, name: str) -> Iterator[Database]:
    """Yield database ``name`` at ``uri`` with the schema ensured; close the client after.

    Raises
    ------
    ConfigError
        When the URI is malformed or the server does not answer within 10 s.
    """
    client = _client(uri)
    try:
        _ping(client, uri, "MLOPS_MONGO_URI")
        yield database(client, name)
    finally:
        client.close()


@contextlib.contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """Yield the project database for the CLI (``MLOPS_MONGO_URI`` or the embedded server)."""
    with mongo_uri(settings) as uri, connect(uri, settings.mongo_db) as db:
        yield db


@contextlib.contextmanager
def airflow_database(settings: Settings) -> Iterator[Database]:
    """Yield the project database through Airflow's ``MongoHook`` (connection ``MLOPS_MONGO_CONN_ID``).

    Used inside DAG tasks only: the hook reads the connection when built, so
    it is built here at run time, never at DAG parse time (parsing must not touch the metadata database).

    Raises
    ------
    ConfigError
        When the connection is not defined (set ``AIRFLOW_CONN_MONGO_DEFAULT``).
    """
    from airflow.providers.mongo.hooks.mongo import MongoHook

    try:
        hook = MongoHook(mongo_conn_id=settings.mongo_conn_id)
    except Exception as exc:
        raise ConfigError(
            f"Airflow connection {settings.mongo_conn_id!r} is not usable ({exc}); define it, e.g. "
            f"AIRFLOW_CONN_{settings.mongo_conn_id.upper()}='mongo://host:27017/'"
        ) from exc
    with hook:
        client = hook.get_conn()
        _ping(client, f"connection {settings.mongo_conn_id}", f"Airflow connection {settings.mongo_conn_id!r}")
        yield database(client, settings.mongo_db)


def _client(uri: str) -> Any:
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError

    try:
        return MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise ConfigError(f"MLOPS_MONGO_URI={uri!r} is not a valid MongoDB URI: {exc}") from exc


def _ping(client: Any, uri: str, where: str) -> None:
    from pymongo.errors import PyMongoError

    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        raise ConfigError(f"cannot reach MongoDB at {where} ({_redact(uri)}): {exc}") from exc


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri
