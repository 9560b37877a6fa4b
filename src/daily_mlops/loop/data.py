"""The tasks of ``data_pipeline_dag``: sample the day's batch, preprocess it, record its metadata.

Each function is what one Airflow task calls: it loads through
:mod:`daily_mlops.storage`, runs a pure step from :mod:`daily_mlops.ml`, and
saves through :mod:`daily_mlops.storage`, keyed by the logical date, so a rerun
of the same day replaces that day's documents. It returns a small JSON value
for XCom; data never travels through XCom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, chunk_seed, day_seed, logical_day
from daily_mlops.errors import MLOpsError
from daily_mlops.loop._common import log, with_database

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database

__all__ = ["CHUNK_ROWS", "drift_seed", "generate_data", "preprocess_data", "store_processing_metadata"]

#: Rows sampled, validated and encoded at a time: memory holds one chunk, not the day's batch.
CHUNK_ROWS = 100_000
#: XORed into the day's seed before deriving the ``drift`` param's seeds (:func:`drift_seed`).
_DRIFT_SALT = 0x0D41F7


@with_database
def generate_data(
    settings: Settings, *, logical_date: LogicalDate, db: Database, chunk_rows: int = CHUNK_ROWS,
    drift: str = "none",
) -> dict[str, Any]:
    """Sample the day's batch from the family's synthesizer and store it in the GridFS bucket ``raw_data``.

    The synthesizer is the one bootstrap registered for ``MLOPS_MODEL_NAME``
    (:func:`~daily_mlops.storage.registry.synthesizer_name`).

    ``MLOPS_DAILY_ROWS`` rows, seeded by (``MLOPS_SEED``, logical date): the
    same day always gives the same rows. They are sampled and validated
    ``chunk_rows`` at a time (:meth:`Synthesizer.generate_chunks`; a day of
    at most ``chunk_rows`` rows is exactly :meth:`Synthesizer.generate`'s
    batch) and appended to a temporary Parquet file; the whole batch is
    validated against the schema before anything is written. The synthesizer is rebuilt from its
    stored reference rows and copula parameters (:meth:`Synthesizer.from_reference`); nothing
    stored is loaded as code. Two runs of one day at once converge: one raw
    file stays and ``processing_metadata`` points at it.

    The batch's fidelity report is not computed here: the data-quality gate
    (:func:`daily_mlops.loop.quality.check_data_quality`) computes it from the
    stored batch and records it as ``fidelity``.

    ``drift`` (the DAG param, one of :data:`~daily_mlops.ml.drift_scenarios.DRIFT_MODES`)
    alters each validated chunk after sampling (:func:`~daily_mlops.ml.drift_scenarios.apply_drift`,
    seeded by the chunk's seed, so a day still always gives the same rows);
    it is recorded as ``drift_mode`` in ``processing_metadata``.

    Returns
    -------
    dict
        ``batch_id``, ``n_rows``, ``raw_sha256``.

    Raises
    ------
    IntegrityError
        When the synthesizer artifact's sha256 does not match its record.
    UnsafeArtifactError, SchemaError
        When the stored synthesizer is not reference rows in the recorded
        format (nothing is written).
    ConfigError
        When ``drift`` is not a drift mode (nothing is written).
    """
    from daily_mlops.ml.drift_scenarios import DriftPlan, apply_drift, check_drift_mode
    from daily_mlops.ml.schema import schema_parts, validate_batch
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.storage.batches import batch_id_for, record_raw_batch, store_raw_batch
    from daily_mlops.storage.registry import ModelRegistry, synthesizer_name

    drift = check_drift_mode(drift)
    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    synth_doc = registry.latest(synthesizer_name(settings.model_name), statuses=("approved",))
    synth = Synthesizer.from_reference(
        registry.load_artifact(synth_doc, "synthesizer"), sha256=synth_doc["sha256"]["synthesizer"], record=synth_doc
    )
    sampled = {"rows": 0}
    plan = None
    if drift != "none":
        features, target = schema_parts(synth_doc["schema"])
        plan = DriftPlan(synth.reference_, features, target_column=target["column"],
                         positive_label=target["positive_label"], negative_label=target["negative_label"])

    def validated_chunks():
        for k, chunk in enumerate(synth.generate_chunks(settings.daily_rows, seed=settings.seed, logical_date=day,
                                                        chunk_rows=chunk_rows)):
            sampled["rows"] += len(chunk)
            valid = validate_batch(chunk, synth_doc["schema"])
            valid = valid if plan is None else apply_drift(valid, drift, plan, seed=drift_seed(settings.seed, day, k))
            yield valid

    store_raw_batch(db, validated_chunks(), logical_date=day)
    meta = record_raw_batch(db, {
        "status": "raw", "n_rows": sampled["rows"], "synthesizer_version": synth_doc["model_version"],
        "sampling_seed": day_seed(settings.seed, day), "sampling_chunk_rows": int(chunk_rows), "drift_mode": drift,
    }, logical_date=day)
    log.info("generated %s: %d rows from synthesizer v%s (seed %d, drift %s), sha256 %s", batch_id_for(day),
             sampled["rows"], synth_doc["model_version"], day_seed(settings.seed, day), drift,
             meta["raw_file"]["sha256"][:12])
    return {"batch_id": batch_id_for(day), "n_rows": sampled["rows"], "raw_sha256": meta["raw_file"]["sha256"]}


def drift_seed(seed: int, day: dt.date, k: int) -> int:
    """The seed of the ``drift`` param's draws in chunk ``k`` of ``day``: :func:`chunk_seed` of the day's seed, salted.

    Distinct from the sampling seeds of the chunks, stable across processes.
    """
    return chunk_seed(day_seed(seed, day) ^ _DRIFT_SALT, k + 1)


@with_database
def preprocess_data(
    settings: Settings, *, logical_date: LogicalDate, db: Database, chunk_rows: int = CHUNK_ROWS
) -> dict[str, Any]:
    """Validate the day's raw batch, apply the fitted preprocessor, split, store the splits in ``processed_data``.

    The preprocessor is the one fit at bootstrap (registry ``preprocessor``, or
    ``<MLOPS_MODEL_NAME>:preprocessor`` for another family), reused unchanged.
    The raw batch is read, validated and encoded ``chunk_rows`` rows at a time
    into a temporary Parquet file; then the stratified 70/15/15 pretrain /
    finetune / test split (seeded by the day) writes one Parquet file per split
    to the GridFS bucket ``processed_data``, recorded in the day's
    ``processing_metadata`` with ``columns``: the reference columns the schema
    dropped or converted, with the reason (:func:`~daily_mlops.ml.schema.column_actions`).

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
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import column_actions, schema_parts, validate_batch
    from daily_mlops.ml.splits import split_indices
    from daily_mlops.storage.batches import (
        BlockSpool,
        batch_id_for,
        load_processing_metadata,
        read_raw_batch,
        store_processed_splits,
    )
    from daily_mlops.storage.registry import ModelRegistry, preprocessor_name

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    meta = load_processing_metadata(db, day)
    pre_doc = registry.latest(preprocessor_name(settings.model_name), statuses=("approved",))
    pre = TabularPreprocessor.from_bytes(registry.load_artifact(pre_doc, "preprocessor"),
                                         sha256=pre_doc["sha256"]["preprocessor"])
    target = schema_parts(pre.schema)[1]["column"]
    with read_raw_batch(db, meta["raw_file"], chunk_rows=chunk_rows) as chunks, \
            BlockSpool(x_cat=pre.categorical_features_, x_num=pre.numeric_features_) as spool:
        for chunk in chunks:
            if target not in chunk.columns:  # transform validates the rest (and the target when present)
                validate_batch(chunk, pre.schema)  # raises SchemaError naming every missing column
            spool.append(pre.transform(chunk))
        splits = split_indices(spool.y, seed=day_seed(settings.seed, day))
        processed = store_processed_splits(db, spool, splits, logical_date=day, raw_file=meta["raw_file"],
                                           extra={"preprocessor_version": pre_doc["model_version"],
                                                  "columns": column_actions(pre.schema)})
    counts = {name: entry["rows"] for name, entry in processed["splits"].items()}
    log.info("preprocessed %s with preprocessor v%s: %s rows", batch_id_for(day), pre_doc["model_version"],
             " / ".join(f"{name} {n}" for name, n in counts.items()))
    return {"batch_id": batch_id_for(day), "preprocessor_version": pre_doc["model_version"], "rows": counts}


@with_database
def store_processing_metadata(settings: Settings, *, logical_date: LogicalDate, db: Database) -> dict[str, Any]:
    """Check the day's split files and write its ``processing_metadata`` (status ``ready``).

    The split sizes come from the index; each recorded file must exist in
    the GridFS bucket ``processed_data`` with the recorded sha256 and row count.

    Returns
    -------
    dict
        ``batch_id``, ``n_rows``, ``positive_rate`` (fraction in [0, 1]).

    Raises
    ------
    MLOpsError
        When the split files do not add up to the raw batch, or one is missing or differs from the index.
    """
    from daily_mlops.storage.batches import (
        batch_id_for,
        load_processing_metadata,
        processed_file_problems,
        split_counts,
    )
    from daily_mlops.storage.batches import store_processing_metadata as store

    day = logical_day(logical_date)
    batch_id = batch_id_for(day)
    meta = load_processing_metadata(db, day)
    per_split = split_counts(db, day)
    n_rows = sum(d["rows"] for d in per_split.values())
    problems = processed_file_problems(db, day)
    if n_rows != meta["n_rows"] or problems:
        raise MLOpsError(
            f"{batch_id}: the processed_data split files hold {n_rows} rows, the raw batch {meta['n_rows']}"
            + "".join(f"; {p}" for p in problems) + "; rerun preprocess_data for this logical date"
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
    log.info("%s ready: %d rows, positive rate %.3f", batch_id, n_rows, doc["positive_rate"])
    return {"batch_id": batch_id, "n_rows": n_rows, "positive_rate": doc["positive_rate"]}
