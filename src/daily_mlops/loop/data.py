"""The tasks of ``data_pipeline_dag``: sample the day's batch, preprocess it, record its metadata.

Each function is what one Airflow task calls: it loads through
:mod:`daily_mlops.storage`, runs a pure step from :mod:`daily_mlops.ml`, and
saves through :mod:`daily_mlops.storage`, keyed by the logical date, so a rerun
of the same day replaces that day's documents. It returns a small JSON value
for XCom; data never travels through XCom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, day_seed, logical_day
from daily_mlops.errors import MLOpsError
from daily_mlops.loop._common import log, with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database

    from daily_mlops.settings import Settings

__all__ = ["generate_data", "preprocess_data", "store_processing_metadata"]


@with_database
def generate_data(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any]:
    """Sample the day's batch from the family's synthesizer and store it in the GridFS bucket ``raw_data``.

    The synthesizer is the one bootstrap registered for ``MLOPS_MODEL_NAME``
    (:func:`~daily_mlops.storage.registry.synthesizer_name`).

    ``MLOPS_DAILY_ROWS`` rows, seeded by (``MLOPS_SEED``, logical date): the
    same day always gives the same rows. The batch is validated against the
    schema before anything is written. The synthesizer is refit from its
    stored reference rows (:meth:`Synthesizer.from_reference`); nothing
    stored is loaded as code. Two runs of one day at once converge: one raw
    file stays and ``processing_metadata`` points at it.

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
    """
    from daily_mlops.storage.batches import batch_id_for, record_raw_batch, store_raw_batch
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.storage.registry import ModelRegistry, synthesizer_name

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    synth_doc = registry.latest(synthesizer_name(settings.model_name), statuses=("approved",))
    synth = Synthesizer.from_reference(
        registry.load_artifact(synth_doc, "synthesizer"), sha256=synth_doc["sha256"]["synthesizer"], record=synth_doc
    )
    frame = validate_batch(synth.generate(settings.daily_rows, seed=settings.seed, logical_date=day), synth_doc["schema"])
    store_raw_batch(db, frame, logical_date=day)
    meta = record_raw_batch(db, {
        "status": "raw", "n_rows": int(len(frame)), "synthesizer_version": synth_doc["model_version"],
        "sampling_seed": day_seed(settings.seed, day),
    }, logical_date=day)
    log.info("generated %s: %d rows from synthesizer v%s (seed %d), sha256 %s", batch_id_for(day), len(frame),
             synth_doc["model_version"], day_seed(settings.seed, day), meta["raw_file"]["sha256"][:12])
    return {"batch_id": batch_id_for(day), "n_rows": int(len(frame)), "raw_sha256": meta["raw_file"]["sha256"]}


@with_database
def preprocess_data(settings: "Settings", *, logical_date: LogicalDate, db: "Database") -> dict[str, Any]:
    """Validate the day's raw batch, apply the fitted preprocessor, split, store ``processed_data``.

    The preprocessor is the one fit at bootstrap (registry ``preprocessor``, or
    ``<MLOPS_MODEL_NAME>:preprocessor`` for another family),
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
    from daily_mlops.storage.batches import batch_id_for, load_processing_metadata, load_raw_batch, store_processed_batch
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import validate_batch
    from daily_mlops.ml.splits import split_indices
    from daily_mlops.storage.registry import ModelRegistry, preprocessor_name

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    meta = load_processing_metadata(db, day)
    pre_doc = registry.latest(preprocessor_name(settings.model_name), statuses=("approved",))
    pre = TabularPreprocessor.from_bytes(registry.load_artifact(pre_doc, "preprocessor"),
                                         sha256=pre_doc["sha256"]["preprocessor"])
    frame = validate_batch(load_raw_batch(db, meta["raw_file"]), pre.schema)
    encoded = pre.transform(frame)
    splits = split_indices(encoded.y, seed=day_seed(settings.seed, day))
    counts = store_processed_batch(db, encoded, splits, logical_date=day)
    log.info("preprocessed %s with preprocessor v%s: %s rows", batch_id_for(day), pre_doc["model_version"],
             " / ".join(f"{name} {n}" for name, n in counts.items()))
    return {"batch_id": batch_id_for(day), "preprocessor_version": pre_doc["model_version"], "rows": counts}


@with_database
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
    from daily_mlops.storage.batches import batch_id_for, load_processing_metadata, split_counts
    from daily_mlops.storage.batches import store_processing_metadata as store

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
    log.info("%s ready: %d rows, positive rate %.3f", batch_id, n_rows, doc["positive_rate"])
    return {"batch_id": batch_id, "n_rows": n_rows, "positive_rate": doc["positive_rate"]}
