"""Infra validation before deployment: the ``validate_infra`` task of ``model_deployment_pipeline``.

After TFX's InfraValidator (tensorflow.org/tfx/guide/infra_validator), which
loads a candidate in a sandboxed server and queries it before it is pushed.
Here the approved version is loaded the way ``daily-mlops serve`` will load it:

1. the bytes :func:`daily_mlops.loop.deployment.deploy_version` would write
   (:func:`daily_mlops.loop.deployment.deployment_payload`) are written to a
   temporary staging deployment directory
   (:func:`daily_mlops.storage.deployment_dir.write_deployment`);
2. a fresh process of the same interpreter (``python -m
   daily_mlops.loop.infra_validation``, :func:`probe`) loads it with
   :func:`daily_mlops.loop.deployment.load_deployed` (serve's loader:
   ``read_deployment`` then :func:`daily_mlops.ml.bundle.assemble`);
3. it scores the canary, the family's real holdout (the synthesizer's ``holdout``
   artifact, raw rows) through ``ModelBundle.predict_proba(frame)``, which runs
   the schema check (:func:`daily_mlops.ml.schema.validate_batch`) as ``/predict`` does;
4. it times :data:`LATENCY_CALLS` single-row ``predict_proba`` calls after one warm-up call.

The verdict (:func:`infra_verdict`, pure) refuses the version when loading
fails, the canary rows do not match the preprocessor schema, the canary's
scores differ from the ones recorded at evaluation, or the p95 latency exceeds
``MLOPS_MAX_PREDICT_P95_MS``. Scores are compared as the ROC-AUC *and* the F1
at the version's decision threshold against ``metrics.reference`` (same rows,
same model, so equal within :data:`SCORE_TOLERANCE`): per-row probabilities are
not recorded at evaluation, ROC-AUC alone is blind to the calibrator (a
monotone map), and F1 checks the calibrator and the threshold that travel in
``current_model.json``. A version registered before ``metrics.reference`` was
recorded for every version is loaded, schema-checked and timed, its scores not compared.

Every check is recorded on the version (``model_metadata.infra_validation``,
:meth:`daily_mlops.storage.registry.ModelRegistry.record_infra_validation`); a
refusal also writes a ``deployment_events`` document with status
``refused_by_infra_validation`` and deploys nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.dates import LogicalDate, logical_day
from daily_mlops.loop._common import log, with_database

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = ["CHECKS", "LATENCY_CALLS", "PROBE_TIMEOUT_SECONDS", "SCORE_TOLERANCE", "infra_verdict", "probe",
           "run_probe", "validate_infra"]

#: Single-row ``predict_proba`` calls timed for the p95 latency (after one warm-up call).
LATENCY_CALLS = 50
#: Largest difference between the canary's ROC-AUC (and F1) and the recorded ones: same rows, same model.
SCORE_TOLERANCE = 1e-6
#: Seconds the fresh process may take to load, score and time the version before it counts as a load failure.
PROBE_TIMEOUT_SECONDS = 600
#: The checks, in the order they run, and what fixes a refusal by each.
CHECKS = {
    "canary": "the family's synthesizer keeps no real holdout to score; run `daily-mlops bootstrap` on a fresh "
              "database so bootstrap stores one",
    "load": "the files do not load as `daily-mlops serve` loads them (fresh process, same interpreter); check this "
            "worker's torch and skops against the ones that trained the version, or retrain it",
    "schema": "the version's preprocessor schema does not match the family's real reference rows; retrain it with "
              "the family's preprocessor (`daily-mlops bootstrap` fits it on the reference data)",
    "scores": "the deployed files score the real holdout differently from evaluation; rerun "
              "model_evaluation_pipeline for the date and check the version's preprocessor_version",
    "latency": "raise MLOPS_MAX_PREDICT_P95_MS, run the worker on a less loaded machine, or train a smaller model "
               "(MLOPS_NUM_LAYERS, MLOPS_D_MODEL)",
}


def infra_verdict(probed: dict[str, Any], recorded: dict[str, Any] | None, *,
                  max_p95_ms: float) -> tuple[str | None, str | None]:
    """Which check refuses the version and why, or ``(None, None)`` when it passes. Pure.

    Parameters
    ----------
    probed : dict
        :func:`probe`'s answer: ``ok`` and, when false, ``check`` and ``error``; when true ``roc_auc``,
        ``f1`` (canary, at the version's decision threshold) and ``p95_ms`` (milliseconds).
    recorded : dict or None
        The version's ``metrics.reference`` (``roc_auc``, ``f1``); ``None``: not recorded, not compared.
    max_p95_ms : float
        ``MLOPS_MAX_PREDICT_P95_MS``, milliseconds.

    Returns
    -------
    (str or None, str or None)
        The failed check (a key of :data:`CHECKS`) and what was found.
    """
    if not probed.get("ok"):
        return probed.get("check") or "load", str(probed.get("error"))
    if recorded:
        for metric in ("roc_auc", "f1"):
            want, got = recorded.get(metric), probed.get(metric)
            if want is None and got is None:
                continue
            if want is None or got is None or abs(float(got) - float(want)) > SCORE_TOLERANCE:
                return "scores", (f"canary {metric} {_num(got)} on {probed.get('n_rows')} real holdout rows, "
                                  f"recorded at evaluation {_num(want)} (tolerance {SCORE_TOLERANCE:g})")
    if float(probed["p95_ms"]) > max_p95_ms:
        return "latency", (f"p95 single-row latency {probed['p95_ms']:.1f} ms over {LATENCY_CALLS} calls exceeds "
                           f"MLOPS_MAX_PREDICT_P95_MS={max_p95_ms:g}")
    return None, None


def _num(value: Any) -> str:
    return "none" if value is None else f"{float(value):.6f}"


# --------------------------------------------------------------------------- the fresh process
def probe(directory: Path, canary: Path, columns: Path, *, calls: int = LATENCY_CALLS) -> dict[str, Any]:
    """Load the deployment in ``directory`` as serve does, score the canary rows, time single-row calls.

    Runs in the fresh process (``python -m daily_mlops.loop.infra_validation``). Every failure is
    reported in the answer, not raised: the parent turns it into a refusal.

    Parameters
    ----------
    directory : Path
        A deployment directory (``current -> versions/<n>``) written by ``write_deployment``.
    canary : Path
        Canonical CSV of raw rows, target included (:func:`daily_mlops.ml.serialization.frame_to_csv`).
    columns : Path
        JSON ``[{"name", "dtype"}, ...]`` of the CSV (the synthesizer's ``reference_columns``).
    calls : int
        Single-row calls timed (rows taken in order, cycling).

    Returns
    -------
    dict
        ``ok``; on failure ``check`` (``load``, ``schema`` or ``scores``) and ``error``; on success
        ``roc_auc``, ``f1``, ``n_rows``, ``decision_threshold``, ``p95_ms`` and ``median_ms``
        (milliseconds, ``np.percentile`` linear), ``load_seconds``, ``torch`` (its version).
    """
    import numpy as np

    from daily_mlops.errors import SchemaError

    start = time.perf_counter()
    try:
        import torch

        from daily_mlops.loop.deployment import load_deployed
        from daily_mlops.ml.serialization import frame_from_csv

        bundle = load_deployed(directory)
        frame = frame_from_csv(canary.read_bytes(), json.loads(columns.read_text(encoding="utf-8")),
                               what="the canary rows (the real holdout)")
    except Exception as exc:  # noqa: BLE001 -- reported: whatever stops serve from loading refuses the version
        return {"ok": False, "check": "load", "error": f"{type(exc).__name__}: {exc}"}
    load_seconds = time.perf_counter() - start
    try:
        from daily_mlops.ml.metrics import classification_metrics
        from daily_mlops.ml.schema import schema_parts, validate_batch

        prob = bundle.predict_proba(frame)  # (n_rows,): validate_batch, transform, network, calibrator
        _, target = schema_parts(bundle.preprocessor.schema)
        labels = validate_batch(frame, bundle.preprocessor.schema)[target["column"]]
        y = (labels == target["positive_label"]).to_numpy(dtype=np.int64)  # (n_rows,), as the preprocessor encodes it
        metrics = classification_metrics(y, prob, decision_threshold=bundle.decision_threshold)
        bundle.predict_proba(frame.iloc[[0]])  # warm-up, not timed
        seconds = []
        for i in range(calls):
            row = frame.iloc[[i % len(frame)]]  # (1, n_columns)
            t0 = time.perf_counter()
            bundle.predict_proba(row)
            seconds.append(time.perf_counter() - t0)
    except SchemaError as exc:
        return {"ok": False, "check": "schema", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 -- reported: a version that cannot score the canary is refused
        return {"ok": False, "check": "scores", "error": f"{type(exc).__name__}: {exc}"}
    ms = np.asarray(seconds) * 1000.0
    return {"ok": True, "roc_auc": metrics["roc_auc"], "f1": metrics["f1"], "n_rows": int(len(frame)),
            "decision_threshold": float(bundle.decision_threshold),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "median_ms": round(float(np.median(ms)), 3),
            "load_seconds": round(load_seconds, 3), "torch": torch.__version__}


def run_probe(
    directory: Path, canary: Path, columns: Path, *, timeout: float = PROBE_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Run :func:`probe` in a fresh process of this interpreter (``sys.executable``); return its answer.

    A process that crashes, prints no answer or outlives ``timeout`` seconds is a ``load`` failure
    (the end of its stderr is the ``error``).
    """
    cmd = [sys.executable, "-m", "daily_mlops.loop.infra_validation", str(directory), str(canary), str(columns)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "check": "load", "error": f"the fresh process did not finish within {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
    return {"ok": False, "check": "load", "error": f"the fresh process exited with status {done.returncode}: {tail}"}


# --------------------------------------------------------------------------- the task
def _holdout(registry: ModelRegistry, doc: dict[str, Any]) -> tuple[bytes, list[dict[str, str]]] | None:
    """The raw real holdout (canonical CSV, sha256 checked) and its columns, of the version's synthesizer."""
    from daily_mlops.errors import NotFoundError
    from daily_mlops.storage.registry import synthesizer_name

    name = synthesizer_name(doc["model_name"])
    version = doc.get("synthesizer_version")
    try:
        synth_doc = (registry.get(name, version) if version is not None
                     else registry.latest(name, statuses=("approved",)))
    except NotFoundError:
        return None
    if "holdout" not in synth_doc.get("artifacts", {}):
        return None
    return registry.load_artifact(synth_doc, "holdout"), synth_doc["reference_columns"]


@with_database
def validate_infra(settings: Settings, *, logical_date: LogicalDate, model_version: int,
                   db: Database) -> dict[str, Any]:
    """Load ``model_version`` as ``serve`` will, in a fresh process; record the result; refuse or pass it.

    See the module docstring for the checks. Nothing is deployed either way.

    Returns
    -------
    dict
        ``model_version``, ``status`` (``passed`` or ``refused``), ``check`` (the failed one, or ``None``),
        ``reason`` (a refusal's message: the version, the check, the fix), ``p95_ms``, ``artifact_bytes``
        (``current_model.pth`` + ``current_model.json``), ``roc_auc`` and ``f1`` (canary). The caller
        (the DAG task) fails on ``refused``.

    Raises
    ------
    IntegrityError
        When an artifact is missing or its sha256 differs (as ``deploy_model`` would).
    """
    from daily_mlops.loop.deployment import deployment_payload, live_version, stays_deployed
    from daily_mlops.storage import deployment_dir as ddir
    from daily_mlops.storage.events import record_refused_deployment, utcnow
    from daily_mlops.storage.registry import ModelRegistry

    day = logical_day(logical_date)
    registry = ModelRegistry(db)
    doc = registry.get(settings.model_name, model_version)
    weights, config = deployment_payload(registry, doc)
    recorded = (doc.get("metrics") or {}).get("reference") or None
    holdout = _holdout(registry, doc)
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-infra-") as tmp:
        staging = Path(tmp) / "deployment"
        with ddir.deployment_lock(staging, file_mode=settings.deployment_file_permissions):
            ddir.write_deployment(staging, weights=weights, config=config, model_version=int(model_version),
                                  logical_date=day.isoformat(), file_mode=settings.deployment_file_permissions)
        sizes = {"weights": (staging / ddir.WEIGHTS_FILE).stat().st_size,
                 "config": (staging / ddir.CONFIG_FILE).stat().st_size}
        if holdout is None:
            probed = {"ok": False, "check": "canary", "error": "no real holdout rows to score"}
        else:
            canary, columns = Path(tmp) / "canary.csv", Path(tmp) / "canary_columns.json"
            canary.write_bytes(holdout[0])
            columns.write_text(json.dumps(holdout[1]), encoding="utf-8")
            probed = run_probe(staging, canary, columns)
    check, found = infra_verdict(probed, recorded, max_p95_ms=settings.max_predict_p95_ms)
    name = settings.model_name
    result: dict[str, Any] = {
        "status": "refused" if check else "passed", "check": check, "logical_date": day.isoformat(),
        "p95_ms": probed.get("p95_ms"), "median_ms": probed.get("median_ms"), "latency_calls": LATENCY_CALLS,
        "max_p95_ms": settings.max_predict_p95_ms, "artifact_bytes": sum(sizes.values()), "artifact_sizes": sizes,
        "canary": {"rows": probed.get("n_rows"), "roc_auc": probed.get("roc_auc"), "f1": probed.get("f1"),
                   "recorded_roc_auc": (recorded or {}).get("roc_auc"), "recorded_f1": (recorded or {}).get("f1"),
                   "compared": bool(recorded)},
        "load_seconds": probed.get("load_seconds"), "torch": probed.get("torch"), "checked_at": utcnow(),
    }
    if check:
        result["reason"] = (f"infra validation refused {name} v{model_version} for {day}: the {check} check failed "
                            f"({found}); fix: {CHECKS[check]}. Nothing deployed; "
                            f"{stays_deployed(live_version(db, name))}")
        log.error("%s", result["reason"])
        registry.record_infra_validation(name, model_version, result)
        record_refused_deployment(db, logical_date=day, model_name=name, model_version=model_version, check=check,
                                  reason=result["reason"])
    else:
        if not recorded:
            log.warning("%s v%s records no metrics.reference: its canary scores were not compared", name,
                        model_version)
        log.info("infra validation passed for %s v%s: loads as serve does, canary ROC-AUC %s F1 %s on %s rows, "
                 "p95 single-row latency %.1f ms (limit %g), %d bytes", name, model_version,
                 _num(probed.get("roc_auc")), _num(probed.get("f1")), probed.get("n_rows"), probed["p95_ms"],
                 settings.max_predict_p95_ms, result["artifact_bytes"])
        registry.record_infra_validation(name, model_version, result)
    return {"model_version": int(model_version), "status": result["status"], "check": check,
            "reason": result.get("reason"), "p95_ms": result["p95_ms"], "artifact_bytes": result["artifact_bytes"],
            "roc_auc": probed.get("roc_auc"), "f1": probed.get("f1")}


def main(argv: list[str] | None = None) -> int:
    """``python -m daily_mlops.loop.infra_validation DIRECTORY CANARY_CSV COLUMNS_JSON``: print :func:`probe`'s JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(main.__doc__, file=sys.stderr)
        return 2
    print(json.dumps(probe(Path(args[0]), Path(args[1]), Path(args[2]))))
    return 0


if __name__ == "__main__":  # pragma: no cover -- the fresh process of run_probe
    sys.exit(main())
