"""The tasks of ``model_evaluation_pipeline``: score the champion, recalibrate it, retrain, approve, alert.

Each function is what one Airflow task calls: load through
:mod:`daily_mlops.storage`, a pure step from :mod:`daily_mlops.ml` or
:mod:`daily_mlops.decisions`, save through :mod:`daily_mlops.storage`. Every
write is keyed by (logical date, model version), so a rerun of the same DAG
run converges to the same documents. Results are small JSON values for XCom,
passed as a chain: each evaluation's result carries the best version so far,
the versions tried, the attempt count and the baseline
(:func:`daily_mlops.decisions.carry_best`), so each task needs only the result of the one before it.

The day's rows each have one role (:mod:`daily_mlops.loop.evidence`): every
candidate is calibrated on the ``calibration`` split, every decision reads the
``validation`` split, the ``test`` split and the real holdout are reported.
A day that finds its champion below the floor first tries the cheapest fix,
the champion with its calibrator and decision threshold chosen again on the
day's calibration rows (:func:`recalibrate_champion`); then up to three
fine-tuning attempts (:func:`retrain_model`). Every candidate is judged by
:func:`daily_mlops.decisions.judge_candidate`: the F1 floor
(``f1_threshold``, a number or ``auto``: :mod:`daily_mlops.loop.f1_floor`),
a paired bootstrap interval of its F1 gain over its baseline above
``min_improvement``, and non-inferiority on the real holdout (``MLOPS_REAL_MARGIN``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops import decisions
from daily_mlops.dates import LogicalDate, day_seed, logical_day
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop._common import hyperparameters, load_model_version, log, timed, with_database
from daily_mlops.settings.thresholds import describe_f1_threshold

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.loop.evidence import DayRows, Scored
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["alert_reason", "evaluate_model", "load_champion", "recalibrate_champion", "recalibrate_run_key",
           "retrain_model", "retrain_run_key", "send_alert", "send_evaluation_results"]

@with_database
def load_champion(settings: Settings, *, db: Database) -> dict[str, Any]:
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
    db: Database, *, model_name: str, day: dt.date, model_version: int, scored: Scored, attempt: int, stage: str,
    floor: dict[str, Any], run_id: str | None, comparisons: dict[str, Any] | None = None,
    parent_version: int | None = None,
) -> dict[str, Any]:
    """Write ``performance_metrics`` and the ``model_evaluated`` event; return the XCom result.

    The deciding figures are the validation split's (``f1``, ``roc_auc``, ``split: "validation"``); the test
    split's (``test``) and the real holdout's (``reference``) are recorded beside them, for reports.
    ``floor`` is the resolved F1 threshold (:func:`daily_mlops.loop.f1_floor.resolve_floor`);
    ``comparisons`` a candidate's :func:`daily_mlops.decisions.judge_candidate` (``None`` for the champion,
    which is compared with the floor only).
    """
    from daily_mlops.settings.thresholds import threshold_note
    from daily_mlops.storage.batches import batch_id_for
    from daily_mlops.storage.events import record_evaluation_event, record_performance

    metrics = scored.metrics["validation"]
    test, real = scored.metrics.get("test") or {}, scored.metrics.get("reference") or {}
    f1_threshold = float(floor["f1_threshold"])
    comparisons = comparisons or {"floor": {"value": float(metrics["f1"]), "threshold": f1_threshold,
                                            "passed": decisions.passes(metrics["f1"], f1_threshold),
                                            "split": "validation"}}
    passed = bool(comparisons.get("passed", comparisons["floor"]["passed"]))
    recorded = {key: comparisons[key] for key in ("floor", "champion", "real") if comparisons.get(key)}
    note = threshold_note(floor)
    record_performance(db, logical_date=day, model_name=model_name, model_version=model_version, metrics=metrics,
                       attempt=attempt, f1_threshold=f1_threshold, batch_id=batch_id_for(day), run_id=run_id,
                       split="validation", passed=passed, f1_threshold_mode=floor["mode"], f1_threshold_note=note,
                       stage=stage, test=test, reference=real or None, parent_version=parent_version, **recorded)
    record_evaluation_event(db, "model_evaluated", logical_date=day, model_version=int(model_version),
                            attempt=attempt, stage=stage, f1=metrics["f1"], roc_auc=metrics["roc_auc"],
                            test_f1=test.get("f1"), real_f1=real.get("f1"), real_roc_auc=real.get("roc_auc"),
                            f1_threshold=f1_threshold, f1_threshold_note=note, passed=passed,
                            batch_id=batch_id_for(day), run_id=run_id, **recorded)
    result = {"model_version": int(model_version), "attempt": int(attempt), "stage": stage, "f1": metrics["f1"],
              "roc_auc": metrics["roc_auc"], "test_f1": test.get("f1"), "test_roc_auc": test.get("roc_auc"),
              "real_f1": real.get("f1"), "real_roc_auc": real.get("roc_auc"), "passed": passed,
              "f1_threshold": f1_threshold, "f1_threshold_note": note}
    if "champion" in recorded:
        result["min_improvement"] = recorded["champion"]["min_improvement"]
        result["f1_delta_interval"] = recorded["champion"]["interval"]
    if parent_version is not None:
        result["parent_version"] = int(parent_version)
    return result


def _figures(scored: Scored) -> str:
    """``F1 0.6812 / ROC-AUC 0.8512 (validation); test F1 0.6790; real holdout F1 0.5811 ROC-AUC 0.7702``."""
    def num(split: str, key: str) -> str:
        value = (scored.metrics.get(split) or {}).get(key)
        return "n/a" if value is None else f"{value:.4f}"

    text = (f"F1 {num('validation', 'f1')} / ROC-AUC {num('validation', 'roc_auc')} (validation, "
            f"{(scored.metrics.get('validation') or {}).get('n_samples', 0)} rows); test F1 {num('test', 'f1')}")
    if "reference" in scored.metrics:
        text += f"; real holdout F1 {num('reference', 'f1')} ROC-AUC {num('reference', 'roc_auc')}"
    return text


def _load_version(settings: Settings, registry: ModelRegistry, version: int) -> ModelBundle:
    """A registry version as a bundle, on the device training and inference run on."""
    from daily_mlops.ml.device import resolve_device

    bundle = load_model_version(registry, registry.get(settings.model_name, version))
    bundle.model.to(resolve_device(settings.device))  # inference runs where the model is
    return bundle


@with_database
def evaluate_model(
    settings: Settings, *, model_version: int, logical_date: LogicalDate, f1_threshold: float | str, attempt: int = 0,
    run_id: str | None = None, db: Database,
) -> dict[str, Any]:
    """Score the champion on the day's rows; its validation F1 against the floor decides whether to retrain.

    The champion is scored as deployed (its own calibrator and decision
    threshold) on the validation split (the deciding F1), the test split and
    the real holdout (reported). Writes ``performance_metrics`` (keyed by
    logical date and model version, tagged with the DAG ``run_id``) and an
    ``evaluation_events`` document (``model_evaluated``). ``f1_threshold``
    ``auto`` is resolved from the registry (:func:`daily_mlops.loop.f1_floor.resolve_floor`).

    Returns
    -------
    dict
        ``model_version``, ``attempt``, ``stage`` (``champion``), ``f1``, ``roc_auc`` (validation),
        ``test_f1``, ``test_roc_auc``, ``real_f1``, ``real_roc_auc`` (floats in [0, 1] or None), ``passed``,
        ``f1_threshold`` (resolved), ``f1_threshold_note``, and the chain fields of
        :func:`daily_mlops.decisions.carry_best`, which start here.

    Raises
    ------
    ConfigError
        When ``f1_threshold`` (the DAG param) is neither ``auto`` nor a finite number in [0, 2], or is
        ``auto`` before bootstrap; nothing is written.
    NotFoundError
        When the version or one of the day's splits does not exist.
    IntegrityError
        When the version's artifacts are missing or altered.
    """
    from daily_mlops.loop.evidence import load_day_rows, score
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.ml.fidelity import evaluation_gap
    from daily_mlops.storage.batches import record_evaluation_gap
    from daily_mlops.storage.registry import ModelRegistry

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    bundle = _load_version(settings, registry, model_version)
    rows = load_day_rows(db, registry, settings.model_name, day, bundle.preprocessor)
    scored = score(bundle, rows)
    result = _record_evaluation(db, model_name=settings.model_name, day=day, model_version=int(model_version),
                                scored=scored, attempt=attempt, stage=decisions.CHAMPION, floor=floor, run_id=run_id)
    record_evaluation_gap(db, day, evaluation_gap(model_version=model_version, synthetic_test_roc_auc=result[
        "test_roc_auc"], real_holdout_roc_auc=result["real_roc_auc"]))  # recorded, never gated
    log.info("champion v%s %s: %s threshold %s: %s", model_version, _figures(scored),
             ">=" if result["passed"] else "<", describe_f1_threshold(floor),
             "pass" if result["passed"] else "below the threshold")
    return decisions.carry_best(result)


def recalibrate_run_key(day: dt.date, batch_sha256: str, champion_version: int) -> str:
    """Registry run key of the champion's recalibration: ``recalibrate:<date>:batch-<sha12>:champion-v<n>``."""
    return f"recalibrate:{day.isoformat()}:batch-{batch_sha256[:12]}:champion-v{int(champion_version)}"


