"""The ``check_data_quality`` task of ``data_pipeline_dag``: the data-quality gate, the day's drift and fidelity.

Loads the day's raw batch, the reference rows of the synthesizer that sampled
it and the categories of the fitted preprocessor through
:mod:`daily_mlops.storage`; measures them with :mod:`daily_mlops.ml.quality`
and :mod:`daily_mlops.ml.fidelity`; records every figure under ``quality``
(with ``status``), ``drift`` and ``fidelity`` (recorded, never gated) of the
day's ``processing_metadata``. A failed gate is reported to the caller (the
DAG task raises ``AirflowFailException`` with the message, so the data DAG
run fails, its ``store_processing_metadata`` is ``upstream_failed`` and the
evaluation DAG's sensor fails: no model is judged or retrained on the batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, day_seed, logical_day
from daily_mlops.loop._common import log, with_database

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["batch_fidelity", "check_data_quality", "day_drift_summary", "day_quality", "quality_floors"]

#: What :func:`daily_mlops.ml.quality.drift_summary` says of a batch without drift figures.
_NOT_MEASURED = "drift not measured"


def quality_floors(settings: Settings) -> Any:
    """The gate's floors from ``MLOPS_QUALITY_MIN_DIAGNOSTIC``, ``..._MAX_UNSEEN_SHARE``, ``..._MAX_NULL_INCREASE``."""
    from daily_mlops.ml.quality import QualityFloors

    return QualityFloors(min_diagnostic=settings.quality_min_diagnostic,
                         max_unseen_share=settings.quality_max_unseen_share,
                         max_null_increase=settings.quality_max_null_increase)


def _reference_rows(registry: ModelRegistry, synth_doc: dict[str, Any]) -> pd.DataFrame:
    """The rows the synthesizer was fit on (its artifact, sha256 checked, parsed with the recorded dtypes)."""
    from daily_mlops.ml.serialization import frame_from_csv

    return frame_from_csv(registry.load_artifact(synth_doc, "synthesizer"), synth_doc["reference_columns"],
                          what=f"{synth_doc['model_name']} v{synth_doc['model_version']} reference rows",
                          fix="re-register the synthesizer with `daily-mlops bootstrap` on a fresh MLOPS_MONGO_DB")


def _known_categories(registry: ModelRegistry, pre_doc: dict[str, Any]) -> dict[str, list[str]]:
    """Per categorical column, the categories the fitted preprocessor encodes (others become "unknown").

    The same rule as ``/predict``'s and ``predict``'s input flags (:meth:`TabularPreprocessor.known_categories`).
    """
    from daily_mlops.ml.preprocessing import TabularPreprocessor

    pre = TabularPreprocessor.from_bytes(registry.load_artifact(pre_doc, "preprocessor"),
                                         sha256=pre_doc["sha256"]["preprocessor"])
    return pre.known_categories()


