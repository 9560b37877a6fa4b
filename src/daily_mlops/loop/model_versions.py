"""``daily-mlops models list|show|export|import``: registry views and the model file (YAML).

A *model file* (``models export``) describes one model version without its
weights: the architecture, the hyperparameters, the input/output signature, the
preprocessing schema, the metrics and the lineage, written with
``yaml.safe_dump``. ``models import`` reads one back (``yaml.safe_load``) and
turns its architecture and hyperparameters into settings overrides for a new
``bootstrap`` under a model name: the same recipe, trained again on reference
data (the file holds no weights, so nothing in it is executed or unpickled).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError, MLOpsError

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.storage import Database
    from daily_mlops.storage.registry import ModelRegistry

__all__ = [
    "FILE_FORMAT", "ARCHITECTURE_SETTINGS", "bootstrap_overrides", "deployed_at", "export_model", "list_versions",
    "read_model_file", "require_new_family", "version_date", "version_rows", "write_model_file",
]

#: ``format`` of a model file; ``format_version`` 1.
FILE_FORMAT = "daily-mlops-model"
#: Architecture keys that are Settings fields (the others, cardinalities and n_numeric, come from the data).
ARCHITECTURE_SETTINGS = ("d_model", "nhead", "num_layers", "dim_feedforward", "dropout")
_INTEGERS = ("d_model", "nhead", "num_layers", "dim_feedforward", "batch_size", "pretrain_epochs",
             "tab_pretrain_epochs", "finetune_epochs", "retrain_epochs", "seed")


def _when(value: Any) -> str:
    """A datetime as ``YYYY-MM-DD HH:MM`` (UTC as stored), ``-`` for none."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "-" if value is None else str(value)


def deployed_at(doc: dict[str, Any]) -> dt.datetime | None:
    """When the version was last moved to ``deployed`` (its ``status_history``), or ``None``."""
    times = [e["at"] for e in doc.get("status_history", []) if e.get("status") == "deployed" and e.get("at")]
    return max(times) if times else None


def version_date(doc: dict[str, Any]) -> str:
    """The date a version belongs to: its logical date, or ``bootstrap 2026-11-29 20:10`` (created_at) for bootstrap.

    Bootstrap trains on a batch of the placeholder logical date 1970-01-01; when it ran is what a reader wants.
    """
    from daily_mlops.storage.registry import BOOTSTRAP_RUN_KEY

    if doc.get("run_key") == BOOTSTRAP_RUN_KEY:
        return f"bootstrap {_when(doc.get('created_at'))}"
    return str(doc.get("logical_date") or "-")


def list_versions(registry: ModelRegistry, model_name: str | None = None) -> list[dict[str, Any]]:
    """One row per version of every model family (or of ``model_name``), family by family, oldest first.

    Returns
    -------
    list of dict
        ``model_name``, ``model_version``, ``status``, ``lineage_kind`` (``None`` on old documents),
        ``real_f1`` and ``real_roc_auc`` (the real holdout, ``None`` when not recorded), ``f1`` and
        ``roc_auc`` (the synthetic test split, or ``None``), ``date`` (:func:`version_date`), ``created`` and
        ``deployed`` (``YYYY-MM-DD HH:MM`` UTC or ``-``).
    """
    from daily_mlops.reporting.evidence import version_metrics

    rows = []
    for name in [model_name] if model_name else registry.model_names():
        for doc in registry.list(name):
            real, test = version_metrics(doc, "reference"), version_metrics(doc, "test")
            rows.append({"model_name": name, "model_version": int(doc["model_version"]), "status": doc["status"],
                         "lineage_kind": doc.get("lineage_kind"), "real_f1": real.get("f1"),
                         "real_roc_auc": real.get("roc_auc"), "f1": test.get("f1"), "roc_auc": test.get("roc_auc"),
                         "date": version_date(doc), "created": _when(doc.get("created_at")),
                         "deployed": _when(deployed_at(doc))})
    return rows