def retrain_run_key(day: dt.date, attempt: int, batch_sha256: str, parent_version: int) -> str:
    """Registry run key of a retraining attempt: ``retrain:<date>:attempt-<n>:batch-<sha12>:parent-v<k>``.

    The day's raw batch (its sha256) and the parent version are part of the key: a rerun of the day on a
    changed batch, or from another parent (after a rollback), trains a new version; the old one keeps its record.
    """
    return (f"retrain:{day.isoformat()}:attempt-{attempt}:batch-{batch_sha256[:12]}:"
            f"parent-v{int(parent_version)}")


def _register_candidate(
    settings: Settings, registry: ModelRegistry, *, run_key: str, weights: bytes, parent_doc: dict[str, Any],
    stage: str, candidate: ModelBundle, scored: Scored, rows: DayRows, day: dt.date, attempt: int,
    hyper: dict[str, Any], split_sizes: dict[str, int],
) -> dict[str, Any]:
    """Register a candidate version (status ``candidate``) with its metrics per split, calibrator and lineage."""
    from daily_mlops.ml.calibration import calibration_summary
    from daily_mlops.storage.batches import batch_id_for

    calibration = {**(candidate.calibration or {}),
                   "test": calibration_summary(rows.test.y, candidate.scores_encoded(rows.test), candidate.calibration)}
    return registry.register(
        settings.model_name, run_key=run_key, artifacts={"weights": weights}, status="candidate",
        parent_version=int(parent_doc["model_version"]), hyperparameters=hyper,
        metrics={**scored.metrics["test"], **{name: scored.metrics[name] for name in scored.metrics}},
        trained_on=list(dict.fromkeys([*parent_doc.get("trained_on", []),
                                       *([batch_id_for(day)] if stage == decisions.FINETUNED else [])])),
        evaluated_on=[batch_id_for(day), *(["reference"] if rows.reference is not None else [])],
        n_parameters=parent_doc.get("n_parameters"), signature=parent_doc.get("signature"),
        logical_date=day.isoformat(),
        extra={"architecture": parent_doc["architecture"], "decision_threshold": candidate.decision_threshold,
               "calibration": calibration, "lineage_kind": stage,
               "preprocessor_version": parent_doc["preprocessor_version"],
               "synthesizer_version": parent_doc.get("synthesizer_version"), "attempt": attempt,
               "batch_sha256": rows.batch_sha256, "split_sizes": split_sizes},
    )


