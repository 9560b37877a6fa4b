"""Import SDV, SDMetrics and skops without torch, in the task processes that never train.

Three libraries import torch although the loop never uses it through them (installed source of
SDV 2.0, SDMetrics 0.32, skops 0.16 with scikit-learn 1.9):

* ``import sdv`` runs SDV's package ``__init__``, which imports every synthesizer (CTGAN/TVAE and
  PAR import torch inside ``try: ... except ImportError``) and SDMetrics;
* SDMetrics' ``__init__`` imports every metric; ``single_table.bayesian_network`` does
  ``try: import torch except ModuleNotFoundError: torch = None``;
* ``skops.io`` lists scikit-learn's estimators (``sklearn.utils.all_estimators``), whose
  ``pkgutil.walk_packages`` imports the package ``sklearn.externals.array_api_compat.torch``, which
  imports torch; ``walk_packages`` skips a package that raises ``ImportError``.

So each imports and works without torch, with the torch-based synthesizers and metrics marked
unavailable; the loop uses none of them (GaussianCopula, the diagnostic and quality reports,
KSComplement / TVComplement, skops' loader). torch's own import is about 2 s of a task process that
samples, encodes or checks 10,000 rows in about as long (``python -m benchmarks tasks``).

:func:`import_without_torch` hides torch during those imports only: a meta path finder that
answers "no module named torch" is in place while the listed modules import, then removed. It
puts nothing in ``sys.modules`` (SciPy's array-API helpers look there for torch), and a later
``import torch`` (the training tasks; ``daily-mlops run``, which runs every task in one process)
imports the real torch. When torch is already imported nothing is hidden. The finder is process
wide for that moment: a task process imports on one thread.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["import_without_torch"]


class _HideTorch:
    """Meta path finder: ``torch`` and its submodules are not found while it is installed."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (hidden while SDV, SDMetrics or skops import)", name=name)
        return None


def import_without_torch(*names: str) -> list[ModuleType]:
    """Import the modules ``names`` (``"sdv"``, ``"sdmetrics"``, ``"skops.io"``) with torch hidden; return them.

    Already imported modules are returned as they are; when torch is already imported (the
    training tasks, the one-process runner) it is not hidden and the import is a plain one.
    """
    missing = [name for name in names if name not in sys.modules]
    if missing and "torch" not in sys.modules:
        finder = _HideTorch()
        sys.meta_path.insert(0, finder)
        try:
            for name in missing:
                __import__(name)
        finally:
            sys.meta_path.remove(finder)
    else:
        for name in missing:
            __import__(name)
    return [sys.modules[name] for name in names]
