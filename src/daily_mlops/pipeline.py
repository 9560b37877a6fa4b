"""The daily loop: one function per DAG task, plus ``bootstrap``.

Each public function here is what one Airflow task calls. It takes a
:class:`~daily_mlops.settings.Settings`, the run's logical date and a few
small JSON values from XCom, and returns a small JSON value (ids, floats,
counters) for XCom. Data never travels through XCom: it is read from and
written to MongoDB, keyed by the logical date (and model version), so a rerun
of the same day replaces that day's documents instead of adding to them.

Inside Airflow the database comes from the ``mongo_default`` connection
(MongoHook); tests and the CLI pass ``db=`` explicitly.

The branch decision is the pure function :func:`next_step`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from daily_mlops._synthesis import LogicalDate, day_seed, logical_day
from daily_mlops.errors import MLOpsError

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

    from daily_mlops.settings import Settings

__all__ = [
    "BOOTSTRAP_DATE",
    "bootstrap",
    "deploy_model",
    "evaluate_model",
    "generate_data",
    "load_latest_model",
    "model_ready",
    "next_step",
    "notify_deployment_complete",
    "preprocess_data",
    "retrain_model",
    "send_alert",
    "send_evaluation_results",
    "store_processing_metadata",
]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

#: Logical date of the bootstrap batch the initial model is trained on.
BOOTSTRAP_DATE = dt.date(1970, 1, 1)
#: Step names returned by :func:`next_step`.
PASS, RETRAIN, ALERT = "pass", "retrain", "alert"


def next_step(f1: float, threshold: float, attempt: int, max_attempts: int) -> str:
    """Decide what follows an evaluation: ``"pass"``, ``"retrain"`` or ``"alert"``.

    Parameters
    ----------
    f1 : float
        F1 of the positive class in [0, 1] of the model just evaluated.
    threshold : float
        F1 the model must reach (``MLOPS_F1_THRESHOLD`` or the run's param).
    attempt : int
        Retraining attempts made so far (0 after the champion's evaluation).
    max_attempts : int
        Attempts allowed (``MLOPS_MAX_RETRAIN_ATTEMPTS``, at most 3).
    """
    if f1 >= threshold:
        return PASS
    return RETRAIN if attempt < max_attempts else ALERT


def _with_database(fn: F) -> F:
    """Open the Airflow connection's database when the caller passes no ``db=``."""

    @functools.wraps(fn)
    def wrapper(settings: "Settings", *args: Any, db: "Database | None" = None, **kwargs: Any) -> Any:
        if db is not None:
            return fn(settings, *args, db=db, **kwargs)
        from daily_mlops._mongo import airflow_database

        with airflow_database(settings) as opened:
            return fn(settings, *args, db=opened, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _timed(label: str) -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = round(time.perf_counter() - start, 3)
    log.info("%s took %.2f s", label, out["seconds"])


def _registry(db: "Database") -> Any:
    from daily_mlops._registry import ModelRegistry

    return ModelRegistry(db)


def _hyperparameters(settings: "Settings") -> dict[str, Any]:
    keys = ("d_model", "nhead", "num_layers", "dim_feedforward", "dropout", "batch_size", "learning_rate",
            "pretrain_epochs", "finetune_epochs", "retrain_epochs", "temperature", "mask_probability", "seed")
    return {k: getattr(settings, k) for k in keys}


# --------------------------------------------------------------------------- bootstrap
def bootstrap(settings: "Settings", *, db: "Database", progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit the synthesizer and preprocessor, train model version 1, register it as approved.

    Steps: read and validate ``MLOPS_REFERENCE_DATA``; fit the SDV
    GaussianCopulaSynthesizer on it (registry name ``synthesizer``); fit the
    preprocessor on it (registry name ``preprocessor``); sample the bootstrap
    batch (``MLOPS_DAILY_ROWS`` rows, logical date 1970-01-01) and split it
    70/15/15; contrastive pretraining on the pretrain split, fine-tuning on the
    fine-tune split; evaluate on the test split and on every real reference
    row; register ``tabtransformer`` version 1 with status ``approved``.

    Idempotent: when version 1 exists (run key ``bootstrap``) nothing is
    trained or written and its record is returned with ``created: False``.

    Returns
    -------
    dict
        ``version``, ``created``, ``metrics`` (test split), ``real_metrics``
        (all reference rows), ``seconds``.

    Raises
    ------
    SchemaError
        When the reference CSV lacks the target column or its labels are not binary.
    """
    from daily_mlops._registry import MODEL_NAME, SYNTHESIZER_NAME

    say = progress or (lambda message: None)
    registry = _registry(db)
    existing = db["model_metadata"].find_one({"model_name": MODEL_NAME, "run_key": "bootstrap"}, {"_id": 0})
    if existing is not None:
        return {"version": existing["version"], "created": False, "metrics": existing["metrics"].get("test", {}),
                "real_metrics": existing["metrics"].get("reference", {}), "seconds": 0.0}

    from daily_mlops._metrics import choose_decision_threshold, classification_metrics
    from daily_mlops._model_io import state_dict_to_bytes
    from daily_mlops._models import PREPROCESSOR_NAME
    from daily_mlops._network import TabTransformer
    from daily_mlops._preprocessing import TabularPreprocessor, infer_schema, read_csv, split_indices, validate_batch
    from daily_mlops._synthesis import DistributionModel
    from daily_mlops._training import finetune, predict_proba, pretrain_contrastive, seed_everything

    started = time.perf_counter()
    say(f"reading reference data {settings.reference_data}")
    reference = read_csv(settings.reference_data)
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)

    say("fitting the SDV GaussianCopulaSynthesizer on the reference data")
    with _timed("synthesizer fit") as t_synth:
        synth = DistributionModel(seed=settings.seed).fit(reference)
    synth_doc = registry.register(
        SYNTHESIZER_NAME, run_key="bootstrap", artifacts={"synthesizer": synth.to_bytes()}, status="approved",
        hyperparameters={"synthesizer": "GaussianCopulaSynthesizer", "seed": settings.seed},
        trained_on=["reference"],
        extra={"sdv_metadata": synth.metadata_, "schema": schema, "n_reference_rows": int(len(reference)),
               "fit_seconds": t_synth["seconds"]},
    )
    say("fitting the preprocessor on the reference data")
    pre = TabularPreprocessor(schema).fit(reference)
    pre_doc = registry.register(
        PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": pre.to_bytes()}, status="approved",
        trained_on=["reference"], signature=pre.signature(), extra={"schema": schema},
    )

    say(f"sampling the bootstrap batch ({settings.daily_rows} rows)")
    batch = validate_batch(
        synth.generate(settings.daily_rows, seed=settings.seed, logical_date=BOOTSTRAP_DATE), schema
    )
    encoded = pre.transform(batch)
    splits = split_indices(encoded.y, seed=settings.seed)
    part = {name: _subset(encoded, idx) for name, idx in splits.items()}

    seed_everything(settings.seed)
    model = TabTransformer(
        cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=settings.d_model, nhead=settings.nhead,
        num_layers=settings.num_layers, dim_feedforward=settings.dim_feedforward, dropout=settings.dropout,
    )
    say(f"contrastive pretraining: {settings.pretrain_epochs} epochs on {len(part['pretrain'])} rows")
    with _timed("pretraining") as t_pre:
        pre_losses = pretrain_contrastive(
            model, part["pretrain"].x_cat, part["pretrain"].x_num, epochs=settings.pretrain_epochs,
            batch_size=settings.batch_size, learning_rate=settings.learning_rate, temperature=settings.temperature,
            mask_probability=settings.mask_probability, seed=settings.seed,
            on_epoch=lambda e, loss: say(f"  pretrain epoch {e}: NT-Xent {loss:.4f}"),
        ) if settings.pretrain_epochs else []
    say(f"fine-tuning: {settings.finetune_epochs} epochs on {len(part['finetune'])} rows")
    with _timed("fine-tuning") as t_ft:
        ft_losses = finetune(
            model, part["finetune"].x_cat, part["finetune"].x_num, part["finetune"].y,
            epochs=settings.finetune_epochs, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            seed=settings.seed, on_epoch=lambda e, loss: say(f"  fine-tune epoch {e}: cross-entropy {loss:.4f}"),
        )
    threshold = choose_decision_threshold(
        part["finetune"].y, predict_proba(model, part["finetune"].x_cat, part["finetune"].x_num)
    )
    test_metrics = classification_metrics(
        part["test"].y, predict_proba(model, part["test"].x_cat, part["test"].x_num), threshold=threshold
    )
    real = pre.transform(reference)
    real_metrics = classification_metrics(real.y, predict_proba(model, real.x_cat, real.x_num), threshold=threshold)

    doc = registry.register(
        MODEL_NAME, run_key="bootstrap", artifacts={"weights": state_dict_to_bytes(model)}, status="approved",
        hyperparameters=_hyperparameters(settings),
        metrics={**test_metrics, "test": test_metrics, "reference": real_metrics},
        trained_on=["batch-bootstrap"], evaluated_on=["batch-bootstrap", "reference"],
        n_parameters=model.n_parameters, signature=pre.signature(), logical_date=BOOTSTRAP_DATE.isoformat(),
        extra={
            "architecture": model.config, "decision_threshold": threshold,
            "preprocessor_version": pre_doc["version"], "synthesizer_version": synth_doc["version"],
            "split_sizes": {k: int(len(v)) for k, v in splits.items()},
        },
    )
    from daily_mlops._events import record_training_event

    for stage, losses, secs, rows in (("pretrain", pre_losses, t_pre["seconds"], len(part["pretrain"])),
                                      ("finetune", ft_losses, t_ft["seconds"], len(part["finetune"]))):
        record_training_event(
            db, model_name=MODEL_NAME, model_version=doc["version"], stage=stage, losses=[float(x) for x in losses],
            epochs=len(losses), seconds=secs, rows=int(rows), batch_id="batch-bootstrap", logical_date=None,
        )
    return {"version": doc["version"], "created": True, "metrics": test_metrics, "real_metrics": real_metrics,
            "decision_threshold": threshold, "n_parameters": model.n_parameters,
            "seconds": round(time.perf_counter() - started, 1)}


def _subset(encoded: Any, idx: Any) -> Any:
    from daily_mlops._preprocessing import EncodedBatch

    return EncodedBatch(x_cat=encoded.x_cat[idx], x_num=encoded.x_num[idx],
                        y=None if encoded.y is None else encoded.y[idx])


# --------------------------------------------------------------------------- data_pipeline_dag
@_with_database
def generate_data(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any]:
    """Sample the day's batch from the synthesizer and store it in the GridFS bucket ``raw_data``.

    ``MLOPS_DAILY_ROWS`` rows, seeded by (``MLOPS_SEED``, logical date): the
    same day always gives the same rows. The batch is validated against the
    schema before anything is written.

    Returns
    -------
    dict
        ``batch_id``, ``n_rows``, ``raw_sha256``.
    """
    from daily_mlops._batches import batch_id_for, store_processing_metadata, store_raw_batch
    from daily_mlops._preprocessing import validate_batch
    from daily_mlops._registry import SYNTHESIZER_NAME
    from daily_mlops._synthesis import DistributionModel

    day = logical_day(logical_date)
    registry = _registry(db)
    synth_doc = registry.latest(SYNTHESIZER_NAME, statuses=("approved",))
    synth = DistributionModel.from_bytes(
        registry.load_artifact(synth_doc, "synthesizer"), sha256=synth_doc["sha256"]["synthesizer"]
    )
    frame = validate_batch(synth.generate(settings.daily_rows, seed=settings.seed, logical_date=day), synth_doc["schema"])
    ref = store_raw_batch(db, frame, logical_date=day)
    store_processing_metadata(db, {
        "status": "raw", "raw_file": ref, "n_rows": int(len(frame)), "synthesizer_version": synth_doc["version"],
        "sampling_seed": day_seed(settings.seed, day),
    }, logical_date=day)
    return {"batch_id": batch_id_for(day), "n_rows": int(len(frame)), "raw_sha256": ref["sha256"]}


@_with_database
def preprocess_data(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any]:
    """Validate the day's raw batch, apply the fitted preprocessor, split, store ``processed_data``.

    The preprocessor is the one fit at bootstrap (registry ``preprocessor``),
    reused unchanged. The split is stratified 70/15/15 pretrain / finetune /
    test, seeded by the day.

    Returns
    -------
    dict
        ``batch_id`` and the row count per split.

    Raises
    ------
    SchemaError
        When the raw batch does not match the schema (nothing is written).
    IntegrityError
        When the raw file's sha256 does not match the one recorded.
    """
    from daily_mlops._batches import batch_id_for, load_processing_metadata, load_raw_batch, store_processed_batch
    from daily_mlops._models import PREPROCESSOR_NAME
    from daily_mlops._preprocessing import TabularPreprocessor, split_indices, validate_batch

    day = logical_day(logical_date)
    registry = _registry(db)
    meta = load_processing_metadata(db, day)
    pre_doc = registry.latest(PREPROCESSOR_NAME, statuses=("approved",))
    pre = TabularPreprocessor.from_bytes(registry.load_artifact(pre_doc, "preprocessor"),
                                         sha256=pre_doc["sha256"]["preprocessor"])
    frame = validate_batch(load_raw_batch(db, meta["raw_file"]), pre.schema)
    encoded = pre.transform(frame)
    splits = split_indices(encoded.y, seed=day_seed(settings.seed, day))
    counts = store_processed_batch(db, encoded, splits, logical_date=day)
    return {"batch_id": batch_id_for(day), "preprocessor_version": pre_doc["version"], "rows": counts}


@_with_database
def store_processing_metadata(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any]:
    """Check the stored rows and write the day's ``processing_metadata`` (status ``ready``).

    Returns
    -------
    dict
        ``batch_id``, ``n_rows``, ``positive_rate`` (fraction in [0, 1]).

    Raises
    ------
    MLOpsError
        When the rows in ``processed_data`` do not add up to the raw batch.
    """
    from daily_mlops._batches import batch_id_for, load_processing_metadata, split_counts
    from daily_mlops._batches import store_processing_metadata as store

    day = logical_day(logical_date)
    batch_id = batch_id_for(day)
    meta = load_processing_metadata(db, day)
    per_split = split_counts(db, day)
    n_rows = sum(d["rows"] for d in per_split.values())
    if n_rows != meta["n_rows"]:
        raise MLOpsError(
            f"{batch_id}: processed_data holds {n_rows} rows but the raw batch has {meta['n_rows']}; "
            "rerun preprocess_data for this logical date"
        )
    positives = sum(d["positives"] for d in per_split.values())
    doc = store(db, {
        **{k: v for k, v in meta.items() if k not in ("batch_id", "logical_date")},
        "status": "ready",
        "splits": {name: int(d["rows"]) for name, d in sorted(per_split.items())},
        "positive_rate": round(positives / n_rows, 6),
        "positive_label": settings.positive_label,
        "target_column": settings.target_column,
    }, logical_date=day)
    return {"batch_id": batch_id, "n_rows": n_rows, "positive_rate": doc["positive_rate"]}


# --------------------------------------------------------------------------- model_evaluation_pipeline
@_with_database
def load_latest_model(settings: "Settings", *, db: "Database") -> dict[str, Any]:
    """The champion: the deployed version, else the newest approved one; its integrity checked.

    Returns
    -------
    dict
        ``model_name``, ``version``, ``status``, ``sha256`` (of the weights).

    Raises
    ------
    NotFoundError
        When there is no model (run ``daily-mlops bootstrap``).
    IntegrityError
        When its artifacts are missing or altered.
    """
    from daily_mlops._registry import MODEL_NAME
    from daily_mlops.errors import IntegrityError

    registry = _registry(db)
    doc = registry.champion(MODEL_NAME)
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    return {"model_name": MODEL_NAME, "version": int(doc["version"]), "status": doc["status"],
            "sha256": doc["sha256"]["weights"]}


def _record_evaluation(
    db: "Database", *, day: dt.date, version: int, metrics: dict[str, Any], attempt: int, f1_threshold: float,
    run_id: str | None,
) -> dict[str, Any]:
    """Write ``performance_metrics`` and the ``model_evaluated`` event; return the XCom result."""
    from daily_mlops._batches import batch_id_for
    from daily_mlops._events import record_evaluation_event, record_performance
    from daily_mlops._registry import MODEL_NAME

    record_performance(db, logical_date=day, model_name=MODEL_NAME, model_version=version, metrics=metrics,
                       attempt=attempt, f1_threshold=f1_threshold, batch_id=batch_id_for(day), run_id=run_id)
    passed = metrics["f1"] >= f1_threshold
    record_evaluation_event(db, "model_evaluated", logical_date=day, model_version=int(version), attempt=attempt,
                            f1=metrics["f1"], roc_auc=metrics["roc_auc"], f1_threshold=f1_threshold, passed=passed,
                            batch_id=batch_id_for(day), run_id=run_id)
    return {"version": int(version), "attempt": int(attempt), "f1": metrics["f1"], "roc_auc": metrics["roc_auc"],
            "passed": bool(passed), "f1_threshold": float(f1_threshold)}


def _score(bundle: Any, test: Any) -> dict[str, Any]:
    from daily_mlops._metrics import classification_metrics

    return classification_metrics(test.y, bundle.predict_proba_encoded(test), threshold=bundle.decision_threshold)


@_with_database
def evaluate_model(
    settings: "Settings", *, version: int, logical_date: LogicalDate, f1_threshold: float, attempt: int = 0,
    run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """Score a model version on the day's held-out test split; record it.

    Writes ``performance_metrics`` (keyed by logical date and model version,
    tagged with the DAG ``run_id``) and an ``evaluation_events`` document
    (``model_evaluated``).

    Returns
    -------
    dict
        ``version``, ``attempt``, ``f1``, ``roc_auc`` (floats in [0, 1]), ``passed``, ``f1_threshold``.

    Raises
    ------
    NotFoundError
        When the version or the day's test split does not exist.
    IntegrityError
        When the version's artifacts are missing or altered.
    """
    from daily_mlops._batches import load_split
    from daily_mlops._models import load_version
    from daily_mlops._registry import MODEL_NAME

    day = logical_day(logical_date)
    registry = _registry(db)
    bundle = load_version(registry, registry.get(MODEL_NAME, version))
    metrics = _score(bundle, load_split(db, day, "test"))
    return _record_evaluation(db, day=day, version=int(version), metrics=metrics, attempt=attempt,
                              f1_threshold=f1_threshold, run_id=run_id)


@_with_database
def retrain_model(
    settings: "Settings", *, logical_date: LogicalDate, attempt: int, previous: list[dict[str, Any] | None],
    f1_threshold: float, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """One retraining attempt: fine-tune the best model so far on the day's fine-tune split.

    The parent is the version with the highest F1 among ``previous`` (the
    XCom results of the champion's evaluation and earlier attempts). The
    challenger is scored on the day's test split, registered as a new
    version with its metrics, ``parent_version`` and lineage, and moved to
    ``approved`` when it reaches ``f1_threshold``, else ``rejected``. The
    attempt's seed is the day's seed plus ``attempt``, so attempts differ but
    reruns repeat.

    Idempotent: a rerun of the same (logical date, attempt) reuses the version
    registered the first time (run key ``retrain:<date>:attempt-<n>``) and
    its recorded metrics.

    Returns
    -------
    dict
        As :func:`evaluate_model`, plus ``parent_version``.
    """
    from daily_mlops._batches import batch_id_for, load_split
    from daily_mlops._events import record_training_event
    from daily_mlops._metrics import choose_decision_threshold
    from daily_mlops._model_io import state_dict_to_bytes
    from daily_mlops._models import ModelBundle, load_version
    from daily_mlops._registry import MODEL_NAME
    from daily_mlops._training import finetune, predict_proba, seed_everything

    day = logical_day(logical_date)
    tried = [r for r in previous if r]
    if not tried:
        raise MLOpsError(f"retraining attempt {attempt} on {day} got no earlier evaluation to start from")
    parent = max(tried, key=lambda r: (r["f1"], r["version"]))
    registry = _registry(db)
    run_key = f"retrain:{day.isoformat()}:attempt-{attempt}"
    doc = db["model_metadata"].find_one({"model_name": MODEL_NAME, "run_key": run_key}, {"_id": 0})
    if doc is None:
        parent_doc = registry.get(MODEL_NAME, parent["version"])
        bundle = load_version(registry, parent_doc)
        data = load_split(db, day, "finetune")
        seed = day_seed(settings.seed, day) + attempt
        seed_everything(seed)
        with _timed(f"retraining attempt {attempt}") as t:
            losses = finetune(bundle.model, data.x_cat, data.x_num, data.y, epochs=settings.retrain_epochs,
                              batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=seed)
        threshold = choose_decision_threshold(data.y, predict_proba(bundle.model, data.x_cat, data.x_num))
        challenger = ModelBundle(model=bundle.model, preprocessor=bundle.preprocessor, decision_threshold=threshold,
                                 model_name=MODEL_NAME, version=None)
        metrics = _score(challenger, load_split(db, day, "test"))
        doc = registry.register(
            MODEL_NAME, run_key=run_key, artifacts={"weights": state_dict_to_bytes(bundle.model)},
            status="candidate", parent_version=int(parent["version"]),
            hyperparameters={**_hyperparameters(settings), "seed": seed, "epochs": settings.retrain_epochs},
            metrics={**metrics, "test": metrics},
            trained_on=list(dict.fromkeys([*parent_doc.get("trained_on", []), batch_id_for(day)])),
            evaluated_on=[batch_id_for(day)],
            n_parameters=parent_doc.get("n_parameters"), signature=parent_doc.get("signature"),
            logical_date=day.isoformat(),
            extra={"architecture": parent_doc["architecture"], "decision_threshold": threshold,
                   "preprocessor_version": parent_doc["preprocessor_version"],
                   "synthesizer_version": parent_doc.get("synthesizer_version"), "attempt": attempt},
        )
        record_training_event(db, model_name=MODEL_NAME, model_version=doc["version"], stage="retrain",
                              losses=[float(x) for x in losses], epochs=len(losses), seconds=t["seconds"],
                              rows=int(len(data)), batch_id=batch_id_for(day), logical_date=day.isoformat(),
                              parent_version=int(parent["version"]), attempt=attempt)
    metrics = doc["metrics"]["test"]
    result = _record_evaluation(db, day=day, version=int(doc["version"]), metrics=metrics, attempt=attempt,
                                f1_threshold=f1_threshold, run_id=run_id)
    reason = f"F1 {result['f1']:.4f} vs threshold {f1_threshold:.4f} (run {run_id})"
    if result["passed"] and doc["status"] in ("candidate", "rejected"):  # rejected: a rerun with a lower bar
        registry.set_status(MODEL_NAME, doc["version"], "approved", reason=reason, logical_date=day.isoformat())
    elif not result["passed"] and doc["status"] == "candidate":
        registry.set_status(MODEL_NAME, doc["version"], "rejected", reason=reason, logical_date=day.isoformat())
    return {**result, "parent_version": int(parent["version"])}


def _tried(results: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [r for r in results if r]


@_with_database
def send_evaluation_results(
    settings: "Settings", *, logical_date: LogicalDate, f1_threshold: float, run_id: str | None = None,
    db: "Database",
) -> dict[str, Any]:
    """Record the day's passing model version as approved for deployment, and notify.

    The evaluations of this DAG run (``run_id``) are read from
    ``performance_metrics`` rather than from the XCom of attempts that may
    have been skipped; the approved version is the latest attempt that reached
    ``f1_threshold`` and is approved (or deployed) in the registry.

    Returns
    -------
    dict
        ``approved_version``, ``f1``, ``attempts``.

    Raises
    ------
    MLOpsError
        When no evaluation of the day reached the threshold (the DAG's branches prevent this).
    """
    from daily_mlops._alerts import resolve_alerts
    from daily_mlops._events import record_evaluation_event, record_notification

    day = logical_day(logical_date)
    query: dict[str, Any] = {"logical_date": day.isoformat()}
    if run_id is not None:
        query["run_id"] = run_id
    tried = list(db["performance_metrics"].find(query, {"_id": 0}).sort("attempt", 1))
    registry = _registry(db)
    passing = [r for r in tried if r["f1"] >= f1_threshold
               and registry.get(r["model_name"], r["model_version"])["status"] in ("approved", "deployed")]
    if not passing:
        raise MLOpsError(
            f"no model version reached F1 {f1_threshold} on {day}; rerun model_evaluation_pipeline for that date"
        )
    best = passing[-1]
    attempts = max(r["attempt"] for r in tried)
    version = int(best["model_version"])
    # One day-level event (model_version None): a rerun with another outcome replaces it.
    record_evaluation_event(db, "evaluation_passed", logical_date=day, model_version=None,
                            approved_version=version, f1=best["f1"], f1_threshold=f1_threshold,
                            attempts=attempts, versions_tried=[r["model_version"] for r in tried])
    resolve_alerts(db, logical_date=day, resolution=f"rerun approved model version {version}")
    record_notification(db, "evaluation_results", logical_date=day,
                        message=f"{day}: model version {version} approved with F1 {best['f1']:.4f} "
                                f">= {f1_threshold:.4f} after {attempts} retraining attempt(s)",
                        approved_version=version, f1=best["f1"])
    return {"approved_version": version, "f1": best["f1"], "attempts": attempts}


@_with_database
def send_alert(
    settings: "Settings", *, logical_date: LogicalDate, results: list[dict[str, Any] | None], f1_threshold: float,
    dag_id: str | None = None, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """Every attempt failed: write the ``MODEL_PERFORMANCE_FAILURE`` alert and its evaluation event.

    The DAG task then fails the run (so the Airflow UI shows it red) and the
    task's notifiers fire.

    Returns
    -------
    dict
        ``message``, ``f1_score``, ``retry_attempts``, ``model_versions_tried``.
    """
    from daily_mlops._alerts import raise_performance_alert
    from daily_mlops._events import record_evaluation_event

    day = logical_day(logical_date)
    tried = _tried(results)
    if not tried:
        raise MLOpsError(f"send_alert on {day} got no evaluation results")
    best = max(tried, key=lambda r: r["f1"])
    attempts = max(r["attempt"] for r in tried)
    versions = [r["version"] for r in tried]
    alert = raise_performance_alert(db, logical_date=day, f1_score=best["f1"], f1_threshold=f1_threshold,
                                    retry_attempts=attempts, model_versions_tried=versions, dag_id=dag_id,
                                    run_id=run_id)
    record_evaluation_event(db, "alert_raised", logical_date=day, model_version=None, f1=best["f1"],
                            f1_threshold=f1_threshold, attempts=attempts, versions_tried=versions,
                            message=alert["message"])
    return {"message": alert["message"], "f1_score": best["f1"], "retry_attempts": attempts,
            "model_versions_tried": versions}


# --------------------------------------------------------------------------- model_deployment_pipeline
@_with_database
def model_ready(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any] | None:
    """The day's approved version when it exists and its artifacts are intact, else ``None``.

    Raises
    ------
    MLOpsError
        When the day's approved version has since been rejected or retired.
    IntegrityError
        When the approved version's artifact is missing or its sha256 differs
        (the sensor fails instead of waiting).
    """
    from daily_mlops._registry import MODEL_NAME
    from daily_mlops.errors import IntegrityError

    day = logical_day(logical_date)
    event = db["evaluation_events"].find_one(
        {"logical_date": day.isoformat(), "event_type": "evaluation_passed", "model_version": None}
    )
    if event is None:
        return None
    registry = _registry(db)
    doc = registry.get(MODEL_NAME, event["approved_version"])
    if doc["status"] not in ("approved", "deployed"):
        raise MLOpsError(
            f"{MODEL_NAME} version {doc['version']} was approved for {day} but is now {doc['status']!r}; "
            "rerun model_evaluation_pipeline for that logical date"
        )
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    return {"version": int(doc["version"]), "sha256": doc["sha256"]["weights"], "status": doc["status"]}


@_with_database
def deploy_model(settings: "Settings", *, logical_date: LogicalDate, version: int, db: "Database") -> dict[str, Any]:
    """Copy the approved version atomically to ``MLOPS_DEPLOYMENT_DIR`` and record it.

    Returns
    -------
    dict
        ``version``, ``status`` (``deployed`` or ``already_deployed``), ``deployment_path``, ``sha256``.
    """
    from daily_mlops._deployment import deploy_version
    from daily_mlops._registry import MODEL_NAME

    event = deploy_version(_registry(db), MODEL_NAME, version, directory=settings.deployment_path,
                           logical_date=logical_day(logical_date))
    return {k: event[k] for k in ("version", "status", "deployment_path", "sha256")}


@_with_database
def notify_deployment_complete(
    settings: "Settings", *, logical_date: LogicalDate, deployment: dict[str, Any], db: "Database"
) -> dict[str, Any]:
    """Write the ``deployment_complete`` notification; return its message."""
    from daily_mlops._events import record_notification

    day = logical_day(logical_date)
    verb = "deployed" if deployment["status"] == "deployed" else "was already deployed"
    message = f"{day}: model version {deployment['version']} {verb} to {deployment['deployment_path']}"
    record_notification(db, "deployment_complete", logical_date=day, message=message, **deployment)
    return {"message": message}