def _judge(
    settings: Settings, db: Database, registry: ModelRegistry, *, doc: dict[str, Any], scored: Scored,
    baseline: ModelBundle, rows: DayRows, day: dt.date, attempt: int, stage: str, floor: dict[str, Any],
    min_improvement: float, run_id: str | None, parent_version: int, previous: dict[str, Any],
) -> dict[str, Any]:
    """Compare a registered candidate with its baseline, record the comparisons and its status.

    Returns the chain result.

    Raises
    ------
    MLOpsError
        When ``baseline`` has no model version (a bundle not loaded from the registry).
    """
    from daily_mlops.loop.evidence import compare, score

    if baseline.model_version is None:
        raise MLOpsError("the baseline of a comparison has no model version; load it from the model registry")
    name, version = settings.model_name, int(doc["model_version"])
    baseline_scored = score(baseline, rows)
    comparisons = compare(scored, baseline_scored, rows, baseline_version=int(baseline.model_version),
                          f1_threshold=floor["f1_threshold"], min_improvement=min_improvement,
                          real_margin=settings.real_margin, seed=day_seed(settings.seed, day) + 100 + attempt)
    registry.record_comparisons(name, version, comparisons, logical_date=day.isoformat())
    result = _record_evaluation(db, model_name=name, day=day, model_version=version, scored=scored, attempt=attempt,
                                stage=stage, floor=floor, run_id=run_id, comparisons=comparisons,
                                parent_version=parent_version)
    new_status = decisions.challenger_status(result["passed"], doc["status"])
    outcome = comparisons_text(comparisons, floor)
    if new_status is not None:
        registry.set_status(name, version, new_status, logical_date=day.isoformat(), reason=f"{outcome} (run {run_id})")
    log.info("%s v%s (from v%s): %s; %s: %s", "recalibrated champion" if stage == decisions.RECALIBRATED
             else f"attempt {attempt}: challenger", version, parent_version, _figures(scored), outcome,
             new_status or doc["status"])
    return decisions.carry_best(result, previous)