@with_database
def check_data_quality(settings: Settings, *, logical_date: LogicalDate, db: Database,
                       chunk_rows: int | None = None) -> dict[str, Any]:
    """Gate the day's raw batch on structure, record its quality, drift and fidelity figures.

    Reads the raw batch in chunks (``chunk_rows``, default
    :data:`daily_mlops.loop.data.CHUNK_ROWS`; sha256 checked), the reference
    rows of the synthesizer version that sampled it and the categories of the
    preprocessor version that encoded it. Writes the day's
    ``processing_metadata`` with ``quality`` (the figures of
    :func:`daily_mlops.ml.quality.quality_figures`, the verdict of
    :func:`~daily_mlops.ml.quality.gate`: ``status`` ``passed``/``failed``,
    ``worst``, ``message``; ``seconds``) and ``drift``
    (:func:`~daily_mlops.ml.quality.drift_figures`, plus ``param``: the
    day's ``drift`` DAG param, and the positive rates) and ``fidelity``
    (:func:`batch_fidelity` of the batch's first rows: recorded, never gated,
    also on a day that fails the gate); a failed gate also sets the
    document's ``status`` to ``quality_failed``. A rerun replaces all three.
    Date columns are compared in one encoding: the reference rows' and the
    batch sample's are parsed with the schema's formats
    (:func:`~daily_mlops.ml.schema.parse_date_columns`). The fidelity report
    never fails the task: a part it cannot compute is recorded as null with
    its reason (``fidelity.errors``) and logged at WARNING.
    ``seconds`` is the whole task's wall clock, the fidelity report included.

    Returns
    -------
    dict
        ``batch_id``, ``status`` (``passed``/``failed``), ``reason`` (one line
        naming the worst columns and their figures), ``drift`` (one line,
        :func:`~daily_mlops.ml.quality.drift_summary`), ``seconds``.

    Raises
    ------
    NotFoundError
        When the day has no batch (run generate_data first).
    IntegrityError
        When the raw file or an artifact is missing or altered.
    """
    import time

    import pandas as pd

    from daily_mlops.loop.data import CHUNK_ROWS
    from daily_mlops.ml.drift_scenarios import drift_summary
    from daily_mlops.ml.fidelity import MAX_ROWS
    from daily_mlops.ml.quality import BatchProfile, drift_figures, gate, quality_figures
    from daily_mlops.ml.schema import date_columns, parse_date_columns, schema_parts
    from daily_mlops.storage.batches import (
        batch_id_for,
        load_processing_metadata,
        read_raw_batch,
        store_processing_metadata,
    )
    from daily_mlops.storage.registry import ModelRegistry, preprocessor_name, synthesizer_name

    started = time.perf_counter()
    day = logical_day(logical_date)
    batch_id = batch_id_for(day)
    meta = load_processing_metadata(db, day)
    registry = ModelRegistry(db)
    synth_name, pre_name = synthesizer_name(settings.model_name), preprocessor_name(settings.model_name)
    synth_doc = (registry.get(synth_name, meta["synthesizer_version"]) if meta.get("synthesizer_version")
                 else registry.latest(synth_name, statuses=("approved",)))
    pre_doc = (registry.get(pre_name, meta["preprocessor_version"]) if meta.get("preprocessor_version")
               else registry.latest(pre_name, statuses=("approved",)))
    # Dates in one encoding on both sides (naive datetime64[ns]) for the diagnostic, the drift and the fidelity.
    dates = date_columns(synth_doc["schema"])
    reference = parse_date_columns(_reference_rows(registry, synth_doc), dates)
    features, target = schema_parts(synth_doc["schema"])
    profile = BatchProfile(_known_categories(registry, pre_doc), n_rows=int(meta.get("n_rows") or 1),
                           seed=day_seed(settings.seed, day), date_formats=dates)
    # The fidelity report's rows: the head of generate_data's first chunk (shuffled i.i.d. draws, drift applied).
    head, missing = [], min(MAX_ROWS, int(meta.get("sampling_chunk_rows") or MAX_ROWS))
    with read_raw_batch(db, meta["raw_file"], chunk_rows=chunk_rows or CHUNK_ROWS) as chunks:
        for chunk in chunks:
            if missing > 0:
                head.append(chunk.iloc[:missing].copy())
                missing -= len(head[-1])
            profile.update(chunk)
    figures = quality_figures(profile, reference, sdv_metadata=synth_doc["sdv_metadata"])
    if figures["diagnostic"].get("error"):
        log.warning("%s: %s; the unseen-category and null checks still gate", batch_id, figures["diagnostic"]["error"])
    verdict = gate(figures, quality_floors(settings))
    kinds = {f["name"]: f["kind"] for f in features if f["kind"] != "dropped"}
    drift = drift_figures(profile.sample, reference, {**kinds, target["column"]: "target"})
    drift.update(param=meta.get("drift_mode", "none"), **_positive_rates(profile.sample, reference, target))
    fidelity = batch_fidelity(registry, synth_doc, reference, pd.concat(head), seed=day_seed(settings.seed, day))
    seconds = round(time.perf_counter() - started, 3)
    quality = {**verdict, **figures, "seconds": seconds}
    document = {k: v for k, v in meta.items() if k not in ("batch_id", "logical_date")}
    document.update(quality=quality, drift=drift, fidelity=fidelity)
    if verdict["status"] == "failed":
        document["status"] = "quality_failed"
    store_processing_metadata(db, document, logical_date=day)
    summary = drift_summary(drift)
    reason = f"data-quality gate {verdict['status']} for {batch_id}: {verdict['message']}"
    if verdict["status"] == "failed":
        reason += "; no model is judged or retrained on this batch (fix the data source, then rerun the day)"
        log.error("%s", reason)
    else:
        log.info("%s", reason)
    log.info("%s: %s (%.2f s)", batch_id, summary, seconds)
    return {"batch_id": batch_id, "status": verdict["status"], "reason": reason, "drift": summary,
            "seconds": seconds}


