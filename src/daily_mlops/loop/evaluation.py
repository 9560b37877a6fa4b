"""The tasks of ``model_evaluation_pipeline``: score the champion, retrain, approve, alert.

Each function is what one Airflow task calls: load through
:mod:`daily_mlops.storage`, a pure step from :mod:`daily_mlops.ml` or
:mod:`daily_mlops.decisions`, save through :mod:`daily_mlops.storage`. Every
write is keyed by (logical date, model version), so a rerun of the same DAG
run converges to the same documents. Results are small JSON values for XCom,
passed as a chain: each evaluation's result carries the best version so far,
the versions tried and the attempt count (:func:`daily_mlops.decisions.carry_best`),
so each task needs only the result of the one before it.

Approval follows TFX's Evaluator: a value threshold (the F1 floor,
``f1_threshold``, a number or ``auto``: :mod:`daily_mlops.loop.f1_floor`)
and, for a retrained version, a change threshold against the champion on the
same day's test split (``min_improvement``; :func:`daily_mlops.decisions.compare_challenger`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops import decisions
from daily_mlops.dates import LogicalDate, day_seed, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop._common import hyperparameters, load_model_version, log, timed, with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database

    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings

__all__ = ["alert_reason", "evaluate_model", "load_champion", "retrain_model", "send_alert", "send_evaluation_results"]


@with_database
def load_champion(settings: "Settings", *, db: "Database") -> dict[str, Any]:
    """The champion of ``MLOPS_MODEL_NAME``: the deployed version, else the newest approved one; integrity checked.

    After ``daily-mlops rollback`` the rolled-back version is the deployed one, so it is the next day's champion.

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
    from daily_mlops.storage.registry import ModelRegistry

    registry = ModelRegistry(db)
    name = settings.model_name
    doc = registry.champion(name)
    problems = registry.verify(doc)
    if problems:
        raise IntegrityError("; ".join(problems))
    log.info("champion: %s v%s (%s), artifacts intact, weights sha256 %s", name, doc["model_version"],
             doc["status"], doc["sha256"]["weights"][:12])
    return {"model_name": name, "model_version": int(doc["model_version"]), "status": doc["status"],
            "sha256": doc["sha256"]["weights"]}