def _scored_candidate(settings: Settings, registry: ModelRegistry, doc: dict[str, Any], rows: DayRows) -> Scored:
    """A registered candidate, reloaded from the registry and scored (a rerun's path: the same numbers)."""
    from daily_mlops.loop.evidence import score

    return score(_load_version(settings, registry, int(doc["model_version"])), rows)


@with_database
def recalibrate_champion(
    settings: Settings, *, logical_date: LogicalDate, previous: dict[str, Any] | None, f1_threshold: float | str,
    min_improvement: float = 0.0, run_id: str | None = None, db: Database,
) -> dict[str, Any]:
    """The cheapest fix, tried before any fine-tuning: the champion recalibrated on the day's calibration rows.

    The champion's weights, with a Platt calibrator and an F1-best decision
    threshold fitted on the day's ``calibration`` split
    (:func:`daily_mlops.loop.evidence.calibrate_on`), are registered as a new
    model version: lineage kind ``recalibrated``, parent the champion. It is
    judged against the champion as deployed (:func:`daily_mlops.decisions.judge_candidate`
    on the validation split and the real holdout) and approved or rejected.
    It is then the baseline of the day's fine-tuned challengers, so each
    comparison sets two candidates side by side at thresholds chosen on the same rows.

    Idempotent: a rerun with the same batch and champion reuses the version (:func:`recalibrate_run_key`).

    Returns
    -------
    dict
        As :func:`evaluate_model` (``stage`` ``recalibrated``, ``attempt`` 0), plus ``parent_version`` and
        ``f1_delta_interval``; the chain carried on from ``previous``.

    Raises
    ------
    ConfigError
        For an invalid ``f1_threshold`` or ``min_improvement`` (the DAG params); nothing is written.
    MLOpsError
        When ``previous`` is not the champion's evaluation result.
    """
    from daily_mlops.loop.evidence import calibrate_on, load_day_rows, score
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.settings.thresholds import validate_min_improvement
    from daily_mlops.storage.registry import ModelRegistry

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    min_improvement = validate_min_improvement(min_improvement, "DAG param min_improvement")
    day = logical_day(logical_date)
    if not previous or "champion_version" not in previous or decisions.chain_position(previous) != 0:
        raise MLOpsError(f"recalibrating the champion on {day} needs the champion's evaluation result "
                         f"(got {previous!r}); clear the evaluation DAG run from evaluate_model")
    name, champion_version = settings.model_name, int(previous["champion_version"])
    registry = ModelRegistry(db)
    champion = _load_version(settings, registry, champion_version)
    rows = load_day_rows(db, registry, name, day, champion.preprocessor)
    run_key = recalibrate_run_key(day, rows.batch_sha256, champion_version)
    doc = registry.find_run(name, run_key)
    if doc is None:
        champion_doc = registry.get(name, champion_version)
        calibration, threshold = calibrate_on(champion.model, rows.calibration)
        candidate = dataclasses.replace(champion, calibration=calibration, decision_threshold=threshold,
                                        model_version=None)
        scored = score(candidate, rows)
        doc = _register_candidate(
            settings, registry, run_key=run_key, weights=registry.load_artifact(champion_doc, "weights"),
            parent_doc=champion_doc, stage=decisions.RECALIBRATED, candidate=candidate, scored=scored, rows=rows,
            day=day, attempt=0, hyper=dict(champion_doc.get("hyperparameters", {})),
            split_sizes={"calibration": len(rows.calibration), "validation": len(rows.validation)})
    else:
        log.info("recalibration: reusing v%s, registered by an earlier run with this batch and champion",
                 doc["model_version"])
        scored = _scored_candidate(settings, registry, doc, rows)
    return _judge(settings, db, registry, doc=doc, scored=scored, baseline=champion, rows=rows, day=day, attempt=0,
                  stage=decisions.RECALIBRATED, floor=floor, min_improvement=min_improvement, run_id=run_id,
                  parent_version=champion_version, previous=previous)


