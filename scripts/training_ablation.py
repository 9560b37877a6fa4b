"""Training ablation: a retraining attempt's fine-tuning data, and contrastive pretraining.

What it measures, with the project's own code (``Synthesizer``, ``TabularPreprocessor``,
``TabTransformer``, ``pretrain_contrastive``, ``finetune``, ``choose_decision_threshold``,
``classification_metrics``) and the default :class:`~daily_mlops.settings.Settings`:

1. **Fine-tuning data of a daily retraining attempt.** Version 1 is trained as
   ``daily_mlops.loop.bootstrap.bootstrap`` trains it (seed ``MLOPS_SEED`` = 42,
   a ``MLOPS_DAILY_ROWS`` bootstrap batch, 70/15/15 split, contrastive pretraining,
   fine-tuning on 80% of the fine-tune split, decision threshold on the other 20%).
   For each ordinary day (logical dates 2026-01-01, -02, ...: fresh batches, no drift)
   the batch is split five ways as the loop will soon split it (:data:`DAY_FRACTIONS`:
   stratified ``train_test_split`` calls seeded by the day's seed) and a copy of
   version 1 is fine-tuned for ``MLOPS_RETRAIN_EPOCHS`` epochs with the seed of
   ``retrain_model``'s attempt 1 (day seed + 1) on (a) the day's finetune part
   or (b) its pretrain + finetune parts. The decision threshold is chosen on the
   day's calibration part (the same rows for both options); the validation and
   test parts are not used. Each attempt's ``finetune`` call is timed (wall seconds).
2. **Contrastive pretraining.** Version 1 with ``MLOPS_PRETRAIN_EPOCHS`` epochs of
   contrastive pretraining against none (fine-tuning from random initialisation),
   for each seed in ``--seeds``: the seed drives the bootstrap batch, its splits,
   the weight initialisation and training; the synthesizer fit stays at seed 42.
   Seconds are pretraining plus fine-tuning, wall clock.

Judges, rows nothing was trained or calibrated on:

* the INDEPENDENT synthetic split: ``--independent-rows`` (15,000) rows drawn from
  the same synthesizer with seed :data:`INDEPENDENT_SEED` and logical date
  :data:`INDEPENDENT_DATE`, a seed no day, bootstrap batch or floor sample uses;
* the REAL holdout: the stratified 30% of the reference rows kept out of the
  synthesizer's fit (:func:`daily_mlops.loop.bootstrap.reference_holdout`, seed 42).

ROC-AUC is the main judge; F1 (positive label ``bad``) is at the threshold chosen on
the calibration rows. Where two options are scored on the same rows, the table gives the
paired bootstrap 95% interval of their ROC-AUC difference (``scipy.stats.bootstrap``,
``paired=True``, percentile method, ``--resamples`` resamples, seeded).

As in ``register_synthesizer`` and ``register_preprocessor``, the synthesizer is fit on
the reference fit part (70%) and the preprocessor on all reference rows, in process:
no MongoDB is needed.

Run (about 4 minutes with the defaults on 2 shared cores, load average about 2.5)::

    PYTHONPATH=src python scripts/training_ablation.py
    PYTHONPATH=src python scripts/training_ablation.py --days 1 --seeds 42 --rows 2000 \\
        --finetune-epochs 2 --pretrain-epochs 1 --independent-rows 2000 --resamples 100   # a smoke run

Extra ``MLOPS_*`` variables apply as usual; the options override them.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: The day's five-way split that the loop will soon use (fractions of the batch, in split order).
DAY_FRACTIONS = {"pretrain": 0.50, "finetune": 0.15, "calibration": 0.10, "validation": 0.10, "test": 0.15}
#: Seed and logical date of the independent synthetic split: neither a day's (seed 42, recent dates),
#: the bootstrap batch's (1970-01-01) nor the floor sample's (seed 43, 1970-01-01).
INDEPENDENT_SEED = 9_999
INDEPENDENT_DATE = dt.date(2099, 12, 31)
#: Logical date of the first ordinary day of measurement 1.
FIRST_DAY = dt.date(2026, 1, 1)
#: ``retrain_model``'s attempt number: its seed is the day's seed plus this.
ATTEMPT = 1
#: Fine-tuning data of a retraining attempt: option label -> the day's parts it fine-tunes on.
FINETUNE_OPTIONS = {"(a) finetune": ("finetune",), "(b) pretrain+finetune": ("pretrain", "finetune")}


@dataclass
class Bench:
    """What every measurement shares: settings, the fitted synthesizer and preprocessor, the two judges."""

    settings: Any
    schema: dict
    synth: Any
    pre: Any
    real: Any  # EncodedBatch of the real holdout
    independent: Any  # EncodedBatch of the independent synthetic split


def say(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_bench(settings: Any, reference_path: Path, *, independent_rows: int) -> Bench:
    """Read and validate the reference rows, fit the synthesizer (70%) and preprocessor (all), encode the judges."""
    from daily_mlops.loop.bootstrap import reference_holdout
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import datetime_formats, infer_schema, read_csv, schema_parts, validate_batch
    from daily_mlops.ml.synthesis import Synthesizer

    reference = read_csv(reference_path, what="--reference")
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    reference = validate_batch(reference, schema)
    fit_part, holdout = reference_holdout(reference, schema, seed=settings.seed)
    synth = Synthesizer(seed=settings.seed, target_column=schema_parts(schema)[1]["column"]).fit(
        fit_part, datetime_formats=datetime_formats(schema))
    pre = TabularPreprocessor(schema).fit(reference)
    bench = Bench(settings=settings, schema=schema, synth=synth, pre=pre, real=pre.transform(holdout), independent=None)
    bench.independent = sample(bench, independent_rows, seed=INDEPENDENT_SEED, logical_date=INDEPENDENT_DATE)
    return bench


def sample(bench: Bench, rows: int, *, seed: int, logical_date: dt.date) -> Any:
    """``rows`` synthetic rows of ``(seed, logical_date)``, validated and encoded (an EncodedBatch)."""
    from daily_mlops.ml.schema import validate_batch

    return bench.pre.transform(validate_batch(
        bench.synth.generate(rows, seed=seed, logical_date=logical_date), bench.schema))


def five_way_split(y: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
    """Stratified parts of :data:`DAY_FRACTIONS`: successive ``train_test_split`` calls, each seeded by ``seed``.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Labels to stratify on.

    Returns
    -------
    dict of str to ndarray of int64
        Sorted, disjoint row indices per part, together ``0..n_rows-1``.
    """
    from sklearn.model_selection import train_test_split

    rest, left, parts = np.arange(len(y), dtype=np.int64), 1.0, {}
    *leading, last = DAY_FRACTIONS
    for name in leading:
        taken, rest = train_test_split(rest, train_size=DAY_FRACTIONS[name] / left, random_state=seed,
                                       shuffle=True, stratify=y[rest])
        parts[name], left = np.sort(taken), left - DAY_FRACTIONS[name]
    parts[last] = np.sort(rest)
    return parts


def train_version_1(bench: Bench, *, seed: int, rows: int, pretrain_epochs: int) -> dict[str, Any]:
    """Version 1 as ``bootstrap`` trains it, with ``seed`` for the batch, splits, initialisation and training.

    Returns
    -------
    dict
        ``model`` (TabTransformer), ``threshold`` (chosen on the calibration part), ``seconds``
        (pretraining plus fine-tuning, wall clock).
    """
    from daily_mlops.loop.bootstrap import BOOTSTRAP_DATE
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.metrics import choose_decision_threshold
    from daily_mlops.ml.network import TabTransformer
    from daily_mlops.ml.splits import calibration_split, split_indices
    from daily_mlops.ml.training import finetune, predict_proba, pretrain_contrastive, seed_everything

    s, device = bench.settings, resolve_device(bench.settings.device)
    encoded = sample(bench, rows, seed=seed, logical_date=BOOTSTRAP_DATE)
    part = {name: encoded.subset(idx) for name, idx in split_indices(encoded.y, seed=seed).items()}
    held = calibration_split(part["finetune"].y, seed=seed)
    fit, calibration = part["finetune"].subset(held["fit"]), part["finetune"].subset(held["calibration"])
    seed_everything(seed)
    model = TabTransformer(
        cardinalities=bench.pre.cardinalities_, n_numeric=bench.pre.n_numeric_, d_model=s.d_model, nhead=s.nhead,
        num_layers=s.num_layers, dim_feedforward=s.dim_feedforward, dropout=s.dropout,
        architecture=s.architecture, encoder_dropout=s.encoder_dropout,
    )
    started = time.perf_counter()
    if pretrain_epochs:
        pretrain_contrastive(model, part["pretrain"].x_cat, part["pretrain"].x_num, epochs=pretrain_epochs,
                             batch_size=s.batch_size, learning_rate=s.learning_rate, temperature=s.temperature,
                             mask_probability=s.mask_probability, seed=seed, device=device)
    finetune(model, fit.x_cat, fit.x_num, fit.y, epochs=s.finetune_epochs, batch_size=s.batch_size,
             learning_rate=s.learning_rate, seed=seed, device=device)
    seconds = time.perf_counter() - started
    threshold = choose_decision_threshold(calibration.y, predict_proba(model, calibration.x_cat, calibration.x_num))
    return {"model": model, "threshold": threshold, "seconds": seconds}


def retrain(bench: Bench, version_1: dict[str, Any], day: dt.date, *, rows: int) -> dict[str, dict[str, Any]]:
    """One retraining attempt of a copy of version 1 per :data:`FINETUNE_OPTIONS`, on ``day``'s batch.

    The day's rows and parts are those of ``generate_data`` / ``preprocess_data`` (seed
    ``day_seed(MLOPS_SEED, day)``), laid out five ways (:func:`five_way_split`); fine-tuning
    is ``retrain_model``'s (``MLOPS_RETRAIN_EPOCHS`` epochs, seed day seed + :data:`ATTEMPT`).

    Returns
    -------
    dict
        Per option label: ``model``, ``threshold``, ``seconds`` (the ``finetune`` call), ``rows``.
    """
    from daily_mlops.dates import day_seed
    from daily_mlops.ml.device import resolve_device
    from daily_mlops.ml.metrics import choose_decision_threshold
    from daily_mlops.ml.training import finetune, predict_proba, seed_everything

    s = bench.settings
    seed = day_seed(s.seed, day)
    encoded = sample(bench, rows, seed=s.seed, logical_date=day)
    parts = five_way_split(encoded.y, seed=seed)
    calibration = encoded.subset(parts["calibration"])
    out = {}
    for label, names in FINETUNE_OPTIONS.items():
        fit = encoded.subset(np.sort(np.concatenate([parts[name] for name in names])))
        model = copy.deepcopy(version_1["model"])
        seed_everything(seed + ATTEMPT)
        started = time.perf_counter()
        finetune(model, fit.x_cat, fit.x_num, fit.y, epochs=s.retrain_epochs, batch_size=s.batch_size,
                 learning_rate=s.learning_rate, seed=seed + ATTEMPT, device=resolve_device(s.device))
        seconds = time.perf_counter() - started
        threshold = choose_decision_threshold(calibration.y, predict_proba(model, calibration.x_cat, calibration.x_num))
        out[label] = {"model": model, "threshold": threshold, "seconds": seconds, "rows": len(fit)}
    return out


def judge(bench: Bench, trained: dict[str, Any]) -> dict[str, Any]:
    """ROC-AUC, F1 (at the trained threshold) and probabilities on the independent split and the real holdout."""
    from daily_mlops.ml.metrics import classification_metrics
    from daily_mlops.ml.training import predict_proba

    scores = {}
    for name, rows in (("independent", bench.independent), ("real", bench.real)):
        prob = predict_proba(trained["model"], rows.x_cat, rows.x_num)
        metrics = classification_metrics(rows.y, prob, decision_threshold=trained["threshold"])
        scores[name] = {"roc_auc": metrics["roc_auc"], "f1": metrics["f1"], "prob": prob}
    return scores


def paired_difference(y: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, *, resamples: int,
                      seed: int) -> tuple[float, float, float]:
    """ROC-AUC(b) - ROC-AUC(a) on the same rows and its paired bootstrap 95% interval (percentile).

    ``scipy.stats.bootstrap((y, prob_a, prob_b), ..., paired=True, vectorized=False)``: each
    resample draws the same rows for both options.
    """
    from scipy.stats import bootstrap
    from sklearn.metrics import roc_auc_score

    def difference(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return roc_auc_score(labels, b) - roc_auc_score(labels, a)

    ci = bootstrap((y, prob_a, prob_b), difference, paired=True, vectorized=False, n_resamples=resamples,
                   method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(difference(y, prob_a, prob_b)), float(ci.low), float(ci.high)


def _difference_cells(bench: Bench, a: dict, b: dict, *, resamples: int, seed: int,
                      judges: tuple[str, ...] = ("independent", "real")) -> list[str]:
    """``"+0.0123 [-0.0040, +0.0290]"`` of b - a on each of ``judges`` (``"independent"``, ``"real"``), in order."""
    cells = []
    for name in judges:
        rows = bench.independent if name == "independent" else bench.real
        delta, low, high = paired_difference(rows.y, a[name]["prob"], b[name]["prob"], resamples=resamples, seed=seed)
        cells.append(f"{delta:+.4f} [{low:+.4f}, {high:+.4f}]")
    return cells


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return "\n".join([_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)])


def _scores(score: dict) -> list[str]:
    return [f"{score['independent']['roc_auc']:.4f}", f"{score['independent']['f1']:.4f}",
            f"{score['real']['roc_auc']:.4f}", f"{score['real']['f1']:.4f}"]


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.4f}"


def finetuning_table(bench: Bench, version_1: dict, *, days: int, rows: int, resamples: int) -> str:
    """Measurement 1 as a markdown table (one row per day and option, version 1, per-option means)."""
    v1 = judge(bench, version_1)
    table = [["—", "v1 (no fine-tuning)", "—", "—", *_scores(v1), "", ""]]
    kept: dict[str, list[dict]] = {label: [] for label in FINETUNE_OPTIONS}
    for k in range(days):
        day = FIRST_DAY + dt.timedelta(days=k)
        say(f"measurement 1: retraining on {day}")
        attempts = retrain(bench, version_1, day, rows=rows)
        scored = {label: {**judge(bench, attempt), "seconds": attempt["seconds"], "rows": attempt["rows"]}
                  for label, attempt in attempts.items()}
        (label_a, a), (label_b, b) = scored.items()
        diff = _difference_cells(bench, a, b, resamples=resamples, seed=bench.settings.seed + k)
        table.append([day.isoformat(), label_a, a["rows"], f"{a['seconds']:.1f}", *_scores(a), "", ""])
        table.append([day.isoformat(), label_b, b["rows"], f"{b['seconds']:.1f}", *_scores(b), *diff])
        for label, score in scored.items():
            kept[label].append(score)
    for label, scores in kept.items():
        table.append([f"mean of {days}", label, round(statistics.fmean(s["rows"] for s in scores)),
                      f"{statistics.fmean(s['seconds'] for s in scores):.1f}",
                      *(_mean([s[judge_][m] for s in scores]) for judge_ in ("independent", "real")
                        for m in ("roc_auc", "f1")), "", ""])
    (_, a_scores), (_, b_scores) = kept.items()
    table.append([f"mean of {days}", "(b) − (a)", "", "", *(
        f"{statistics.fmean(b[j][m] - a[j][m] for a, b in zip(a_scores, b_scores, strict=True)):+.4f}"
        for j in ("independent", "real") for m in ("roc_auc", "f1")), "", ""])
    header = ["day", "option", "rows", "seconds", "independent ROC-AUC", "independent F1", "real ROC-AUC", "real F1",
              "Δ ROC-AUC (b) − (a) independent [95% CI]", "Δ ROC-AUC (b) − (a) real [95% CI]"]
    return _table(header, table)


def default_pretraining_epochs(bench: Bench) -> int:
    """``bootstrap``'s pretraining epochs for the settings' network on this data (:func:`pretraining_epochs`)."""
    from daily_mlops.loop.bootstrap import pretraining_epochs
    from daily_mlops.ml.network import resolve_architecture

    n_features = len(bench.pre.cardinalities_) + bench.pre.n_numeric_
    return pretraining_epochs(bench.settings, resolve_architecture(bench.settings.architecture, n_features))


def pretraining_table(bench: Bench, *, seeds: list[int], rows: int, resamples: int, pretrained: dict[int, dict]) -> str:
    """Measurement 2 as a markdown table (one row per seed and option, per-option means, mean difference).

    ``pretrained`` holds version 1 with default pretraining by seed (measurement 1's is reused).
    """
    epochs = default_pretraining_epochs(bench)
    options = {f"{epochs} epochs": epochs, "none (0)": 0}
    table, kept = [], {label: [] for label in options}
    for seed in seeds:
        scored = {}
        for label, n in options.items():
            say(f"measurement 2: seed {seed}, pretraining {label}")
            if n and seed in pretrained:
                trained = pretrained[seed]
            else:
                trained = train_version_1(bench, seed=seed, rows=rows, pretrain_epochs=n)
            scored[label] = {**judge(bench, trained), "seconds": trained["seconds"]}
        (label_with, with_), (label_without, without) = scored.items()
        diff = _difference_cells(bench, without, with_, resamples=resamples, seed=seed, judges=("real", "independent"))
        for label, score, cells in ((label_with, with_, diff), (label_without, without, ["", ""])):
            table.append([seed, label, f"{score['real']['roc_auc']:.4f}", f"{score['real']['f1']:.4f}",
                          f"{score['independent']['roc_auc']:.4f}", f"{score['independent']['f1']:.4f}",
                          f"{score['seconds']:.1f}", *cells])
            kept[label].append(score)
    for label, scores in kept.items():
        table.append([f"mean of {len(seeds)}", label, *(_mean([s[j][m] for s in scores])
                                                        for j, m in (("real", "roc_auc"), ("real", "f1"),
                                                                     ("independent", "roc_auc"),
                                                                     ("independent", "f1"))),
                      f"{statistics.fmean(s['seconds'] for s in scores):.1f}", "", ""])
    (_, w), (_, wo) = kept.items()
    table.append([f"mean of {len(seeds)}", "with − without", *(
        f"{statistics.fmean(a[j][m] - b[j][m] for a, b in zip(w, wo, strict=True)):+.4f}"
        for j, m in (("real", "roc_auc"), ("real", "f1"), ("independent", "roc_auc"), ("independent", "f1"))),
        f"{statistics.fmean(a['seconds'] - b['seconds'] for a, b in zip(w, wo, strict=True)):+.1f}", "", ""])
    header = ["seed", "pretraining", "real ROC-AUC", "real F1", "independent ROC-AUC", "independent F1", "seconds",
              "Δ ROC-AUC with − without real [95% CI]", "Δ ROC-AUC with − without independent [95% CI]"]
    return _table(header, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REPO / "data" / "reference" / "german_credit.csv",
                        help="reference CSV (default: the bundled German credit data)")
    parser.add_argument("--days", type=int, default=3, help="ordinary days of measurement 1 (default 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44],
                        help="version-1 seeds of measurement 2 (default 42 43 44); measurement 1 uses MLOPS_SEED's")
    parser.add_argument("--rows", type=int, default=None, help="rows per batch (default MLOPS_DAILY_ROWS)")
    parser.add_argument("--independent-rows", type=int, default=15_000, help="rows of the independent split")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default MLOPS_PRETRAIN_EPOCHS")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="default MLOPS_FINETUNE_EPOCHS")
    parser.add_argument("--retrain-epochs", type=int, default=None, help="default MLOPS_RETRAIN_EPOCHS")
    parser.add_argument("--resamples", type=int, default=500, help="bootstrap resamples per interval (default 500)")
    parser.add_argument("--only", choices=("finetuning", "pretraining"), default=None,
                        help="run one measurement only")
    args = parser.parse_args()

    from daily_mlops.settings import load_settings

    overrides = {key: value for key, value in (("pretrain_epochs", args.pretrain_epochs),
                                               ("finetune_epochs", args.finetune_epochs),
                                               ("retrain_epochs", args.retrain_epochs)) if value is not None}
    settings = load_settings(**overrides)
    rows = args.rows or settings.daily_rows
    started = time.perf_counter()
    say("fitting the synthesizer and preprocessor, sampling the independent split")
    bench = make_bench(settings, args.reference, independent_rows=args.independent_rows)
    print(f"settings: seed {settings.seed}, {rows} rows per batch, pretrain_epochs {settings.pretrain_epochs}, "
          f"finetune_epochs {settings.finetune_epochs}, retrain_epochs {settings.retrain_epochs}, "
          f"batch_size {settings.batch_size}, learning_rate {settings.learning_rate}; judges: independent split "
          f"{len(bench.independent)} rows (seed {INDEPENDENT_SEED}, {INDEPENDENT_DATE}), real holdout "
          f"{len(bench.real)} rows; {args.resamples} bootstrap resamples\n", flush=True)

    versions: dict[int, dict] = {}
    if args.only != "pretraining" or settings.seed in args.seeds:
        say(f"training version 1 (seed {settings.seed}, default pretraining)")
        versions[settings.seed] = train_version_1(bench, seed=settings.seed, rows=rows,
                                                  pretrain_epochs=default_pretraining_epochs(bench))
    if args.only != "pretraining":
        print(f"## 1. Fine-tuning data of a retraining attempt ({settings.retrain_epochs} epochs from version 1)\n")
        print(finetuning_table(bench, versions[settings.seed], days=args.days, rows=rows, resamples=args.resamples),
              end="\n\n", flush=True)
    if args.only != "finetuning":
        print("## 2. Contrastive pretraining of version 1\n")
        print(pretraining_table(bench, seeds=args.seeds, rows=rows, resamples=args.resamples, pretrained=versions),
              end="\n\n", flush=True)
    print(f"total: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