def _record_evaluation(
    db: "Database", *, model_name: str, day: dt.date, model_version: int, metrics: dict[str, Any], attempt: int,
    floor: dict[str, Any], run_id: str | None, comparisons: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``performance_metrics`` and the ``model_evaluated`` event; return the XCom result.

    ``floor`` is the resolved F1 threshold (:func:`daily_mlops.loop.f1_floor.resolve_floor`);
    ``comparisons`` a challenger's :func:`daily_mlops.decisions.compare_challenger` (``None`` for the champion,
    which is compared with the floor only).
    """
    from daily_mlops.storage.batches import batch_id_for
    from daily_mlops.storage.events import record_evaluation_event, record_performance
    from daily_mlops.thresholds import threshold_note

    f1_threshold = float(floor["f1_threshold"])
    comparisons = comparisons or {"floor": {"value": float(metrics["f1"]), "threshold": f1_threshold,
                                            "passed": decisions.passes(metrics["f1"], f1_threshold)}}
    passed = bool(comparisons.get("passed", comparisons["floor"]["passed"]))
    recorded = {key: comparisons[key] for key in ("floor", "champion") if key in comparisons}
    note = threshold_note(floor)
    record_performance(db, logical_date=day, model_name=model_name, model_version=model_version, metrics=metrics,
                       attempt=attempt, f1_threshold=f1_threshold, batch_id=batch_id_for(day), run_id=run_id,
                       passed=passed, f1_threshold_mode=floor["mode"], f1_threshold_note=note, **recorded)
    record_evaluation_event(db, "model_evaluated", logical_date=day, model_version=int(model_version),
                            attempt=attempt, f1=metrics["f1"], roc_auc=metrics["roc_auc"], f1_threshold=f1_threshold,
                            f1_threshold_note=note, passed=passed, batch_id=batch_id_for(day), run_id=run_id,
                            **recorded)
    result = {"model_version": int(model_version), "attempt": int(attempt), "f1": metrics["f1"],
              "roc_auc": metrics["roc_auc"], "passed": passed, "f1_threshold": f1_threshold,
              "f1_threshold_note": note}
    if "champion" in comparisons:
        result["min_improvement"] = comparisons["champion"]["min_improvement"]
    return result


def _score(bundle: "ModelBundle", test: "EncodedBatch") -> dict[str, Any]:
    from daily_mlops.ml.metrics import classification_metrics

    return classification_metrics(test.y, bundle.predict_proba_encoded(test), decision_threshold=bundle.decision_threshold)


@with_database
def evaluate_model(
    settings: "Settings", *, model_version: int, logical_date: LogicalDate, f1_threshold: float | str, attempt: int = 0,
    run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """Score a model version on the day's held-out test split; record it.

    Writes ``performance_metrics`` (keyed by logical date and model version,
    tagged with the DAG ``run_id``) and an ``evaluation_events`` document
    (``model_evaluated``). ``f1_threshold`` ``auto`` is resolved from the
    registry (:func:`daily_mlops.loop.f1_floor.resolve_floor`).

    Returns
    -------
    dict
        ``model_version``, ``attempt``, ``f1``, ``roc_auc`` (floats in [0, 1]), ``passed``, ``f1_threshold``
        (resolved), ``f1_threshold_note``, and the chain fields of :func:`daily_mlops.decisions.carry_best`
        (``best_version``, ``best_f1``, ``versions_tried``, ``champion_version``, ``champion_f1``), which start here.

    Raises
    ------
    ConfigError
        When ``f1_threshold`` (the DAG param) is neither ``auto`` nor a finite number in [0, 2], or is
        ``auto`` before bootstrap; nothing is written.
    NotFoundError
        When the version or the day's test split does not exist.
    IntegrityError
        When the version's artifacts are missing or altered.
    """
    from daily_mlops.loop.f1_floor import resolve_floor

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.storage.batches import load_split
    from daily_mlops.storage.registry import ModelRegistry

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    bundle = load_model_version(registry, registry.get(settings.model_name, model_version))
    bundle.model.to(resolve_device(settings.device))  # inference runs where the model is
    metrics = _score(bundle, load_split(db, day, "test"))
    result = _record_evaluation(db, model_name=settings.model_name, day=day, model_version=int(model_version),
                                metrics=metrics, attempt=attempt, floor=floor, run_id=run_id)
    auc = "n/a" if result["roc_auc"] is None else f"{result['roc_auc']:.4f}"
    log.info("%s v%s F1 %.4f %s threshold %s (ROC-AUC %s, %d test rows): %s",
             "champion" if attempt == 0 else f"attempt {attempt}: version", model_version, result["f1"],
             ">=" if result["passed"] else "<", decisions.describe_f1_threshold(floor), auc, metrics["n_samples"],
             "pass" if result["passed"] else "below the threshold")
    return decisions.carry_best(result)


def retrain_run_key(day: dt.date, attempt: int) -> str:
    """Registry run key of retraining attempt ``attempt`` on ``day``: ``retrain:<date>:attempt-<n>``."""
    return f"retrain:{day.isoformat()}:attempt-{attempt}"


@with_database
def retrain_model(
    settings: "Settings", *, logical_date: LogicalDate, attempt: int, previous: dict[str, Any] | None,
    f1_threshold: float | str, min_improvement: float = 0.0, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """One retraining attempt: fine-tune the best model so far on the day's fine-tune split.

    The parent is ``previous["best_version"]``: ``previous`` is the XCom
    result of the evaluation just before (the champion's, or attempt
    ``attempt - 1``), which carries the best version of the chain so far and
    the champion of the day (attempt 0's version and F1). The parent is
    fine-tuned on 80% of the fine-tune split; the decision threshold is
    chosen on the other 20%, a stratified calibration part it was not fitted
    on (:func:`daily_mlops.ml.splits.calibration_split`, seeded). The
    challenger is scored on the day's test split, registered as a new version
    with its metrics, ``parent_version`` (also ``finetuned_from``) and
    lineage, and judged like TFX's Evaluator: it must reach the F1 floor and
    beat the champion's F1 on the same test split by at least
    ``min_improvement`` (:func:`daily_mlops.decisions.compare_challenger`).
    Both comparisons are recorded on the version (``comparisons``) and in
    ``performance_metrics`` (``floor``, ``champion``);
    :func:`daily_mlops.decisions.challenger_status` moves it to approved or
    rejected. The attempt's seed is the day's seed plus ``attempt``, so
    attempts differ but reruns repeat.

    Idempotent: a rerun of the same (logical date, attempt) reuses the version
    registered the first time (:func:`retrain_run_key`) and its recorded metrics.

    Returns
    -------
    dict
        As :func:`evaluate_model` (the chain carried on from ``previous``), plus ``parent_version``.

    Raises
    ------
    ConfigError
        For an invalid ``f1_threshold`` or ``min_improvement`` (the DAG params); nothing is written.
    MLOpsError
        When ``previous`` is missing or is not the result of attempt ``attempt - 1``.
    """
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.thresholds import validate_min_improvement

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    min_improvement = validate_min_improvement(min_improvement, "DAG param min_improvement")
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.metrics import choose_decision_threshold
    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.splits import calibration_split
    from daily_mlops.ml.training import finetune, predict_proba, seed_everything
    from daily_mlops.storage.batches import batch_id_for, load_split
    from daily_mlops.storage.events import record_training_event
    from daily_mlops.storage.registry import ModelRegistry

    name = settings.model_name
    day = logical_day(logical_date)
    if (not previous or "best_version" not in previous or "champion_f1" not in previous
            or int(previous.get("attempt", -1)) != attempt - 1):
        raise MLOpsError(f"retraining attempt {attempt} on {day} needs the result of attempt {attempt - 1} "
                         f"(got {previous!r}); clear the evaluation DAG run from evaluate_model")
    parent_version = int(previous["best_version"])
    champion_version, champion_f1 = int(previous["champion_version"]), float(previous["champion_f1"])
    registry = ModelRegistry(db)
    run_key = retrain_run_key(day, attempt)
    doc = registry.find_run(name, run_key)
    if doc is None:
        parent_doc = registry.get(name, parent_version)
        bundle = load_model_version(registry, parent_doc)
        data = load_split(db, day, "finetune")
        seed = day_seed(settings.seed, day) + attempt
        held = calibration_split(data.y, seed=seed)  # the cut-off is chosen on rows the model is not fitted on
        fit, calibration = data.subset(held["fit"]), data.subset(held["calibration"])
        seed_everything(seed)
        with timed(f"retraining attempt {attempt}") as t:
            losses = finetune(bundle.model, fit.x_cat, fit.x_num, fit.y, epochs=settings.retrain_epochs,
                              batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=seed,
                              device=resolve_device(settings.device))
        threshold = choose_decision_threshold(calibration.y,
                                              predict_proba(bundle.model, calibration.x_cat, calibration.x_num))
        challenger = ModelBundle(model=bundle.model, preprocessor=bundle.preprocessor, decision_threshold=threshold,
                                 model_name=name, model_version=None)
        metrics = _score(challenger, load_split(db, day, "test"))
        doc = registry.register(
            name, run_key=run_key, artifacts={"weights": state_dict_to_bytes(bundle.model)},
            status="candidate", parent_version=parent_version,
            hyperparameters={**hyperparameters(settings), "seed": seed, "epochs": settings.retrain_epochs},
            metrics={**metrics, "test": metrics},
            trained_on=list(dict.fromkeys([*parent_doc.get("trained_on", []), batch_id_for(day)])),
            evaluated_on=[batch_id_for(day)],
            n_parameters=parent_doc.get("n_parameters"), signature=parent_doc.get("signature"),
            logical_date=day.isoformat(),
            extra={"architecture": parent_doc["architecture"], "decision_threshold": threshold,
                   "preprocessor_version": parent_doc["preprocessor_version"],
                   "synthesizer_version": parent_doc.get("synthesizer_version"), "attempt": attempt,
                   "split_sizes": {"finetune_fit": len(fit), "calibration": len(calibration)}},
        )
        record_training_event(db, model_name=name, model_version=doc["model_version"], stage="retrain",
                              losses=[float(x) for x in losses], epochs=len(losses), seconds=t["seconds"],
                              rows=int(len(fit)), batch_id=batch_id_for(day), logical_date=day.isoformat(),
                              parent_version=parent_version, attempt=attempt)
    else:
        log.info("attempt %d: reusing v%s, registered by an earlier run of this attempt", attempt, doc["model_version"])
    metrics = doc["metrics"]["test"]
    version = int(doc["model_version"])
    comparisons = decisions.compare_challenger(metrics["f1"], floor["f1_threshold"], champion_version=champion_version,
                                               champion_f1=champion_f1, min_improvement=min_improvement)
    registry.record_comparisons(name, version, comparisons, logical_date=day.isoformat())
    result = _record_evaluation(db, model_name=name, day=day, model_version=version, metrics=metrics,
                                attempt=attempt, floor=floor, run_id=run_id, comparisons=comparisons)
    new_status = decisions.challenger_status(result["f1"], floor["f1_threshold"], doc["status"],
                                             champion_f1=champion_f1, min_improvement=min_improvement)
    outcome = _comparisons_text(comparisons, floor)
    if new_status is not None:
        registry.set_status(name, version, new_status, logical_date=day.isoformat(), reason=f"{outcome} (run {run_id})")
    log.info("attempt %d: challenger v%s (fine-tuned from v%s) %s: %s", attempt, version, parent_version, outcome,
             new_status or doc["status"])
    return decisions.carry_best({**result, "parent_version": parent_version}, previous)


def _comparisons_text(comparisons: dict[str, Any], floor: dict[str, Any]) -> str:
    """``F1 0.4612 >= floor 0.4321 (auto: ...); vs champion v1 F1 0.4012: +0.0600 >= min_improvement 0`` or the misses."""
    f, c = comparisons["floor"], comparisons["champion"]
    return (f"F1 {f['value']:.4f} {'>=' if f['passed'] else '<'} floor {decisions.describe_f1_threshold(floor)}; "
            f"vs champion v{c['champion_version']} F1 {c['champion_f1']:.4f}: {c['delta']:+.4f} "
            f"{'beats it by' if c['passed'] else 'does not beat it by'} min_improvement {c['min_improvement']:g}")


@with_database
def send_evaluation_results(
    settings: "Settings", *, logical_date: LogicalDate, f1_threshold: float | str, run_id: str | None = None,
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
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.storage.alerts import resolve_alerts
    from daily_mlops.storage.events import evaluations_of_day, record_evaluation_event, record_notification
    from daily_mlops.storage.registry import ModelRegistry

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    f1_threshold, floor_text = floor["f1_threshold"], decisions.describe_f1_threshold(floor)
    day = logical_day(logical_date)
    tried = evaluations_of_day(db, day, run_id=run_id)
    registry = ModelRegistry(db)
    statuses = {int(r["model_version"]): registry.get(r["model_name"], r["model_version"])["status"] for r in tried}
    best = decisions.choose_approved_version(tried, f1_threshold, statuses)
    if best is None:
        raise MLOpsError(
            f"no model version reached F1 {floor_text} on {day}; rerun model_evaluation_pipeline for that date"
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
                                f">= {floor_text} after {attempts} retraining attempt(s)",
                        approved_version=version, f1=best["f1"])
    log.info("v%s approved for deployment: F1 %.4f >= threshold %s after %d retraining attempt(s)", version,
             best["f1"], floor_text, attempts)
    return {"approved_version": version, "f1": best["f1"], "retrain_attempts": attempts}


def alert_reason(alert: dict[str, Any], deployed_version: int | None) -> str:
    """The one-line reason ``send_alert`` fails the run with (the Airflow UI shows it as the task's error).

    Parameters
    ----------
    alert : dict
        The alert document (``alert_type``, ``logical_date``, ``f1_score``, ``f1_threshold``,
        ``retrain_attempts``).
    deployed_version : int or None
        The version that stays deployed (None when none is deployed yet).
    """
    from daily_mlops.loop.deployment import stays_deployed

    note = f" ({alert['f1_threshold_note']})" if alert.get("f1_threshold_note") else ""
    relation = ("<" if alert["f1_score"] < alert["f1_threshold"] else "reached (no challenger beat the champion):")
    return (f"{alert['alert_type']} on {alert['logical_date']}: best F1 {alert['f1_score']:.4f} {relation} threshold "
            f"{alert['f1_threshold']:.4f}{note} after {alert['retrain_attempts']} retraining attempt(s); "
            f"{stays_deployed(deployed_version)}")


@with_database
def send_alert(
    settings: "Settings", *, logical_date: LogicalDate, last: dict[str, Any] | None, f1_threshold: float | str,
    dag_id: str | None = None, run_id: str | None = None, db: "Database",
) -> dict[str, Any]:
    """Every attempt failed: write the ``MODEL_PERFORMANCE_FAILURE`` alert and its evaluation event.

    ``last`` is the chain result of the day's last evaluation (see
    :func:`daily_mlops.decisions.carry_best`): it gives the best F1, the
    attempt count and the versions tried. The per-version F1 of this DAG run
    (``run_id``) is read from ``performance_metrics`` for the message's
    details; when ``last`` is missing (its XCom was cleared) the summary is
    rebuilt from those records. The alert's message is logged at INFO; the
    DAG task then fails the run with ``reason`` (so the Airflow UI shows it
    red) and the task's notifiers fire.

    Returns
    -------
    dict
        ``message`` (the alert document's), ``reason`` (one line, :func:`alert_reason`), ``f1_score``,
        ``retrain_attempts``, ``model_versions_tried``, ``details`` (``"v<version>: F1 <f1>"`` per
        evaluation of the run).

    Raises
    ------
    MLOpsError
        When there is neither a result nor a recorded evaluation of this run.
    """
    from daily_mlops.loop.deployment import live_version
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.loop.quality import day_drift_summary
    from daily_mlops.storage.alerts import raise_performance_alert
    from daily_mlops.storage.events import evaluations_of_day, record_evaluation_event
    from daily_mlops.thresholds import threshold_note

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    f1_threshold = floor["f1_threshold"]
    day = logical_day(logical_date)
    recorded = evaluations_of_day(db, day, run_id=run_id) if run_id is not None else []
    if last is None and recorded:
        best = decisions.choose_parent(recorded)
        last = {"attempt": max(int(d["attempt"]) for d in recorded), "best_f1": best["f1"],
                "versions_tried": [d["model_version"] for d in recorded]}
    if not last:
        raise MLOpsError(f"send_alert on {day} found no evaluation result for DAG run {run_id}; "
                         "clear the run from evaluate_model")
    attempts = int(last["attempt"])
    versions = [int(v) for v in last["versions_tried"]]
    best_f1 = float(last["best_f1"])
    details = [f"v{doc['model_version']}: F1 {doc['f1']:.4f}" + (
        f" ({doc['champion']['delta']:+.4f} vs champion v{doc['champion']['champion_version']})"
        if doc.get("champion") else "") for doc in recorded if doc["model_version"] in versions]
    log.info("alert for %s: best F1 %.4f < %s after %d attempt(s); %s", day, best_f1,
             decisions.describe_f1_threshold(floor), attempts,
             ", ".join(details) or "no per-version records")
    alert = raise_performance_alert(db, logical_date=day, f1_score=best_f1, f1_threshold=f1_threshold,
                                    retrain_attempts=attempts, model_versions_tried=versions, dag_id=dag_id,
                                    run_id=run_id, f1_threshold_note=threshold_note(floor),
                                    drift=day_drift_summary(settings, logical_date=day, db=db))
    record_evaluation_event(db, "alert_raised", logical_date=day, model_version=None, f1=best_f1,
                            f1_threshold=f1_threshold, retrain_attempts=attempts, versions_tried=versions,
                            message=alert["message"])
    log.info("%s", alert["message"])
    return {"message": alert["message"], "reason": alert_reason(alert, live_version(db, settings.model_name)),
            "f1_score": best_f1, "retrain_attempts": attempts, "model_versions_tried": versions, "details": details}