@with_database
def retrain_model(
    settings: Settings, *, logical_date: LogicalDate, attempt: int, previous: dict[str, Any] | None,
    f1_threshold: float | str, min_improvement: float = 0.0, run_id: str | None = None, db: Database,
) -> dict[str, Any]:
    """One fine-tuning attempt: fine-tune the best version so far on the day's rows, calibrate, judge.

    The parent is ``previous["best_version"]``: the highest validation F1 of
    the chain so far (the champion's recalibration, earlier attempts), never
    chosen on the test split. It is fine-tuned on the day's
    :data:`~daily_mlops.ml.splits.FIT_SPLITS` (pretrain + finetune), calibrated and given its decision threshold on the
    day's ``calibration`` split, registered as a new version (lineage kind
    ``finetuned``, ``parent_version``, ``finetuned_from``) with its metrics on
    the validation and test splits and the real holdout, and judged against
    the day's baseline ``previous["baseline_version"]``, the recalibrated
    champion (:func:`daily_mlops.decisions.judge_candidate`). The comparisons are
    recorded on the version (``comparisons``) and in ``performance_metrics``;
    the version moves to approved or rejected. The attempt's seed is the
    day's seed plus ``attempt``, so attempts differ but reruns repeat.

    Idempotent: a rerun with the same (logical date, attempt, raw batch, parent) reuses the version
    (:func:`retrain_run_key`); a changed batch or parent trains a new one.

    Returns
    -------
    dict
        As :func:`evaluate_model` (the chain carried on from ``previous``), plus ``parent_version`` and
        ``f1_delta_interval``.

    Raises
    ------
    ConfigError
        For an invalid ``f1_threshold`` or ``min_improvement`` (the DAG params); nothing is written.
    MLOpsError
        When ``previous`` is missing or is not the result right before attempt ``attempt`` in the chain.
    """
    from daily_mlops.loop.evidence import calibrate_on, load_day_rows, score
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.splits import FIT_SPLITS
    from daily_mlops.ml.training import finetune, seed_everything
    from daily_mlops.settings.thresholds import validate_min_improvement
    from daily_mlops.storage.batches import batch_id_for, load_split
    from daily_mlops.storage.events import record_training_event
    from daily_mlops.storage.registry import ModelRegistry

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    min_improvement = validate_min_improvement(min_improvement, "DAG param min_improvement")
    name = settings.model_name
    day = logical_day(logical_date)
    if (not previous or "best_version" not in previous or "baseline_version" not in previous
            or decisions.chain_position(previous) != attempt):
        raise MLOpsError(f"retraining attempt {attempt} on {day} needs the result of the step before it "
                         f"(got {previous!r}); clear the evaluation DAG run from evaluate_model")
    parent_version = int(previous["best_version"])
    registry = ModelRegistry(db)
    parent = _load_version(settings, registry, parent_version)
    rows = load_day_rows(db, registry, name, day, parent.preprocessor)
    run_key = retrain_run_key(day, attempt, rows.batch_sha256, parent_version)
    doc = registry.find_run(name, run_key)
    if doc is None:
        parent_doc = registry.get(name, parent_version)
        data = EncodedBatch.concat([load_split(db, day, split) for split in FIT_SPLITS])
        seed = day_seed(settings.seed, day) + attempt
        seed_everything(seed)
        with timed(f"retraining attempt {attempt}") as t:
            losses = finetune(parent.model, data.x_cat, data.x_num, data.labels(), epochs=settings.retrain_epochs,
                              batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=seed,
                              device=resolve_device(settings.device))
        calibration, threshold = calibrate_on(parent.model, rows.calibration)
        candidate = dataclasses.replace(parent, calibration=calibration, decision_threshold=threshold,
                                        model_version=None)
        scored = score(candidate, rows)
        doc = _register_candidate(
            settings, registry, run_key=run_key, weights=state_dict_to_bytes(parent.model), parent_doc=parent_doc,
            stage=decisions.FINETUNED, candidate=candidate, scored=scored, rows=rows, day=day, attempt=attempt,
            hyper={**hyperparameters(settings), "seed": seed, "epochs": settings.retrain_epochs,
                   "finetune_splits": list(FIT_SPLITS)},
            split_sizes={"finetune_fit": len(data), "calibration": len(rows.calibration),
                         "validation": len(rows.validation)})
        record_training_event(db, model_name=name, model_version=doc["model_version"], stage="retrain",
                              losses=[float(x) for x in losses], epochs=len(losses), seconds=t["seconds"],
                              rows=int(len(data)), batch_id=batch_id_for(day), logical_date=day.isoformat(),
                              parent_version=parent_version, attempt=attempt)
    else:
        log.info("attempt %d: reusing v%s, registered by an earlier run with this batch and parent", attempt,
                 doc["model_version"])
        scored = _scored_candidate(settings, registry, doc, rows)
    baseline = _load_version(settings, registry, int(previous["baseline_version"]))
    return _judge(settings, db, registry, doc=doc, scored=scored, baseline=baseline, rows=rows, day=day,
                  attempt=attempt, stage=decisions.FINETUNED, floor=floor, min_improvement=min_improvement,
                  run_id=run_id, parent_version=parent_version, previous=previous)


