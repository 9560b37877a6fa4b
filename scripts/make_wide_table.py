"""Make the WIDE benchmark table: 5,000 rows x 99 columns, mixed types, nulls, high-cardinality columns.

Used by ``python -m benchmarks wide`` to check that bootstrap and a retraining
attempt stay fast when a user points ``MLOPS_REFERENCE_DATA`` at a wide table.
No wide real table ships offline with the project's dependencies (scikit-learn's
bundled sets are numeric-only), so the table is DERIVED from the bundled real
German credit data (``data/reference/german_credit.csv``, CC BY 4.0, see its
README) in a documented, seeded way:

* rows: 5,000 rows drawn with replacement from the 1,000 real rows (NumPy
  ``default_rng(seed)``); the target ``creditability`` and the 20 original
  features are copied as they are (13 categorical, 7 numeric);
* 7 ``<numeric>__log`` columns: ``log1p`` of each original numeric column, plus
  Gaussian noise (sd 0.05), so the resampled duplicates differ;
* 7 ``<numeric>__noisy`` columns: the value times log-normal noise (sd 0.2);
* 7 ``<numeric>__band`` categorical columns: the quintile ("q1".."q5") of each numeric column;
* 12 ``<cat_i>__x__<cat_i+1>`` categorical crosses of consecutive categorical
  columns (up to 50 levels each);
* 5 high-cardinality categorical columns with a weak link to the target
  (a per-level random effect): ``branch_code`` (120 levels), ``merchant_id`` (300),
  ``agent_id`` (800), ``postcode`` (2,000), ``employer_id`` (3,000);
* 10 ratio and product columns of pairs of the original numeric columns;
* 20 ``noise_num_<k>`` numeric columns (normal, uniform, log-normal, Poisson) and
  10 ``noise_cat_<k>`` categorical columns (3 to 40 levels) that carry no signal;
* nulls: 12 derived columns (6 numeric, 6 categorical) get 5 % to 30 % of their
  values set to null; the target and the 20 original columns have none.

That is 20 + 7 + 7 + 7 + 12 + 5 + 10 + 20 + 10 = 98 feature columns plus the
target: 99 columns. The preprocessor adds a 0/1 null indicator per numeric
column with nulls (so 6 more numeric model features) and groups the rare levels
of high-cardinality columns into one code (``max_categories``).

Usage::

    python scripts/make_wide_table.py OUTPUT.csv [--rows 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
GERMAN_CREDIT = REPO / "data" / "reference" / "german_credit.csv"
TARGET = "creditability"
#: (name, number of levels) of the high-cardinality columns.
HIGH_CARDINALITY = (("branch_code", 120), ("merchant_id", 300), ("agent_id", 800), ("postcode", 2000),
                    ("employer_id", 3000))


def make_wide_table(n_rows: int = 5_000, *, seed: int = 0, source: Path = GERMAN_CREDIT) -> pd.DataFrame:
    """The wide table described in the module docstring.

    Parameters
    ----------
    n_rows : int, default 5000
        Rows drawn with replacement from ``source``.
    seed : int, default 0
        Seeds every random choice (same seed, same table).
    source : Path
        The German credit CSV (20 features and ``creditability``).

    Returns
    -------
    DataFrame of shape (n_rows, 99)
        98 feature columns and the target ``creditability`` (last).
    """
    rng = np.random.default_rng(seed)
    real = pd.read_csv(source)
    base = real.iloc[rng.integers(0, len(real), n_rows)].reset_index(drop=True)
    features = base.drop(columns=[TARGET])
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    is_bad = (base[TARGET] == "bad").to_numpy()
    out: dict[str, pd.Series | np.ndarray] = {c: features[c] for c in features.columns}

    for c in numeric:
        x = features[c].to_numpy(dtype=float)
        out[f"{c}__log"] = np.log1p(x) + rng.normal(0, 0.05, n_rows)
        out[f"{c}__noisy"] = x * rng.lognormal(0, 0.2, n_rows)
        out[f"{c}__band"] = "q" + (pd.qcut(x, 5, labels=False, duplicates="drop") + 1).astype(str)
    for left, right in zip(categorical[:-1], categorical[1:], strict=True):
        out[f"{left}__x__{right}"] = features[left].astype(str).str[:12] + "|" + features[right].astype(str).str[:12]
    for name, levels in HIGH_CARDINALITY:
        # Levels drawn with a weak tilt: bad-credit rows favour the first half of the levels a little.
        effect = rng.normal(0, 1, levels)
        weights_good = np.exp(-0.3 * effect)
        weights_bad = np.exp(0.3 * effect)
        pick_good = rng.choice(levels, n_rows, p=weights_good / weights_good.sum())
        pick_bad = rng.choice(levels, n_rows, p=weights_bad / weights_bad.sum())
        codes = np.where(is_bad, pick_bad, pick_good)
        out[name] = np.char.add(f"{name[:3]}-", codes.astype(str))
    pairs = [(numeric[i], numeric[j]) for i in range(len(numeric)) for j in range(i + 1, len(numeric))][:10]
    for k, (a, b) in enumerate(pairs):
        xa, xb = features[a].to_numpy(dtype=float), features[b].to_numpy(dtype=float)
        out[f"{a}__per__{b}" if k % 2 == 0 else f"{a}__times__{b}"] = xa / (xb + 1.0) if k % 2 == 0 else xa * xb
    for k in range(20):
        kind = k % 4
        out[f"noise_num_{k}"] = (rng.normal(0, 1, n_rows) if kind == 0
                                 else rng.uniform(-5, 5, n_rows) if kind == 1
                                 else rng.lognormal(0, 1, n_rows) if kind == 2
                                 else rng.poisson(3, n_rows).astype(float))
    for k in range(10):
        levels = 3 + 4 * k
        out[f"noise_cat_{k}"] = np.char.add("v", rng.integers(0, levels, n_rows).astype(str))
    out[TARGET] = base[TARGET]
    table = pd.DataFrame(out)

    numeric_derived = [c for c in table.columns if c.endswith("__noisy")][:3] + ["noise_num_0", "noise_num_5",
                                                                                 "noise_num_10"]
    categorical_derived = [c for c in table.columns if c.endswith("__band")][:2] + ["postcode", "merchant_id",
                                                                                    "noise_cat_3", "noise_cat_7"]
    for k, column in enumerate(numeric_derived + categorical_derived):
        fraction = 0.05 + 0.25 * k / (len(numeric_derived) + len(categorical_derived) - 1)
        table.loc[rng.random(n_rows) < fraction, column] = None
    assert table.shape == (n_rows, 99), table.shape
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the wide benchmark table (5,000 x 99) as CSV.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = make_wide_table(args.rows, seed=args.seed)
    table.to_csv(args.output, index=False)
    print(f"wrote {args.output}: {table.shape[0]} rows x {table.shape[1]} columns "
          f"({int(table.isna().any().sum())} with nulls)")


if __name__ == "__main__":
    main()
