"""Version 1 against plain baselines on real rows: ROC-AUC on the real holdout.

A model is only as good as what plain baselines reach. For each dataset (``scripts/fidelity_report.py`` ``DATASETS``):

1. the validated rows are written to a CSV and ``daily_mlops.loop.bootstrap.bootstrap``
   runs on it exactly as ``daily-mlops bootstrap`` does (embedded SecantusDB in a
   temporary directory, ``MLOPS_DAILY_ROWS = --daily-rows``, seed ``--seed``): it
   holds out a stratified real 30%, fits the per-class copulas on the real 70%,
   samples the bootstrap batch and trains TabTransformer version 1 on its
   pretrain + finetune splits (``FIT_SPLITS``);
2. the same batch is sampled again (same fit, seed and logical date: the rows
   are identical; checked by re-scoring version 1 on the rebuilt test split,
   ``v1 syn test``, against the registered test ROC-AUC) and its
   pretrain + finetune rows, the rows version 1 trained on, are taken;
3. a LogisticRegression (one-hot categoricals, median-imputed and standardized
   numbers, ``max_iter=2000``) and a HistGradientBoostingClassifier
   (:func:`daily_mlops.ml.fidelity.classifier_roc_auc`, native categoricals)
   are each trained twice: on those synthetic rows (``syn``) and on the real
   70% (``real``), and scored on the real 30%.

Every ROC-AUC is on the same real holdout rows version 1 is scored on
(``real_metrics.roc_auc`` of the bootstrap result).

Usage::

    PYTHONPATH=src python scripts/plain_baselines.py [--daily-rows 5000] [--seed 42] [--datasets german caravan ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootstrap_quality import bootstrap_version_1  # noqa: E402
from fidelity_report import load  # noqa: E402

WIDE = ["caravan", "loanapp", "labor", "alcohol"]


def logistic_roc_auc(train: pd.DataFrame, test: pd.DataFrame, *, target: str, positive: str, seed: int) -> float:
    """ROC-AUC on ``test`` of a LogisticRegression trained on ``train`` (one-hot categoricals, scaled numbers)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = [c for c in train.columns if c != target]
    numeric = [c for c in features
               if pd.api.types.is_numeric_dtype(train[c]) and not pd.api.types.is_bool_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]

    def as_str(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[categorical].astype("string").fillna("<null>").astype(object)

    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
    ])
    model = make_pipeline(prep, LogisticRegression(max_iter=2000, random_state=seed))
    x_train = pd.concat([train[numeric], as_str(train)], axis=1)
    x_test = pd.concat([test[numeric], as_str(test)], axis=1)
    model.fit(x_train, (train[target].astype(str) == positive).to_numpy())
    return float(roc_auc_score((test[target].astype(str) == positive).to_numpy(), model.predict_proba(x_test)[:, 1]))


def measure(name: str, *, daily_rows: int, seed: int) -> dict:
    """One table row for dataset ``name``: version 1 and the four baselines, ROC-AUC on the real holdout."""
    from sklearn.metrics import roc_auc_score

    from daily_mlops.loop.bootstrap import BOOTSTRAP_DATE, reference_holdout
    from daily_mlops.ml._copulas import resolve_marginal
    from daily_mlops.ml.fidelity import classifier_roc_auc
    from daily_mlops.ml.schema import datetime_formats, infer_schema, read_csv, validate_batch
    from daily_mlops.ml.splits import FIT_SPLITS, split_indices
    from daily_mlops.ml.synthesis import Synthesizer
    from daily_mlops.settings import load_settings

    loaded, loaded_schema = load(name)
    target, positive = loaded_schema["target"]["column"], str(loaded_schema["target"]["positive_label"])
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / f"{name}.csv"
        loaded.to_csv(csv, index=False)
        # read back as bootstrap reads it, so the holdout and the refit below match its own
        schema = infer_schema(read_csv(csv), target_column=target, positive_label=positive)
        reference = validate_batch(read_csv(csv), schema)
        fit_part, holdout = reference_holdout(reference, schema, seed=seed)
        settings = load_settings(seed=seed, home=Path(tmp), reference_data=csv, daily_rows=daily_rows,
                                 target_column=target, positive_label=positive)
        result, seconds, bundle = bootstrap_version_1(settings, Path(tmp), "baselines")
    marginal = resolve_marginal(settings.synthesis_marginal, reference.shape[1] - 1)  # as bootstrap resolved it
    synth = Synthesizer(seed=seed, target_column=target, marginal=marginal).fit(
        fit_part, datetime_formats=datetime_formats(schema))
    batch = validate_batch(synth.generate(daily_rows, seed=seed, logical_date=BOOTSTRAP_DATE), schema)
    encoded = bundle.preprocessor.transform(batch)
    splits = split_indices(encoded.y, seed=seed)
    trained_on = batch.iloc[np.sort(np.concatenate([splits[s] for s in FIT_SPLITS]))].reset_index(drop=True)
    test = batch.iloc[splits["test"]]
    y_test = (test[target].astype(str) == positive).to_numpy().astype(int)
    v1_syn_test = float(roc_auc_score(y_test, bundle.predict_proba(test.drop(columns=[target]))))
    y_real = (holdout[target].astype(str) == positive).to_numpy().astype(int)
    v1_real = float(roc_auc_score(y_real, bundle.predict_proba(holdout.drop(columns=[target]))))
    row = {"dataset": name, "marginal": marginal, "rows": len(reference), "columns": reference.shape[1],
           "positive rate": round(float((reference[target].astype(str) == positive).mean()), 3),
           "syn train rows": len(trained_on), "real train rows": len(fit_part), "holdout rows": len(holdout),
           "v1 syn test": round(v1_syn_test, 3), "v1 syn test (registered)": round(result["metrics"]["roc_auc"], 3),
           "v1 real": round(v1_real, 3)}
    for label, train in (("syn", trained_on), ("real", fit_part)):
        row[f"LR {label}"] = round(logistic_roc_auc(train, holdout, target=target, positive=positive, seed=seed), 3)
        row[f"HGB {label}"] = round(classifier_roc_auc(train, holdout, target=target, positive_label=positive,
                                                       seed=seed), 3)
    row["bootstrap s"] = round(seconds, 1)
    print(f"# {name}: {row}", file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daily-rows", type=int, default=5000, help="MLOPS_DAILY_ROWS of the bootstrap (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="MLOPS_SEED, holdout and classifier seed (default 42)")
    parser.add_argument("--datasets", nargs="+", default=["german", *WIDE])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    table = pd.DataFrame([measure(n, daily_rows=args.daily_rows, seed=args.seed) for n in args.datasets])
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
