"""ROC-AUC of the bootstrap model on held-out REAL rows: the quality check for training changes.

What it does (run it before and after a change to the network or training, with the same seed):

1. read a reference CSV (default: the bundled ``data/reference/german_credit.csv``);
2. hold out a stratified 30 % of its real rows (scikit-learn ``train_test_split``,
   ``random_state=seed``, stratified on the target column);
3. run the project's own ``daily_mlops.loop.bootstrap.bootstrap`` with
   ``MLOPS_REFERENCE_DATA`` = the other 70 %, against an embedded SecantusDB server
   in a temporary directory: it fits the synthesizer and the preprocessor on those
   70 %, samples the bootstrap batch and trains model version 1 exactly as
   ``daily-mlops bootstrap`` does;
4. load version 1 from the registry and score its positive-class probabilities on
   the held-out 30 % (ROC-AUC, plus F1 at the model's decision threshold).

Usage::

    PYTHONPATH=src python scripts/bootstrap_quality.py [--reference CSV] [--seed 42] [--json]

Extra ``MLOPS_*`` variables (e.g. ``MLOPS_ARCHITECTURE=tab``) apply as usual.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def bootstrap_version_1(settings: Settings, directory: Path, db_name: str) -> tuple[dict, float, ModelBundle]:
    """Bootstrap with ``settings`` on a throwaway embedded MongoDB under ``directory``.

    Returns bootstrap's result, its wall-clock seconds and version 1 loaded as the DAGs load it.
    """
    from daily_mlops.loop._common import load_model_version
    from daily_mlops.loop.bootstrap import bootstrap
    from daily_mlops.storage.mongo import connect, embedded_server
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    with embedded_server(directory / "mongo") as uri, connect(uri, db_name) as db:
        started = time.perf_counter()
        result = bootstrap(settings, db=db)
        seconds = time.perf_counter() - started
        registry = ModelRegistry(db)
        return result, seconds, load_model_version(registry, registry.get(MODEL_NAME, result["model_version"]))


def measure(reference: Path, *, seed: int, **overrides: object) -> dict[str, float]:
    """Bootstrap on 70 % of ``reference`` and score version 1 on the held-out 30 %.

    Parameters
    ----------
    reference : Path
        CSV of real rows with the target column of the settings.
    seed : int
        ``MLOPS_SEED`` of the bootstrap run and ``random_state`` of the 70/30 split.
    **overrides
        Further :class:`~daily_mlops.settings.Settings` fields.

    Returns
    -------
    dict
        ``roc_auc`` and ``f1`` on the held-out rows (fractions in [0, 1]),
        ``bootstrap_seconds`` (wall clock), ``n_train_rows``, ``n_holdout_rows``.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from daily_mlops.ml.metrics import classification_metrics
    from daily_mlops.ml.schema import read_csv
    from daily_mlops.settings import load_settings

    frame = read_csv(reference)
    probe = load_settings(seed=seed, **overrides)
    target = probe.target_column
    train, holdout = train_test_split(frame, test_size=0.3, stratify=frame[target], random_state=seed)
    with tempfile.TemporaryDirectory() as tmp:
        train_csv = Path(tmp) / "reference_70.csv"
        train.to_csv(train_csv, index=False)
        settings = load_settings(seed=seed, home=Path(tmp), reference_data=train_csv, **overrides)
        result, seconds, bundle = bootstrap_version_1(settings, Path(tmp), "quality")
    y = (holdout[target].astype(str) == probe.positive_label).to_numpy().astype(int)
    prob = bundle.predict_proba(holdout.drop(columns=[target]))
    metrics = classification_metrics(y, prob, decision_threshold=bundle.decision_threshold)
    return {"roc_auc": float(roc_auc_score(y, prob)), "f1": float(metrics["f1"]),
            "bootstrap_seconds": round(seconds, 1), "n_train_rows": int(len(train)),
            "n_holdout_rows": int(len(holdout))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REPO / "data" / "reference" / "german_credit.csv")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    out = measure(args.reference, seed=args.seed)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:<18} {value}")


if __name__ == "__main__":
    sys.exit(main())