def version_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, value)`` rows describing one version for ``models show`` (plain text).

    The real-holdout metrics come first, then the validation rows' (those that
    chose the version) and the synthetic test split's; then the calibration
    (Brier and ECE before and after, on the test split) and a challenger's
    comparisons with their intervals (:mod:`daily_mlops.reporting.evidence`).
    A field the document lacks shows ``-``.
    """
    from daily_mlops.reporting.evidence import (
        calibration_text,
        champion_text,
        floor_text,
        number,
        real_guard_text,
        version_metrics,
    )

    arch, hyper = doc.get("architecture", {}), doc.get("hyperparameters", {})
    real, validation, test = (version_metrics(doc, split) for split in ("reference", "validation", "test"))
    comparisons = doc.get("comparisons") or {}

    def pair(metrics: dict[str, Any], first: str = "f1", second: str = "roc_auc") -> str:
        return f"{number(metrics.get(first))} / {number(metrics.get(second))}"

    rows = [
        ("model", f"{doc['model_name']} version {doc['model_version']}"),
        ("status", doc["status"]),
        ("date", version_date(doc)),
        ("created", _when(doc.get("created_at"))),
        ("deployed", _when(deployed_at(doc))),
        ("lineage kind", doc.get("lineage_kind") or "-"),
        ("parent / lineage", f"{doc.get('parent_version', '-')} / {doc.get('lineage') or '-'}"),
        ("F1 / ROC-AUC (real holdout)", pair(real)),
        ("F1 / ROC-AUC (validation)", pair(validation)),
        ("F1 / ROC-AUC (test)", pair(test)),
        ("precision / recall (test)", pair(test, "precision", "recall")),
        ("Brier / ECE (test)", pair(test, "brier", "ece")),
        ("calibration", calibration_text(doc.get("calibration"))),
        ("decision threshold", f"{doc['decision_threshold']:.4f}" if "decision_threshold" in doc else "-"),
    ]
    if comparisons:
        judged = f" ({comparisons['logical_date']})" if comparisons.get("logical_date") else ""
        rows += [(f"F1 floor{judged}", floor_text(comparisons.get("floor"))),
                 (f"vs champion{judged}", champion_text(comparisons.get("champion"))),
                 (f"real holdout guard{judged}", real_guard_text(comparisons.get("real")))]
    rows += [
        ("architecture", " ".join(f"{k}={arch[k]}" for k in ARCHITECTURE_SETTINGS if k in arch) or "-"),
        ("parameters", str(doc.get("n_parameters") or "-")),
        ("hyperparameters", " ".join(f"{k}={v}" for k, v in hyper.items()) or "-"),
        ("trained on", ", ".join(doc.get("trained_on", [])) or "-"),
        ("weights sha256", doc.get("sha256", {}).get("weights", "-")),
    ]
    for entry in doc.get("status_history", []):
        rows.append(("history", f"{_when(entry.get('at'))} {entry.get('status')}: {entry.get('reason') or ''}"))
    return rows


def _plain(value: Any) -> Any:
    """``value`` with datetimes as ISO strings and tuples as lists (what ``yaml.safe_dump`` writes plainly)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def export_model(registry: ModelRegistry, model_name: str, selector: str | int, *, metric: str = "f1",
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The model file of one version (see the module docstring), as a dict of plain values.

    Raises
    ------
    NotFoundError
        When the version (or its preprocessor) is not in the registry.
    MLOpsError
        When ``selector`` is not a number, ``latest`` or ``best``, or the version has no architecture
        (not a classifier).
    """
    from daily_mlops.storage.registry import preprocessor_name, synthesizer_name

    doc = registry.resolve(model_name, selector, metric=metric)
    if "architecture" not in doc:
        raise MLOpsError(f"{model_name} version {doc['model_version']} records no architecture; "
                         "only a model family's versions can be exported (see `daily-mlops models list`)")
    pre = registry.get(preprocessor_name(model_name), doc["preprocessor_version"])
    synth_version = doc.get("synthesizer_version")
    return _plain({
        "format": FILE_FORMAT, "format_version": 1,
        "model_name": model_name, "model_version": int(doc["model_version"]), "status": doc["status"],
        "exported_at": now or dt.datetime.now(dt.UTC),
        "architecture": doc["architecture"], "hyperparameters": doc.get("hyperparameters", {}),
        "decision_threshold": doc.get("decision_threshold"), "n_parameters": doc.get("n_parameters"),
        "signature": doc.get("signature", {}), "preprocessing_schema": pre.get("schema", {}),
        "metrics": doc.get("metrics", {}),
        "lineage": {
            "run_key": doc.get("run_key"), "parent_version": doc.get("parent_version"),
            "ancestors": doc.get("lineage", []), "logical_date": doc.get("logical_date"),
            "created_at": doc.get("created_at"), "trained_on": doc.get("trained_on", []),
            "evaluated_on": doc.get("evaluated_on", []),
            "preprocessor": {"name": pre["model_name"], "version": pre["model_version"],
                             "sha256": pre.get("sha256", {}).get("preprocessor")},
            "synthesizer": {"name": synthesizer_name(model_name), "version": synth_version} if synth_version else None,
        },
        "sha256": doc.get("sha256", {}),
    })


def write_model_file(document: dict[str, Any], out: Path) -> Path:
    """Write ``document`` (from :func:`export_model`) as YAML (``yaml.safe_dump``) atomically; return the path.

    Raises
    ------
    ConfigError
        When ``out`` is a directory.
    """
    import yaml

    from daily_mlops.loop.report import _write_atomically

    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)
    return _write_atomically(out, text, option="--out", example="model.yaml")


def _require(data: Any, key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    *parents, last = key.split(".")
    for part in parents:
        data = data[part]
    if last not in data:
        raise ConfigError(f"the model file {path} has no key {key!r}; write it with `daily-mlops models export`")
    value = data[last]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"the model file {path}: key {key!r} must be {names}, not {value!r}")
    return value


def read_model_file(path: Path) -> dict[str, Any]:
    """Read and check a model file (``yaml.safe_load``); return its mapping.

    Checked: ``format`` is ``daily-mlops-model`` with ``format_version`` 1;
    ``architecture`` holds integer ``d_model``, ``nhead``, ``num_layers``,
    ``dim_feedforward`` and a number ``dropout``; ``hyperparameters`` is a
    mapping whose known keys (:data:`daily_mlops.loop._common.HYPERPARAMETER_FIELDS`)
    have numbers; ``preprocessing_schema.target``, when present, names ``column`` and ``positive_label``.

    Raises
    ------
    ConfigError
        When the file cannot be read, is not YAML, or a key is missing or of the wrong type;
        the message names the file and the key.
    """
    import yaml

    from daily_mlops.loop._common import HYPERPARAMETER_FIELDS

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the model file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the model file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the model file {path} must be a mapping (written by `daily-mlops models export`)")
    if data.get("format") != FILE_FORMAT or data.get("format_version") != 1:
        raise ConfigError(f"the model file {path}: key 'format' must be {FILE_FORMAT!r} with 'format_version' 1 "
                          f"(got {data.get('format')!r}, {data.get('format_version')!r}); "
                          "write it with `daily-mlops models export`")
    _require(data, "model_name", str, path)
    _require(data, "architecture", dict, path)
    for key in ARCHITECTURE_SETTINGS:
        _require(data, f"architecture.{key}", int if key in _INTEGERS else (int, float), path)
    hyper = _require(data, "hyperparameters", dict, path)
    for key in HYPERPARAMETER_FIELDS:
        if key in hyper:
            kind = str if key == "architecture" else int if key in _INTEGERS else (int, float)  # ft | tab
            _require(data, f"hyperparameters.{key}", kind, path)
    if data.get("preprocessing_schema") is not None:
        _require(data, "preprocessing_schema", dict, path)
        if "target" in data["preprocessing_schema"]:
            _require(data, "preprocessing_schema.target", dict, path)
            _require(data, "preprocessing_schema.target.column", str, path)
            _require(data, "preprocessing_schema.target.positive_label", str, path)
    return data


def bootstrap_overrides(document: dict[str, Any]) -> dict[str, Any]:
    """The Settings values a bootstrap needs to rebuild the file's model: architecture, training, target.

    The architecture (``d_model``, ``nhead``, ``num_layers``, ``dim_feedforward``,
    ``dropout``) wins over the same keys in ``hyperparameters``; the other
    known hyperparameters (batch size, learning rate, epochs, NT-Xent
    temperature, mask probability, seed) follow; ``target_column`` and
    ``positive_label`` come from the preprocessing schema's target. Other keys are ignored.
    """
    from daily_mlops.loop._common import HYPERPARAMETER_FIELDS

    hyper = document.get("hyperparameters", {})
    overrides: dict[str, Any] = {k: hyper[k] for k in HYPERPARAMETER_FIELDS if k in hyper}
    overrides.update({k: document["architecture"][k] for k in ARCHITECTURE_SETTINGS})
    target = (document.get("preprocessing_schema") or {}).get("target")
    if target:
        overrides.update(target_column=target["column"], positive_label=target["positive_label"])
    return overrides


def require_new_family(db: Database, model_name: str, *, where: str) -> None:
    """Refuse an import into a family that is already bootstrapped (its bootstrap would be a no-op).

    Raises
    ------
    MLOpsError
        Naming the family, the database and the fix (``--model-name``).
    """
    from daily_mlops.storage.registry import BOOTSTRAP_RUN_KEY, ModelRegistry

    existing = ModelRegistry(db).find_run(model_name, BOOTSTRAP_RUN_KEY)
    if existing is not None:
        raise MLOpsError(f"model {model_name!r} is already bootstrapped in {where} (version "
                         f"{existing['model_version']}); import under another name with --model-name NAME")
