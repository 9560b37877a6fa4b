"""Every reader of the loop's configuration, and the one place to import :class:`Settings` from.

* :mod:`~daily_mlops.settings.typed`: the typed :class:`Settings` (pydantic-settings) and
  :func:`load_settings`: arguments > ``MLOPS_*`` > ``.env`` > the YAML file > defaults;
* :mod:`~daily_mlops.settings.paths`: the project root, the bundled data and DAGs, and which YAML file
  is in effect (:func:`config_file`; standard library only);
* :mod:`~daily_mlops.settings.sources`: where each value came from, redacted for display, and the
  generated reference page (``daily-mlops config``);
* :mod:`~daily_mlops.settings.parse_time`: the few settings a DAG file reads while it is parsed, without
  building :class:`Settings` (standard library and PyYAML only);
* :mod:`~daily_mlops.settings.thresholds`: the F1 floor and ``min_improvement`` values: the one check of
  each, and ``auto`` resolved from the bootstrap model's F1 (standard library only).

The names below load on first use (PEP 562 ``__getattr__``): importing this package imports neither
pydantic nor PyYAML, so a DAG file that only needs :mod:`~daily_mlops.settings.parse_time` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover  (the redundant aliases mark them as re-exports for type checkers)
    from daily_mlops.settings.paths import BUNDLED_CONFIG as BUNDLED_CONFIG
    from daily_mlops.settings.paths import BUNDLED_DAGS_FOLDER as BUNDLED_DAGS_FOLDER
    from daily_mlops.settings.paths import BUNDLED_REFERENCE_DATA as BUNDLED_REFERENCE_DATA
    from daily_mlops.settings.paths import CONFIG_VARIABLE as CONFIG_VARIABLE
    from daily_mlops.settings.paths import config_file as config_file
    from daily_mlops.settings.typed import Settings as Settings
    from daily_mlops.settings.typed import load_settings as load_settings
    from daily_mlops.settings.typed import read_config_file as read_config_file
    from daily_mlops.settings.typed import value_origins as value_origins

#: Submodule -> the public names it defines that this package re-exports.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "typed": ("Settings", "load_settings", "read_config_file", "value_origins"),
    "paths": ("BUNDLED_CONFIG", "BUNDLED_DAGS_FOLDER", "BUNDLED_REFERENCE_DATA", "CONFIG_VARIABLE", "config_file"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)


def __getattr__(name: str) -> Any:
    """Import ``name`` from the submodule that defines it, on first use (PEP 562)."""
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
