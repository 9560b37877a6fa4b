"""Small labelled tables shared by the synthesis unit tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def labelled_reference(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows whose label (``yes`` on every 4th row: 25% positives) depends on ``x`` and ``c``.

    Columns: ``x`` float (shifted by 2 for positives), ``n`` integer 0-9, ``c`` ``a``/``b`` (80% ``a`` for
    positives, 20% for negatives), ``label``. Seeded by ``seed`` (NumPy ``default_rng``).
    """
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 4 == 0, "yes", "no")
    x = rng.normal(size=n) + np.where(y == "yes", 2.0, 0.0)
    c = np.where(rng.random(n) < np.where(y == "yes", 0.8, 0.2), "a", "b")
    return pd.DataFrame({"x": x, "n": rng.integers(0, 10, n), "c": c, "label": y})
