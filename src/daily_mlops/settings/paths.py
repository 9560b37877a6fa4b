"""Where the project's files are: the root of a source checkout, the bundled data and DAGs, and the YAML
file of settings in effect (``MLOPS_CONFIG``, else the bundled ``config/daily-mlops.yaml``).

Standard library only, so the DAG files can find the YAML file at parse time
without building :class:`~daily_mlops.settings.Settings`.
"""

from __future__ import annotations

import os
from pathlib import Path

from daily_mlops.errors import ConfigError

__all__ = ["BUNDLED_CONFIG", "BUNDLED_DAGS_FOLDER", "BUNDLED_REFERENCE_DATA", "CONFIG_VARIABLE", "PROJECT_ROOT",
           "config_file"]

#: The directory holding ``config/``, ``dags/`` and ``src/`` (a source checkout's root).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: The settings file of a source checkout, every setting with its default (``config/daily-mlops.yaml``).
BUNDLED_CONFIG = PROJECT_ROOT / "config" / "daily-mlops.yaml"
#: The bundled Statlog (German Credit Data) copy; see data/reference/README.md.
BUNDLED_REFERENCE_DATA = PROJECT_ROOT / "data" / "reference" / "german_credit.csv"
#: The project's DAG files (used by ``daily-mlops run`` and ``daily-mlops airflow``).
BUNDLED_DAGS_FOLDER = PROJECT_ROOT / "dags"
#: The variable that points at another settings file.
CONFIG_VARIABLE = "MLOPS_CONFIG"


def config_file() -> Path | None:
    """The YAML file of settings in effect: ``MLOPS_CONFIG``, else the bundled one (``None`` when absent).

    ``MLOPS_CONFIG`` is read from the process environment (not from ``.env``
    or the YAML file itself); unset or empty means the bundled
    ``config/daily-mlops.yaml``. An installed package (no source checkout)
    has no bundled file: the defaults apply, which is what that file says.

    Raises
    ------
    ConfigError
        When ``MLOPS_CONFIG`` names a path that does not exist or is a
        directory; names the variable and the fix.
    """
    named = os.environ.get(CONFIG_VARIABLE, "").strip()
    if not named:
        return BUNDLED_CONFIG if BUNDLED_CONFIG.is_file() else None
    path = Path(named).expanduser()
    if path.is_dir():
        raise ConfigError(f"{CONFIG_VARIABLE}={named} is a directory; point it at a YAML file "
                          f"(a copy of {BUNDLED_CONFIG.relative_to(PROJECT_ROOT)})")
    if not path.is_file():
        raise ConfigError(f"{CONFIG_VARIABLE}={named} does not exist; point it at a YAML file "
                          f"(e.g. a copy of {BUNDLED_CONFIG.relative_to(PROJECT_ROOT)}) or unset it "
                          "to use the bundled defaults")
    return path.resolve()
