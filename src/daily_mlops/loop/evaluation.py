"""The tasks of ``model_evaluation_pipeline``: score the champion, retrain, approve, alert.

Each function is what one Airflow task calls: load through
:mod:`daily_mlops.storage`, a pure step from :mod:`daily_mlops.ml` or
:mod:`daily_mlops.decisions`, save through :mod:`daily_mlops.storage`. Every
write is keyed by (logical date, model version), so a rerun of the same DAG
run converges to the same documents. Results are small JSON values for XCom.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops import decisions
from daily_mlops.dates import LogicalDate, day_seed, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop._common import hyperparameters, load_model_version, timed, with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database

    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings

__all__ = ["evaluate_model", "load_champion", "retrain_model", "send_alert", "send_evaluation_results"]


@with_database
def load_champion(settings: "Settings", *, db: "Database") -> dict[str, Any]:
    """The champion: the deployed version, else the newest approved one; its integrity checked.

    Returns
    -------
    dict
        ``model_name``, ``model_version``, ``status``, ``sha256`` (of the weights).

    Raises
    ------
    NotFoundError
        When there is no model (run ``daily-mlops bootstrap``).
    IntegrityError
        When its artifacts are missing or altered.
    """
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    registry = ModelRegistry(db)
    doc = registry.champion(MODEL_NAME)
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    return {"model_name": MODEL_NAME, "model_version": int(doc["model_version"]), "status": doc["status"],
            "sha256": doc["sha256"]["weights"]}


def _record_evaluation(
    db: "Database", *, day: dt.date, model_version: int, metrics: dict[str, Any], attempt: int,
    f1_threshold: float, run_id: str | None,
) -> dict[str, Any]:
    """Write ``performance_metrics`` and the ``model_evaluated`` event; return the XCom result."""
    from daily_mlops.storage.batches import batch_id_for
    from daily_mlops.storage.events import record_evaluation_event, record_performance
    from daily_mlops.storage.registry import MODEL_NAME

    passed = decisions.passes(metrics["f1"], f1_threshold)
    record_performance(db, logical_date=day, model_name=MODEL_NAME, model_version=model_version, metrics=metrics,
                       attempt=attempt, f1_threshold=f1_threshold, batch_id=batch_id_for(day), run_id=run_id)
    record_evaluation_event(db, "model_evaluated", logical_date=day, model_version=int(model_version),
                            attempt=attempt, f1=metrics["f1"], roc_auc=metrics["roc_auc"], f1_threshold=f1_threshold,
                            passed=passed, batch_id=batch_id_for(day), run_id=run_id)
    return {"model_version": int(model_version), "attempt": int(attempt), "f1": metrics["f1"],
            "roc_auc": metrics["roc_auc"], "passed": bool(passed), "f1_threshold": float(f1_threshold)}


def _score(bundle: "ModelBundle", test: "EncodedBatch") -> dict[str, Any]:
    from daily_mlops.ml.metrics import classification_metrics

    return classification_metrics(test.y, bundle.predict_proba_encoded(test), decision_threshold=bundle.decision_threshold)


@with_database
def evaluate_model(
    settings: "Settings", *, model_version: int, logical_date: LogicalDate, f1_threshold: float, attempt: int = 0,
    run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """Score a model version on the day's held-out test split; record it.

    Writes ``performance_metrics`` (keyed by logical date and model version,
    tagged with the DAG ``run_id``) and an ``evaluation_events`` document
    (``model_evaluated``).

    Returns
    -------
    dict
        ``model_version``, ``attempt``, ``f1``, ``roc_auc`` (floats in [0, 1]), ``passed``, ``f1_threshold``.

    Raises
    ------
    ConfigError
        When ``f1_threshold`` (the DAG param) is NaN, infinite or outside [0, 2]; nothing is written.
    NotFoundError
        When the version or the day's test split does not exist.
    IntegrityError
        When the version's artifacts are missing or altered.
    """
    f1_threshold = decisions.validate_f1_threshold(f1_threshold, "DAG param f1_threshold")
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.storage.batches import load_split
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    bundle = load_model_version(registry, registry.get(MODEL_NAME, model_version))
    bundle.model.to(resolve_device(settings.device))  # inference runs where the model is
    metrics = _score(bundle, load_split(db, day, "test"))
    return _record_evaluation(db, day=day, model_version=int(model_version), metrics=metrics, attempt=attempt,
                              f1_threshold=f1_threshold, run_id=run_id)


def retrain_run_key(day: dt.date, attempt: int) -> str:
    """Registry run key of retraining attempt ``attempt`` on ``day``: ``retrain:<date>:attempt-<n>``."""
    return f"retrain:{day.isoformat()}:attempt-{attempt}"


@with_database
def retrain_model(
    settings: "Settings", *, logical_date: LogicalDate, attempt: int, previous: list[dict[str, Any] | None],
    f1_threshold: float, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """One retraining attempt: fine-tune the best model so far on the day's fine-tune split.

    The parent is :func:`daily_mlops.decisions.choose_parent` of ``previous``
    (the XCom results of the champion's evaluation and earlier attempts). The
    challenger is scored on the day's test split, registered as a new version
    with its metrics, ``parent_version`` and lineage, and moved by
    :func:`daily_mlops.decisions.challenger_status`. The attempt's seed is the
    day's seed plus ``attempt``, so attempts differ but reruns repeat.

    Idempotent: a rerun of the same (logical date, attempt) reuses the version
    registered the first time (:func:`retrain_run_key`) and its recorded metrics.

    Returns
    -------
    dict
        As :func:`evaluate_model`, plus ``parent_version``.

    Raises
    ------
    MLOpsError
        When ``previous`` holds no evaluation to start from.
    """
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.metrics import choose_decision_threshold
    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.training import finetune, predict_proba, seed_everything
    from daily_mlops.storage.batches import batch_id_for, load_split
    from daily_mlops.storage.events import record_training_event
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    day = logical_day(logical_date)
    try:
        parent = decisions.choose_parent(previous)
    except ValueError:
        raise MLOpsError(f"retraining attempt {attempt} on {day} got no earlier evaluation to start from") from None
    parent_version = int(parent["model_version"])
    registry = ModelRegistry(db)
    run_key = retrain_run_key(day, attempt)
    doc = registry.find_run(MODEL_NAME, run_key)
    if doc is None:
        parent_doc = registry.get(MODEL_NAME, parent_version)
        bundle = load_model_version(registry, parent_doc)
        data = load_split(db, day, "finetune")
        seed = day_seed(settings.seed, day) + attempt
        seed_everything(seed)
        with timed(f"retraining attempt {attempt}") as t:
            losses = finetune(bundle.model, data.x_cat, data.x_num, data.y, epochs=settings.retrain_epochs,
                              batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=seed,
                              device=resolve_device(settings.device))
        threshold = choose_decision_threshold(data.y, predict_proba(bundle.model, data.x_cat, data.x_num))
        challenger = ModelBundle(model=bundle.model, preprocessor=bundle.preprocessor, decision_threshold=threshold,
                                 model_name=MODEL_NAME, model_version=None)
        metrics = _score(challenger, load_split(db, day, "test"))
        doc = registry.register(
            MODEL_NAME, run_key=run_key, artifacts={"weights": state_dict_to_bytes(bundle.model)},
            status="candidate", parent_version=parent_version,
            hyperparameters={**hyperparameters(settings), "seed": seed, "epochs": settings.retrain_epochs},
            metrics={**metrics, "test": metrics},
            trained_on=list(dict.fromkeys([*parent_doc.get("trained_on", []), batch_id_for(day)])),
            evaluated_on=[batch_id_for(day)],
            n_parameters=parent_doc.get("n_parameters"), signature=parent_doc.get("signature"),
            logical_date=day.isoformat(),
            extra={"architecture": parent_doc["architecture"], "decision_threshold": threshold,
                   "preprocessor_version": parent_doc["preprocessor_version"],
                   "synthesizer_version": parent_doc.get("synthesizer_version"), "attempt": attempt},
        )
        record_training_event(db, model_name=MODEL_NAME, model_version=doc["model_version"], stage="retrain",
                              losses=[float(x) for x in losses], epochs=len(losses), seconds=t["seconds"],
                              rows=int(len(data)), batch_id=batch_id_for(day), logical_date=day.isoformat(),
                              parent_version=parent_version, attempt=attempt)
    metrics = doc["metrics"]["test"]
    result = _record_evaluation(db, day=day, model_version=int(doc["model_version"]), metrics=metrics, attempt=attempt,
                                f1_threshold=f1_threshold, run_id=run_id)
    new_status = decisions.challenger_status(result["f1"], f1_threshold, doc["status"])
    if new_status is not None:
        registry.set_status(MODEL_NAME, doc["model_version"], new_status, logical_date=day.isoformat(),
                            reason=f"F1 {result['f1']:.4f} vs threshold {f1_threshold:.4f} (run {run_id})")
    return {**result, "parent_version": parent_version}


@with_database
def send_evaluation_results(
    settings: "Settings", *, logical_date: LogicalDate, f1_threshold: float, run_id: str | None = None,
    db: "Database",
) -> dict[str, Any]:
    """Record the day's passing model version as approved for deployment, and notify.

    The evaluations of this DAG run (``run_id``) are read from
    ``performance_metrics`` rather than from the XCom of attempts that may
    have been skipped; the approved version is
    :func:`daily_mlops.decisions.choose_approved_version` of them.

    Returns
    -------
    dict
        ``approved_version``, ``f1``, ``retrain_attempts``.

    Raises
    ------
    MLOpsError
        When no evaluation of the day reached the threshold (the DAG's branches prevent this).
    """
    from daily_mlops.storage.alerts import resolve_alerts
    from daily_mlops.storage.events import evaluations_of_day, record_evaluation_event, record_notification
    from daily_mlops.storage.registry import ModelRegistry

    day = logical_day(logical_date)
    tried = evaluations_of_day(db, day, run_id=run_id)
    registry = ModelRegistry(db)
    statuses = {int(r["model_version"]): registry.get(r["model_name"], r["model_version"])["status"] for r in tried}
    best = decisions.choose_approved_version(tried, f1_threshold, statuses)
    if best is None:
        raise MLOpsError(
            f"no model version reached F1 {f1_threshold} on {day}; rerun model_evaluation_pipeline for that date"
        )
    attempts = max(r["attempt"] for r in tried)
    version = int(best["model_version"])
    # One day-level event (model_version None): a rerun with another outcome replaces it.
    record_evaluation_event(db, "evaluation_passed", logical_date=day, model_version=None,
                            approved_version=version, f1=best["f1"], f1_threshold=f1_threshold,
                            retrain_attempts=attempts, versions_tried=[r["model_version"] for r in tried])
    resolve_alerts(db, logical_date=day, resolution=f"rerun approved model version {version}")
    record_notification(db, "evaluation_results", logical_date=day,
                        message=f"{day}: model version {version} approved with F1 {best['f1']:.4f} "
                                f">= {f1_threshold:.4f} after {attempts} retraining attempt(s)",
                        approved_version=version, f1=best["f1"])
    return {"approved_version": version, "f1": best["f1"], "retrain_attempts": attempts}


@with_database
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
        ``message``, ``f1_score``, ``retrain_attempts``, ``model_versions_tried``.

    Raises
    ------
    MLOpsError
        When ``results`` holds no evaluation.
    """
    from daily_mlops.storage.alerts import raise_performance_alert
    from daily_mlops.storage.events import record_evaluation_event

    day = logical_day(logical_date)
    tried = [r for r in results if r]
    if not tried:
        raise MLOpsError(f"send_alert on {day} got no evaluation results")
    best = max(tried, key=lambda r: r["f1"])
    attempts = max(r["attempt"] for r in tried)
    versions = [r["model_version"] for r in tried]
    alert = raise_performance_alert(db, logical_date=day, f1_score=best["f1"], f1_threshold=f1_threshold,
                                    retrain_attempts=attempts, model_versions_tried=versions, dag_id=dag_id,
                                    run_id=run_id)
    record_evaluation_event(db, "alert_raised", logical_date=day, model_version=None, f1=best["f1"],
                            f1_threshold=f1_threshold, retrain_attempts=attempts, versions_tried=versions,
                            message=alert["message"])
    return {"message": alert["message"], "f1_score": best["f1"], "retrain_attempts": attempts,
            "model_versions_tried": versions}