def _interval(comparison: dict[str, Any]) -> str:
    low, high = comparison["interval"]
    return f"{comparison['delta']:+.4f} [{low:+.4f}, {high:+.4f}]"


def comparisons_text(comparisons: dict[str, Any], floor: dict[str, Any]) -> str:
    """One line for logs and status history: the floor, the paired F1 interval and the real-holdout guard.

    ``validation F1 0.6612 >= floor 0.6181 (auto: ...); vs v1 ΔF1 +0.0210 [+0.0040, +0.0391] 95% > min_improvement 0;
    real holdout ΔROC-AUC -0.0050 [-0.0300, +0.0190] >= -margin 0.05``
    """
    f, c, r = comparisons["floor"], comparisons["champion"], comparisons.get("real")
    text = (f"validation F1 {f['value']:.4f} {'>=' if f['passed'] else '<'} floor "
            f"{describe_f1_threshold(floor)}; vs v{c['champion_version']} ΔF1 {_interval(c)} 95% "
            f"{'>' if c['passed'] else 'not >'} min_improvement {c['min_improvement']:g}")
    if r:
        text += (f"; real holdout ΔROC-AUC {_interval(r)} {'>=' if r['passed'] else 'below'} "
                 f"-margin {r['margin']:g}")
    return text


@with_database
def send_evaluation_results(
    settings: Settings, *, logical_date: LogicalDate, f1_threshold: float | str, run_id: str | None = None,
    db: Database,
) -> dict[str, Any]:
    """Record the day's passing model version as approved for deployment, and notify.

    The evaluations of this DAG run (``run_id``) are read from
    ``performance_metrics`` rather than from the XCom of tasks that may
    have been skipped; the approved version is
    :func:`daily_mlops.decisions.choose_approved_version` of them. Its test-split and real-holdout figures,
    which chose nothing, are what the notification reports.

    Returns
    -------
    dict
        ``approved_version``, ``f1`` (validation), ``test_f1``, ``real_f1``, ``real_roc_auc``, ``retrain_attempts``.

    Raises
    ------
    MLOpsError
        When no evaluation of the day passed (the DAG's branches prevent this).
    """
    from daily_mlops.loop.f1_floor import resolve_floor
    from daily_mlops.storage.alerts import resolve_alerts
    from daily_mlops.storage.events import evaluations_of_day, record_evaluation_event, record_notification
    from daily_mlops.storage.registry import ModelRegistry

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    f1_threshold, floor_text = floor["f1_threshold"], describe_f1_threshold(floor)
    day = logical_day(logical_date)
    tried = evaluations_of_day(db, day, run_id=run_id)
    registry = ModelRegistry(db)
    statuses = {int(r["model_version"]): registry.get(r["model_name"], r["model_version"])["status"] for r in tried}
    best = decisions.choose_approved_version(tried, statuses)
    if best is None:
        raise MLOpsError(
            f"no model version passed on {day} (F1 floor {floor_text}); rerun model_evaluation_pipeline for that date"
        )
    attempts = max(int(r["attempt"]) for r in tried)
    version = int(best["model_version"])
    test, real = best.get("test") or {}, best.get("reference") or {}
    evidence = (f"; vs v{best['champion']['champion_version']} ΔF1 {_interval(best['champion'])} 95%"
                if best.get("champion") else "")
    reported = f"test F1 {test['f1']:.4f}" if test.get("f1") is not None else "test F1 n/a"
    if real.get("roc_auc") is not None:
        reported += f", real holdout F1 {real['f1']:.4f} ROC-AUC {real['roc_auc']:.4f}"
    # One day-level event (model_version None): a rerun with another outcome replaces it.
    record_evaluation_event(db, "evaluation_passed", logical_date=day, model_version=None,
                            approved_version=version, stage=best.get("stage"), f1=best["f1"],
                            test_f1=test.get("f1"), real_f1=real.get("f1"), real_roc_auc=real.get("roc_auc"),
                            f1_threshold=f1_threshold, retrain_attempts=attempts,
                            versions_tried=[r["model_version"] for r in tried])
    resolve_alerts(db, logical_date=day, resolution=f"rerun approved model version {version}")
    message = (f"{day}: model version {version} ({best.get('stage', 'champion')}) approved: validation F1 "
               f"{best['f1']:.4f} >= {floor_text}{evidence} after {attempts} retraining attempt(s); "
               f"reported: {reported}")
    record_notification(db, "evaluation_results", logical_date=day, message=message, approved_version=version,
                        f1=best["f1"], test_f1=test.get("f1"), real_f1=real.get("f1"))
    log.info("%s", message)
    return {"approved_version": version, "f1": best["f1"], "test_f1": test.get("f1"), "real_f1": real.get("f1"),
            "real_roc_auc": real.get("roc_auc"), "retrain_attempts": attempts}


