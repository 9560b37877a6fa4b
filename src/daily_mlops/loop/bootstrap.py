"""``daily-mlops bootstrap``: fit the synthesizer and preprocessor, train and register model version 1."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daily_mlops.loop._common import hyperparameters, timed
from daily_mlops.storage.registry import BOOTSTRAP_RUN_KEY

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["BOOTSTRAP_DATE", "BOOTSTRAP_RUN_KEY", "bootstrap", "bootstrap_if_missing", "pretraining_epochs",
           "reference_holdout", "register_preprocessor", "register_synthesizer", "require_bootstrapped"]

#: Logical date of the bootstrap batch the initial model is trained on.
BOOTSTRAP_DATE = dt.date(1970, 1, 1)
#: Rows of the held-out sample ``f1_threshold: auto`` is measured on: twice a day's batch, at most this many.
FLOOR_ROWS_MAX = 20_000
#: Added to ``MLOPS_SEED`` for the floor sample, so its rows are not the bootstrap batch's.
_FLOOR_SEED_OFFSET = 1


def floor_rows(daily_rows: int) -> int:
    """Rows of the bootstrap floor sample: ``min(2 * daily_rows, FLOOR_ROWS_MAX)``."""
    return int(min(2 * int(daily_rows), FLOOR_ROWS_MAX))


def _floor_sample_f1(synth: Any, pre: Any, bundle: Any, schema: dict, settings: Settings,
                     say: Callable[[str], None]) -> float:
    """F1 (positive class) of the bootstrap model on a fresh held-out synthetic sample: the base of ``auto``.

    The test split (15% of one day's batch, 1,500 rows at the default 10,000)
    gives F1 with a standard error of about 0.02, as large as the day-to-day
    spread of the champion's F1; a floor set from it inherits that luck. This
    sample (:func:`floor_rows` rows, 20,000 by default: standard error about
    0.005) is drawn from the same synthesizer with seed ``MLOPS_SEED + 1``,
    never trained or calibrated on, and scored at the model's decision threshold (``bundle``: calibrated).
    """
    from daily_mlops.ml.metrics import classification_metrics
    from daily_mlops.ml.schema import validate_batch

    rows = floor_rows(settings.daily_rows)
    sample = pre.transform(validate_batch(
        synth.generate(rows, seed=settings.seed + _FLOOR_SEED_OFFSET, logical_date=BOOTSTRAP_DATE), schema))
    f1 = classification_metrics(sample.y, bundle.predict_proba_encoded(sample),
                                decision_threshold=bundle.decision_threshold)["f1"]
    say(f"F1 on a held-out floor sample of {rows} rows: {f1:.4f} (f1_threshold auto = this - f1_tolerance)")
    return float(f1)


def require_bootstrapped(db: Database, *, where: str, model_name: str | None = None) -> None:
    """Check that the loop can run: a champion model version, the synthesizer and the preprocessor exist.

    ``daily-mlops run`` calls it before any Airflow work, so running before
    ``daily-mlops bootstrap`` is one message, not a run of failing tasks.
    Only the registry records are read (artifact integrity is checked by the
    tasks that load them).

    Parameters
    ----------
    where : str
        The database as the user knows it, named in the message (no credentials).
    model_name : str, optional
        The model family (``MLOPS_MODEL_NAME``; default ``tabtransformer``).

    Raises
    ------
    NotFoundError
        When there is no approved or deployed version of the family, or no
        approved synthesizer or preprocessor of it; the fix is ``daily-mlops bootstrap``.
    """
    from daily_mlops.errors import NotFoundError
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry, preprocessor_name, synthesizer_name

    name = model_name or MODEL_NAME
    registry = ModelRegistry(db)
    synth, pre = synthesizer_name(name), preprocessor_name(name)
    checks = ((f"{name} model", lambda: registry.champion(name)),
              (synth, lambda: registry.latest(synth, statuses=("approved",))),
              (pre, lambda: registry.latest(pre, statuses=("approved",))))
    fix = "daily-mlops bootstrap" + ("" if name == MODEL_NAME else f" --model-name {name}")
    for what, find in checks:
        try:
            find()
        except NotFoundError:
            raise NotFoundError(f"no {what} is registered in {where}; run `{fix}` first") from None


def register_synthesizer(
    registry: ModelRegistry, reference: pd.DataFrame, schema: dict[str, Any], *, seed: int,
    model_name: str | None = None, marginal: str = "beta",
) -> tuple[Synthesizer, dict[str, Any]]:
    """Fit the synthesizer on 70% of the validated reference rows and register it (approved).

    A stratified 30% of the real rows (:func:`~daily_mlops.ml.fidelity.holdout_split`,
    seeded by ``seed``) is kept out of the fit and stored as the artifact
    ``holdout`` (canonical CSV, sha256 in the document); version 1's real-row
    metrics and every batch's TSTR ROC-AUC are scored on it. TRTR ROC-AUC
    (HistGradientBoostingClassifier trained on the 70%, scored on the 30%) is
    computed here once and stored as ``trtr_roc_auc``. The synthesizer fits one
    Gaussian copula per target class (``target_column`` of the schema).

    Its registry name is :func:`~daily_mlops.storage.registry.synthesizer_name` of
    ``model_name`` (``synthesizer`` for the default family ``tabtransformer``).

    The artifact ``synthesizer`` is the canonical CSV of the rows it was fit
    on; the document records ``holdout`` (fraction, seed, row counts), ``reference_format``, ``fit_seed``,
    ``reference_columns``, ``sdv_metadata`` and ``copula_params`` (:meth:`Synthesizer.storage_record`),
    from which :meth:`Synthesizer.from_reference` rebuilds it. Nothing stored
    is code. Idempotent through the run key ``bootstrap``.

    Parameters
    ----------
    reference : DataFrame of shape (n_rows, n_columns)
        All reference rows after :func:`~daily_mlops.ml.schema.validate_batch`.
    schema : dict
        From :func:`~daily_mlops.ml.schema.infer_schema`.
    seed : int
        The fit seed (``MLOPS_SEED``).
    marginal : str
        ``MLOPS_SYNTHESIS_MARGINAL``: the copulas' numerical marginal, ``auto`` resolved with the number of
        feature columns (:func:`~daily_mlops.ml._copulas.resolve_marginal`); the resolved one is recorded.

    Returns
    -------
    (Synthesizer, dict)
        The fitted model and its registry document.

    Raises
    ------
    SchemaError
        When a reference column cannot be stored exactly as CSV, or a target
        class has too few rows to hold out and fit (nothing is written).
    """
    from daily_mlops.ml._copulas import resolve_marginal
    from daily_mlops.ml.fidelity import HOLDOUT_FRACTION, classifier_roc_auc
    from daily_mlops.ml.schema import datetime_formats, schema_parts
    from daily_mlops.ml.serialization import frame_to_csv
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.storage.registry import MODEL_NAME, synthesizer_name

    target = schema_parts(schema)[1]
    marginal = resolve_marginal(marginal, reference.shape[1] - 1)
    fit_part, holdout = reference_holdout(reference, schema, seed=seed)
    with timed("synthesizer fit") as t_synth:
        synth = Synthesizer(seed=seed, target_column=target["column"], marginal=marginal).fit(
            fit_part, datetime_formats=datetime_formats(schema))
    artifact, record = synth.reference_csv(), synth.storage_record()
    with timed("TRTR ROC-AUC") as t_trtr:
        trtr = classifier_roc_auc(fit_part, holdout, target=target["column"], positive_label=target["positive_label"],
                                  seed=seed)
    doc = registry.register(
        synthesizer_name(model_name or MODEL_NAME), run_key=BOOTSTRAP_RUN_KEY,
        artifacts={"synthesizer": artifact, "holdout": frame_to_csv(holdout)}, status="approved",
        hyperparameters={"synthesizer": "GaussianCopulaSynthesizer", "seed": seed, "marginal": marginal},
        trained_on=["reference"],
        extra={**record, "schema": schema, "n_reference_rows": int(len(fit_part)), "fit_seconds": t_synth["seconds"],
               "holdout": {"fraction": HOLDOUT_FRACTION, "seed": seed, "stratified_on": target["column"],
                           "n_rows": int(len(holdout)), "n_fit_rows": int(len(fit_part))},
               "trtr_roc_auc": trtr, "trtr_seconds": t_trtr["seconds"]},
    )
    return synth, doc


def reference_holdout(
    reference: pd.DataFrame, schema: dict[str, Any], *, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The synthesizer's fit part (70%) and the real holdout (30%) of the reference rows, stratified on the target.

    Deterministic for ``(reference, seed)`` (:func:`~daily_mlops.ml.fidelity.holdout_split`);
    both frames have the index ``0..n-1``.
    """
    from daily_mlops.ml.fidelity import holdout_split
    from daily_mlops.ml.schema import schema_parts

    fit_rows, holdout_rows = holdout_split(reference, schema_parts(schema)[1]["column"], seed=seed)
    return reference.iloc[fit_rows].reset_index(drop=True), reference.iloc[holdout_rows].reset_index(drop=True)


def pretraining_epochs(settings: Settings, architecture: str) -> int:
    """Contrastive pretraining epochs of a network of the resolved ``architecture`` (``"ft"`` or ``"tab"``).

    ``MLOPS_TAB_PRETRAIN_EPOCHS`` for ``"tab"``, ``MLOPS_PRETRAIN_EPOCHS`` for ``"ft"``. A ``"tab"``
    network is built for wide tables, where a step attends over every categorical column (43 on
    ``scripts/make_wide_table.py``'s table, against 20 tokens of the bundled data's ``"ft"`` network);
    there 2 epochs give the same held-out ROC-AUC as 5 (``python -m benchmarks wide``).
    """
    return settings.tab_pretrain_epochs if architecture == "tab" else settings.pretrain_epochs


def register_preprocessor(registry: ModelRegistry, reference: Any, schema: dict, *,
                          name: str = "preprocessor") -> tuple[Any, dict[str, Any]]:
    """Fit the :class:`~daily_mlops.ml.preprocessing.TabularPreprocessor` on the reference rows and register it.

    Registered as ``name`` (run key ``bootstrap``, status ``approved``) with its
    signature and the schema; returns the fitted preprocessor and its registry document.
    """
    from daily_mlops.ml.preprocessing import TabularPreprocessor

    pre = TabularPreprocessor(schema).fit(reference)
    doc = registry.register(
        name, run_key=BOOTSTRAP_RUN_KEY, artifacts={"preprocessor": pre.to_bytes()}, status="approved",
        trained_on=["reference"], signature=pre.signature(), extra={"schema": schema},
    )
    return pre, doc


def bootstrap(settings: Settings, *, db: Database, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit the synthesizer and preprocessor, train model version 1, register it as approved.

    Steps: read and validate ``MLOPS_REFERENCE_DATA``; fit the SDV
    GaussianCopulaSynthesizer on its 70% fit part (registry name ``synthesizer``); fit the
    preprocessor on the same fit part, so the real holdout stays unseen by every fitted step (registry name
    ``preprocessor``); sample the bootstrap batch (``MLOPS_DAILY_ROWS`` rows, logical date 1970-01-01) and
    split it (:data:`~daily_mlops.ml.splits.SPLIT_FRACTIONS`); contrastive pretraining on the pretrain split
    (:func:`pretraining_epochs`: ``MLOPS_PRETRAIN_EPOCHS`` for an ``"ft"`` network, ``MLOPS_TAB_PRETRAIN_EPOCHS``
    for a ``"tab"`` one), fine-tuning on the pretrain and finetune splits
    (:data:`~daily_mlops.ml.splits.FIT_SPLITS`), the Platt calibrator and the decision threshold fitted on the
    calibration split (:func:`~daily_mlops.loop.evidence.calibrate_on`); evaluate on the validation and test
    splits and on the real holdout (the stratified 30% of the reference rows kept out of the synthesizer's fit);
    register
    ``MLOPS_MODEL_NAME`` (``tabtransformer``) version 1 with status ``approved``, with
    ``f1_threshold_auto`` (its F1 on a held-out floor sample, :func:`floor_rows` rows, minus
    ``MLOPS_F1_TOLERANCE``: what ``f1_threshold: auto`` means,
    :func:`~daily_mlops.loop.f1_floor.floor_record`), also written to ``MLOPS_HOME/f1_floor.json`` for the
    DAG files' param description.

    Several model families live in one registry: a family other than
    ``tabtransformer`` gets its own synthesizer and preprocessor, named
    ``<model_name>:synthesizer`` and ``<model_name>:preprocessor``
    (:func:`~daily_mlops.storage.registry.synthesizer_name`), fit on its own reference data.

    Idempotent: when version 1 exists (run key ``bootstrap``) nothing is
    trained or written and its record is returned with ``created: False``.

    Returns
    -------
    dict
        ``version``, ``created``, ``metrics`` (test split), ``real_metrics``
        (the real holdout rows), ``trtr_roc_auc``, ``f1_threshold_auto``, ``seconds``, ``columns`` (every
        dropped or converted reference column with its reason, :func:`~daily_mlops.ml.schema.column_actions`).

    Raises
    ------
    SchemaError
        When the reference CSV lacks the target column or its labels are not binary.
    """
    from daily_mlops.loop.f1_floor import floor_record, write_floor_file
    from daily_mlops.storage.registry import ModelRegistry, preprocessor_name

    name = settings.model_name
    pre_name = preprocessor_name(name)  # refuses a name that cannot be a family before anything is read
    say = progress or (lambda message: None)
    registry = ModelRegistry(db)
    existing = registry.find_run(name, BOOTSTRAP_RUN_KEY)
    if existing is not None:
        from daily_mlops.ml.schema import column_actions

        pre_existing = registry.find_run(pre_name, BOOTSTRAP_RUN_KEY)
        floor = existing.get("f1_threshold_auto") or floor_record(
            existing["metrics"]["test"]["f1"], settings.f1_tolerance)
        write_floor_file(settings.home, name, existing["model_version"], floor)
        return {"model_version": existing["model_version"], "created": False,
                "metrics": existing["metrics"].get("test", {}),
                "real_metrics": existing["metrics"].get("reference", {}), "seconds": 0.0, "f1_threshold_auto": floor,
                "columns": column_actions(pre_existing["schema"]) if pre_existing else []}

    from daily_mlops.loop.evidence import DayRows, calibrate_on, score
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.ml.calibration import calibration_summary
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.encoded import EncodedBatch
    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.network import TabTransformer
    from daily_mlops.ml.schema import column_actions, infer_schema, read_csv, validate_batch
    from daily_mlops.ml.splits import FIT_SPLITS, split_indices
    from daily_mlops.ml.training import finetune, pretrain_contrastive, seed_everything
    from daily_mlops.storage.events import record_training_event

    started = time.perf_counter()
    device = resolve_device(settings.device)
    reference_path = settings.require_reference_data()
    say(f"reading reference data {reference_path}")
    reference = read_csv(reference_path, what="MLOPS_REFERENCE_DATA")
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)

    say("fitting the SDV GaussianCopulaSynthesizer on the reference data")
    synth, synth_doc = register_synthesizer(registry, reference, schema, seed=settings.seed, model_name=name,
                                            marginal=settings.synthesis_marginal)
    # fit on the synthesizer's fit part only: the real holdout stays unseen by every fitted step
    say("fitting the preprocessor on the reference data (the synthesizer's fit part)")
    pre, pre_doc = register_preprocessor(registry, reference_holdout(reference, schema, seed=settings.seed)[0],
                                         schema, name=pre_name)

    say(f"sampling the bootstrap batch ({settings.daily_rows} rows)")
    batch = validate_batch(
        synth.generate(settings.daily_rows, seed=settings.seed, logical_date=BOOTSTRAP_DATE), schema
    )
    encoded = pre.transform(batch)
    splits = split_indices(encoded.y, seed=settings.seed)
    part = {name: encoded.subset(idx) for name, idx in splits.items()}
    fit = EncodedBatch.concat([part[name] for name in FIT_SPLITS])

    seed_everything(settings.seed)
    model = TabTransformer(
        cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=settings.d_model, nhead=settings.nhead,
        num_layers=settings.num_layers, dim_feedforward=settings.dim_feedforward, dropout=settings.dropout,
        architecture=settings.architecture, encoder_dropout=settings.encoder_dropout,
    )
    pretrain_epochs = pretraining_epochs(settings, model.architecture)
    say(f"contrastive pretraining: {pretrain_epochs} epochs on {len(part['pretrain'])} rows")
    with timed("pretraining") as t_pre:
        pre_losses = pretrain_contrastive(
            model, part["pretrain"].x_cat, part["pretrain"].x_num, epochs=pretrain_epochs,
            batch_size=settings.batch_size, learning_rate=settings.learning_rate, temperature=settings.temperature,
            mask_probability=settings.mask_probability, seed=settings.seed, device=device,
            on_epoch=lambda e, loss: say(f"  pretrain epoch {e}: NT-Xent {loss:.4f}"),
        ) if pretrain_epochs else []
    say(f"fine-tuning: {settings.finetune_epochs} epochs on {len(fit)} rows "
        f"({len(part['calibration'])} more calibrate it and choose the decision threshold)")
    with timed("fine-tuning") as t_ft:
        ft_losses = finetune(
            model, fit.x_cat, fit.x_num, fit.labels(),
            epochs=settings.finetune_epochs, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            seed=settings.seed, device=device,
            on_epoch=lambda e, loss: say(f"  fine-tune epoch {e}: cross-entropy {loss:.4f}"),
        )
    calibration, threshold = calibrate_on(model, part["calibration"])
    bundle = ModelBundle(model=model, preprocessor=pre, decision_threshold=threshold, model_name=name,
                         model_version=None, calibration=calibration)
    holdout = pre.transform(reference_holdout(reference, schema, seed=settings.seed)[1])
    rows = DayRows(calibration=part["calibration"], validation=part["validation"], test=part["test"],
                   reference=holdout, batch_sha256="bootstrap")
    scored = score(bundle, rows)
    test_metrics, real_metrics = scored.metrics["test"], scored.metrics["reference"]
    floor = floor_record(_floor_sample_f1(synth, pre, bundle, schema, settings, say),
                         settings.f1_tolerance, split=f"floor sample ({floor_rows(settings.daily_rows)} rows)")
    calibration = {**calibration, "test": calibration_summary(rows.test.y, bundle.scores_encoded(rows.test),
                                                              calibration)}

    doc = registry.register(
        name, run_key=BOOTSTRAP_RUN_KEY, artifacts={"weights": state_dict_to_bytes(model)}, status="approved",
        hyperparameters=hyperparameters(settings),
        metrics={**test_metrics, **scored.metrics},
        trained_on=["batch-bootstrap"], evaluated_on=["batch-bootstrap", "reference"],
        n_parameters=model.n_parameters, signature=pre.signature(), logical_date=BOOTSTRAP_DATE.isoformat(),
        extra={
            "architecture": model.config, "decision_threshold": threshold, "calibration": calibration,
            "lineage_kind": "bootstrap",
            "preprocessor_version": pre_doc["model_version"], "synthesizer_version": synth_doc["model_version"],
            "split_sizes": {k: int(len(v)) for k, v in splits.items()},
            "reference_holdout_rows": len(holdout),
            "f1_threshold_auto": floor,
        },
    )
    for stage, losses, secs, n_rows in (("pretrain", pre_losses, t_pre["seconds"], len(part["pretrain"])),
                                        ("finetune", ft_losses, t_ft["seconds"], len(fit))):
        record_training_event(
            db, model_name=name, model_version=doc["model_version"], stage=stage, losses=[float(x) for x in losses],
            epochs=len(losses), seconds=secs, rows=n_rows, batch_id="batch-bootstrap", logical_date=None,
        )
    write_floor_file(settings.home, name, doc["model_version"], floor)
    return {"model_version": doc["model_version"], "created": True, "metrics": test_metrics,
            "real_metrics": real_metrics, "decision_threshold": threshold, "f1_threshold_auto": floor,
            "n_parameters": model.n_parameters,
            "trtr_roc_auc": synth_doc.get("trtr_roc_auc"),
            "seconds": round(time.perf_counter() - started, 1), "columns": column_actions(schema)}


def bootstrap_if_missing(settings: Settings, uri: str, *, progress: Callable[[str], None]) -> dict[str, Any]:
    """:func:`bootstrap` on the database ``settings.mongo_db`` of the server at ``uri``, saying what happened.

    Used by ``daily-mlops airflow`` and ``daily-mlops stack`` before Airflow starts. Idempotent like
    :func:`bootstrap`. Raises what :func:`bootstrap` raises.
    """
    from daily_mlops.storage.mongo import connect

    with connect(uri, settings.mongo_db) as db:
        progress("bootstrap: checking model version 1")
        result = bootstrap(settings, db=db, progress=progress)
    progress(f"bootstrap: {settings.model_name} version {result['model_version']} "
             + ("registered" if result["created"] else "already registered"))
    return result