def batch_fidelity(registry: ModelRegistry, synth_doc: dict[str, Any], reference: pd.DataFrame,
                   batch: pd.DataFrame, *, seed: int) -> dict[str, Any] | None:
    """The fidelity report of a batch sample against the synthesizer's fit rows and its stored real holdout.

    Parameters
    ----------
    registry, synth_doc
        The registry and the document of the synthesizer version that sampled the batch.
    reference : DataFrame of shape (n_reference_rows, n_columns)
        The rows that synthesizer was fit on.
    batch : DataFrame of shape (<= MAX_ROWS, n_columns)
        The batch's rows the report is computed on. Its date columns, the reference's and the holdout's are
        parsed with the schema's formats first (:func:`~daily_mlops.ml.schema.parse_date_columns`).
    seed : int
        The day's seed (:func:`~daily_mlops.dates.day_seed`).

    Returns
    -------
    dict or None
        :func:`daily_mlops.ml.fidelity.fidelity_report`'s dict (TSTR ROC-AUC on the real holdout, the stored
        TRTR ROC-AUC, their ratio, SDMetrics quality scores, ``errors``), or None when the synthesizer version
        has no ``holdout`` artifact (registered before bootstrap kept one). A part that could not be computed
        is None with its reason under ``errors``, and is logged at WARNING; the gate goes on.

    Raises
    ------
    IntegrityError
        When the holdout artifact's sha256 differs from the recorded one.
    """
    from daily_mlops.ml.fidelity import fidelity_report
    from daily_mlops.ml.schema import date_columns, parse_date_columns, schema_parts
    from daily_mlops.ml.serialization import frame_from_csv

    if "holdout" not in synth_doc.get("artifacts", {}):
        return None
    dates = date_columns(synth_doc["schema"])
    holdout = frame_from_csv(registry.load_artifact(synth_doc, "holdout"), synth_doc["reference_columns"],
                             what="the synthesizer's holdout artifact")
    target = schema_parts(synth_doc["schema"])[1]
    report = fidelity_report(parse_date_columns(batch, dates), reference=parse_date_columns(reference, dates),
                             holdout=parse_date_columns(holdout, dates), metadata=synth_doc["sdv_metadata"],
                             target=target["column"], positive_label=target["positive_label"],
                             trtr_roc_auc=synth_doc.get("trtr_roc_auc"), seed=seed)
    for part, reason in report["errors"].items():
        log.warning("fidelity: %s not computed (recorded as null; the fidelity report is never gated): %s",
                    part, reason)
    log.info("fidelity: TSTR ROC-AUC %s, TRTR %s, ratio %s, shapes %s, pair trends %s (%.1f s)", report["tstr_roc_auc"],
             report["trtr_roc_auc"], report["ratio"], report["column_shapes"], report["column_pair_trends"],
             report["seconds"]["total"])
    return report


def _positive_rates(sample: pd.DataFrame, reference: pd.DataFrame, target: dict[str, Any]) -> dict[str, Any]:
    """The positive rate of the batch sample and of the reference (fractions in [0, 1])."""
    column, positive = target["column"], target["positive_label"]
    if column not in sample.columns or column not in reference.columns or not len(sample) or not len(reference):
        return {}
    return {"positive_rate": round(float((sample[column].astype(str) == positive).mean()), 6),
            "reference_positive_rate": round(float((reference[column].astype(str) == positive).mean()), 6)}


def day_quality(db: Database, logical_date: LogicalDate) -> dict[str, Any]:
    """What the gate recorded for a day, for run summaries and ``daily-mlops status``.

    Returns
    -------
    dict
        ``quality_status`` (``passed``, ``failed`` or None when the gate did not run), ``quality_reason``
        (its one-line message or None) and ``drift_summary`` (:func:`~daily_mlops.ml.quality.drift_summary`).
        Never raises for a day without a batch.
    """
    from daily_mlops.errors import NotFoundError
    from daily_mlops.ml.drift_scenarios import drift_summary
    from daily_mlops.storage.batches import load_processing_metadata

    try:
        doc = load_processing_metadata(db, logical_day(logical_date))
    except NotFoundError:
        doc = {}
    quality = doc.get("quality") or {}
    return {"quality_status": quality.get("status"), "quality_reason": quality.get("message"),
            "drift_summary": drift_summary(doc.get("drift"))}


@with_database
def day_drift_summary(settings: Settings, *, logical_date: LogicalDate, db: Database) -> str | None:
    """One line on the drift of the day's batch, for the alert message (``send_alert``), or None.

    E.g. ``"drift score 0.43 (1 = like the reference) (drift param shift), worst: credit_amount 0.07, ..."``;
    None when the day has no batch or no drift figures (never raises for a missing day).
    """
    line = day_quality(db, logical_date)["drift_summary"]
    return None if line == _NOT_MEASURED else line