def _candidate_text(doc: dict[str, Any]) -> str:
    """``v3 (finetuned): validation F1 0.6512, ΔF1 +0.0040 [-0.0120, +0.0201] vs v2, real ROC-AUC 0.7712``."""
    text = f"v{doc['model_version']} ({doc.get('stage') or 'champion'}): validation F1 {doc['f1']:.4f}"
    if doc.get("champion"):
        text += f", ΔF1 {_interval(doc['champion'])} vs v{doc['champion']['champion_version']}"
    real = (doc.get("reference") or {}).get("roc_auc")
    if real is not None:
        text += f", real ROC-AUC {real:.4f}"
    if doc.get("real") and not doc["real"]["passed"]:
        text += f" (real-holdout guard failed: ΔROC-AUC {_interval(doc['real'])})"
    return text


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
    relation = ("<" if alert["f1_score"] < alert["f1_threshold"] else
                "reached (no candidate beat its baseline beyond the noise, or one failed the real-holdout guard):")
    return (f"{alert['alert_type']} on {alert['logical_date']}: best F1 {alert['f1_score']:.4f} {relation} threshold "
            f"{alert['f1_threshold']:.4f}{note} after {alert['retrain_attempts']} retraining attempt(s); "
            f"{stays_deployed(deployed_version)}")


