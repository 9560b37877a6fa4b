"""The few settings a DAG file reads while it is parsed, read without building :class:`~daily_mlops.settings.Settings`.

The same sources and order as ``Settings`` (``MLOPS_*`` variables over the
YAML file), in the standard library and PyYAML: importing and validating the
pydantic model costs more than the 0.1 s a DAG file may add to a parse
(``python -m benchmarks parse``). The one other file read is the small
``MLOPS_HOME/f1_floor.json`` that ``daily-mlops bootstrap`` writes
(:data:`FLOOR_FILE`, for the description of ``f1_threshold: auto``); the
database is never read at parse time.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from daily_mlops.errors import ConfigError
from daily_mlops.settings.paths import PROJECT_ROOT, config_file
from daily_mlops.settings.thresholds import parse_f1_threshold

__all__ = ["FLOOR_FILE", "PARSE_TIME_FIELDS", "DagSettings", "parse_time_home", "parse_time_settings",
           "read_floor_file"]

#: File under ``MLOPS_HOME`` holding each model family's bootstrap F1 (for the DAG param's description).
FLOOR_FILE = "f1_floor.json"

#: The settings the DAG files read while parsing, with their types (``object``: ``f1_threshold``, a float or
#: ``"auto"``, checked by :func:`~daily_mlops.settings.thresholds.parse_f1_threshold`); tasks read the rest
#: at run time.
PARSE_TIME_FIELDS: dict[str, type] = {
    "owner": str, "task_retries": int, "f1_threshold": object, "max_retrain_attempts": int,
    "require_approval": bool, "approval_timeout_hours": float, "training_queue": str,
    "f1_tolerance": float, "min_improvement": float, "model_name": str,
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class DagSettings:
    """The few settings a DAG file needs while it is parsed (:data:`PARSE_TIME_FIELDS`)."""

    owner: str
    task_retries: int
    f1_threshold: float | str
    max_retrain_attempts: int
    require_approval: bool
    approval_timeout_hours: float
    training_queue: str
    f1_tolerance: float
    min_improvement: float
    model_name: str
    #: What ``daily-mlops bootstrap`` wrote to ``MLOPS_HOME/f1_floor.json`` for ``model_name``
    #: (:func:`read_floor_file`), or ``None``: shown in the param's description.
    bootstrap_floor: dict[str, Any] | None = None


def _coerce(name: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError("not a boolean")
            return text in _TRUE
        if kind is int and isinstance(value, float) or isinstance(value, bool):
            raise ValueError("not an integer")
        return value if kind is object else kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"MLOPS_{name.upper()}: {exc} (got {value!r}); set a valid {kind.__name__}") from None


def parse_time_settings() -> DagSettings:
    """The settings the DAG files read while parsing: param defaults, retries, owner, approval timeout.

    The tasks build the full ``Settings`` at run time, which validates
    everything; here the F1 threshold gets the same check
    (:func:`~daily_mlops.settings.thresholds.parse_f1_threshold`). It falls
    back to the full ``Settings`` when a ``.env`` file is in the working
    directory or the YAML file lacks one of the fields. No file is checked: a
    missing ``MLOPS_REFERENCE_DATA`` fails the task that needs it, at run
    time, not the DAG file. ``bootstrap_floor`` is :func:`read_floor_file` of
    the home in effect.

    Raises
    ------
    ConfigError
        When a value is invalid (names the ``MLOPS_*`` variable).
    """
    path = config_file()
    data: dict[str, Any] = {}
    if path is not None and not Path(".env").is_file():
        import yaml

        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    values = {}
    for name, kind in PARSE_TIME_FIELDS.items():
        raw = os.environ.get(f"MLOPS_{name.upper()}")
        value = raw if raw is not None else data.get(name) if isinstance(data, dict) else None
        if value is None:  # no YAML, a .env file, or a field the YAML leaves out: the full model decides
            from daily_mlops.settings.typed import load_settings

            full = load_settings()
            return DagSettings(**{field: getattr(full, field) for field in PARSE_TIME_FIELDS},
                               bootstrap_floor=read_floor_file(full.home, full.model_name))
        values[name] = _coerce(name, value, kind)
    values["f1_threshold"] = parse_f1_threshold(values["f1_threshold"], "MLOPS_F1_THRESHOLD")
    home = parse_time_home(os.environ.get("MLOPS_HOME"), data.get("home") if isinstance(data, dict) else None)
    return DagSettings(**values, bootstrap_floor=read_floor_file(home, values["model_name"]))


def parse_time_home(env_home: str | None, yaml_home: Any) -> Path:
    """``MLOPS_HOME`` as :class:`~daily_mlops.settings.Settings` resolves it, from the variable or the YAML value.

    The variable wins; a relative YAML value is relative to the project root; neither: the working directory.
    """
    if env_home:
        return Path(env_home).expanduser().resolve()
    if isinstance(yaml_home, str) and yaml_home:
        path = Path(yaml_home).expanduser()
        return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()
    return Path(".").resolve()


def read_floor_file(home: Path, model_name: str) -> dict[str, Any] | None:
    """``model_name``'s entry of ``home/f1_floor.json``, or ``None`` (no file, no entry, unreadable file).

    Cheap (one small JSON file) and never fails: it only feeds a param's description at parse time.
    """
    try:
        data = json.loads((Path(home) / FLOOR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = data.get(model_name) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("bootstrap_f1"), (int, float)):
        return None
    return entry
