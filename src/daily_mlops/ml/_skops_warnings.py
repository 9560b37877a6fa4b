"""Silence the deprecation warnings skops' loader provokes, around our skops calls only.

``skops.io`` resolves some objects' modules by looking the name up in every
module already imported (``skops.io._utils.whichmodule``), first of all while
``skops.io`` is being imported. Inside an Airflow task the loaded modules
include Airflow's deprecated import shims, and each lookup there emits one
``DeprecatedImportWarning`` (a ``FutureWarning`` subclass): about 1,160 log
lines per task that loads a preprocessor. skops itself only silences
``DeprecationWarning``. So the import of ``skops.io`` and each skops call go
inside :func:`skops_deprecations_silenced`.

The filter is scoped with :func:`warnings.catch_warnings` and matches only
warnings attributed to a ``skops`` module, so nothing else is hidden and
Python's global warning filters are unchanged afterwards.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["skops_deprecations_silenced"]

#: Module names the filter applies to (``re.match`` against the warning's module, e.g. ``skops.io._utils``).
SKOPS_MODULES = r"skops(\.|$)"


@contextlib.contextmanager
def skops_deprecations_silenced() -> Iterator[None]:
    """Ignore ``FutureWarning`` and ``DeprecationWarning`` raised from skops' modules inside the block.

    Not thread-safe, like :func:`warnings.catch_warnings` itself.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=SKOPS_MODULES)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=SKOPS_MODULES)
        yield