@with_database
def send_alert(
    settings: Settings, *, logical_date: LogicalDate, last: dict[str, Any] | None, f1_threshold: float | str,
    dag_id: str | None = None, run_id: str | None = None, db: Database,
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
    from daily_mlops.settings.thresholds import threshold_note
    from daily_mlops.storage.alerts import raise_performance_alert
    from daily_mlops.storage.events import evaluations_of_day, record_evaluation_event

    floor = resolve_floor(settings, db, f1_threshold, "DAG param f1_threshold")
    floor_f1: float = floor["f1_threshold"]
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
    details = [_candidate_text(doc) for doc in recorded if doc["model_version"] in versions]
    candidates = [{"model_version": int(doc["model_version"]), "stage": doc.get("stage"),
                   "lineage_kind": doc.get("stage"), "f1": doc["f1"],
                   "champion_delta_interval": (doc.get("champion") or {}).get("interval"),
                   "real_roc_auc": (doc.get("reference") or {}).get("roc_auc"),
                   "real_delta_interval": (doc.get("real") or {}).get("interval"), "passed": doc.get("passed")}
                  for doc in recorded if doc["model_version"] in versions]
    log.info("alert for %s: best validation F1 %.4f < %s after %d attempt(s); %s", day, best_f1,
             describe_f1_threshold(floor), attempts,
             "; ".join(details) or "no per-version records")
    alert = raise_performance_alert(db, logical_date=day, f1_score=best_f1, f1_threshold=floor_f1,
                                    retrain_attempts=attempts, model_versions_tried=versions, dag_id=dag_id,
                                    run_id=run_id, f1_threshold_note=threshold_note(floor),
                                    drift=day_drift_summary(settings, logical_date=day, db=db),
                                    candidates=candidates)
    record_evaluation_event(db, "alert_raised", logical_date=day, model_version=None, f1=best_f1,
                            f1_threshold=floor_f1, retrain_attempts=attempts, versions_tried=versions,
                            message=alert["message"])
    log.info("%s", alert["message"])
    return {"message": alert["message"], "reason": alert_reason(alert, live_version(db, settings.model_name)),
            "f1_score": best_f1, "retrain_attempts": attempts, "model_versions_tried": versions, "details": details}
