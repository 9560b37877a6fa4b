"""The F1 floor in effect: ``f1_threshold`` resolved, ``auto`` from the bootstrap model's held-out F1.

``auto`` (the default) means the bootstrap model's F1 on held-out rows (the
floor sample bootstrap draws for it, 20,000 rows by default) minus ``MLOPS_F1_TOLERANCE``
(:func:`daily_mlops.settings.thresholds.resolve_f1_threshold`).
``daily-mlops bootstrap`` stores that F1 in the registry (field
``f1_threshold_auto`` of the bootstrap version) and, for the DAG files'
param description, in the small file ``MLOPS_HOME/f1_floor.json``: DAG files
never read the database while they are parsed (they read the file with
:func:`daily_mlops.settings.parse_time.read_floor_file`). The tasks resolve ``auto``
from the registry at run time (:func:`resolve_floor`).

Only the standard library at import time; :func:`resolve_floor` imports the
storage layer when called.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.settings.parse_time import FLOOR_FILE

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database

__all__ = ["bootstrap_f1", "floor_record", "resolve_floor", "write_floor_file"]



def floor_record(bootstrap_f1: float, f1_tolerance: float, *, split: str = "test") -> dict[str, Any]:
    """The ``f1_threshold_auto`` record bootstrap stores on the version it registers.

    Parameters
    ----------
    bootstrap_f1 : float
        F1 (positive class, in [0, 1]) of the bootstrap model on held-out rows: bootstrap's floor sample
        (:func:`daily_mlops.loop.bootstrap.floor_rows` synthetic rows never trained or calibrated on).
    f1_tolerance : float
        ``MLOPS_F1_TOLERANCE`` at bootstrap.
    split : str
        What ``bootstrap_f1`` was measured on, recorded as ``split``.

    Returns
    -------
    dict
        ``bootstrap_f1``, ``f1_tolerance``, ``f1_threshold`` (their difference, at least 0) and ``split``. The
        tasks recompute ``f1_threshold`` with the tolerance in effect when they run.
    """
    from daily_mlops.settings.thresholds import auto_f1_threshold

    return {"bootstrap_f1": float(bootstrap_f1), "f1_tolerance": float(f1_tolerance),
            "f1_threshold": auto_f1_threshold(bootstrap_f1, f1_tolerance), "split": split}


def bootstrap_f1(db: Database, model_name: str) -> float | None:
    """The held-out F1 of ``model_name``'s bootstrap version from the registry, or ``None`` when not bootstrapped.

    Reads ``f1_threshold_auto.bootstrap_f1``; a version bootstrapped before that field existed gives its
    ``metrics.test.f1`` (the same number).
    """
    from daily_mlops.storage.registry import BOOTSTRAP_RUN_KEY, ModelRegistry

    doc = ModelRegistry(db).find_run(model_name, BOOTSTRAP_RUN_KEY)
    if doc is None:
        return None
    stored = (doc.get("f1_threshold_auto") or {}).get("bootstrap_f1")
    if stored is None:
        stored = ((doc.get("metrics") or {}).get("test") or {}).get("f1")
    return None if stored is None else float(stored)


def resolve_floor(settings: Settings, db: Database, value: Any, source: str) -> dict[str, Any]:
    """The F1 floor of a run: ``value`` (a param or the setting) resolved; see
    :func:`daily_mlops.settings.thresholds.resolve_f1_threshold` for the returned dict.

    Raises
    ------
    ConfigError
        For an invalid value (names ``source``), or ``auto`` before ``daily-mlops bootstrap``.
    """
    from daily_mlops.settings.thresholds import AUTO, parse_f1_threshold, resolve_f1_threshold

    parsed = parse_f1_threshold(value, source)
    f1 = bootstrap_f1(db, settings.model_name) if parsed == AUTO else None
    return resolve_f1_threshold(parsed, source, bootstrap_f1=f1, f1_tolerance=settings.f1_tolerance,
                                model_name=settings.model_name)


def write_floor_file(home: Path, model_name: str, model_version: int, record: dict[str, Any]) -> Path:
    """Write ``record`` (:func:`floor_record`) of a family's bootstrap version into ``home/f1_floor.json``.

    Returns the path.
    Other families' entries are kept. Written to a temporary file and renamed, so a reader never sees half a file.
    """
    path = Path(home) / FLOOR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[model_name] = {**record, "model_name": model_name, "model_version": int(model_version),
                        "written_at": dt.datetime.now(dt.UTC).isoformat()}
    tmp = path.with_name(f".{FLOOR_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path
