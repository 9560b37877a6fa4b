"""How a model version's evidence reads: its real-holdout and test metrics, its comparisons and their noise.

One set of pure functions (documents in, short plain text out) behind every
renderer: ``daily-mlops status`` (:mod:`daily_mlops.cli.output`), ``models
list|show`` (:mod:`daily_mlops.loop.model_versions`), the HTML report and the
model card. They render what the loop recorded (a comparison's ``passed`` is
read, never decided again here).

Three splits: the *real holdout* (``reference``: real rows kept out of the
synthesizer's fit, the headline), the synthetic *test* split (reported only)
and the *validation* rows that chose the challenger. Any field may be missing
on a document written before it was recorded: the functions then return an
empty dict, ``None`` or :data:`MISSING`, never raise.

Standard library only.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MISSING", "calibration_text", "candidate_text", "champion_delta", "champion_text", "comparison_lines",
    "evaluation_gap_text", "evaluation_metrics", "floor_text", "interval_text", "number", "real_guard_text", "signed",
    "version_metrics",
]

#: What a renderer shows for a value that was not recorded.
MISSING = "-"
_MINUS = "\u2212"  # typographic minus: "−0.004" lines up with "+0.029"
_DELTA = "\u0394"
_ARROW = "\u2192"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals (an int as is), or :data:`MISSING` for ``None`` and non-numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}f}" if _is_number(value) else MISSING


def signed(value: Any, digits: int = 3) -> str:
    """``+0.012`` / ``−0.004`` (typographic minus), or :data:`MISSING`."""
    return f"{value:+.{digits}f}".replace("-", _MINUS) if _is_number(value) else MISSING


def _flat(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def version_metrics(doc: dict[str, Any], split: str) -> dict[str, Any]:
    """A registry document's metrics on ``split``, or ``{}`` when not recorded.

    Parameters
    ----------
    doc : dict
        A ``model_metadata`` document.
    split : {"reference", "test", "validation"}
        ``reference`` is the real holdout (recorded for every version; older
        documents have it for version 1 only); ``test`` the synthetic test split
        (documents without ``metrics.test`` keep it flat in ``metrics``).
    """
    metrics = doc.get("metrics") or {}
    found = metrics.get(split)
    if isinstance(found, dict):
        return found
    return _flat(metrics) if split == "test" else {}


def evaluation_metrics(doc: dict[str, Any], split: str) -> dict[str, Any]:
    """A ``performance_metrics`` document's metrics on ``split``, or ``{}`` when not recorded.

    The document's top-level metrics are those of its ``split`` field
    (``"test"`` when absent: documents written before validation rows
    decided); ``reference`` holds the real-holdout metrics; a deciding
    ``validation`` evaluation reports the test split as ``test`` (a
    sub-document) or ``test_f1`` / ``test_roc_auc``.
    """
    if isinstance(doc.get(split), dict):
        return doc[split]
    if doc.get("split", "test") == split:
        return _flat(doc)
    if split == "test":
        return {key[len("test_"):]: value for key, value in doc.items() if key.startswith("test_")}
    return {}


def interval_text(interval: Any, level: Any = None) -> str:
    """``[−0.004, +0.029] 95%`` (``level`` a fraction), or ``""`` when no interval is recorded."""
    if not isinstance(interval, (list, tuple)) or len(interval) != 2 or not all(map(_is_number, interval)):
        return ""
    low, high = interval
    return f"[{signed(low)}, {signed(high)}]" + (f" {level:.0%}" if _is_number(level) else "")


def _verdict(passed: Any) -> str:
    return {True: "ok", False: "failed"}.get(passed, "not recorded")


def _joined(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def floor_text(floor: dict[str, Any] | None) -> str:
    """``F1 0.4612 >= floor 0.4321 (validation): ok``, or :data:`MISSING`."""
    if not floor:
        return MISSING
    relation = ">=" if floor.get("passed") else "<"
    split = f"({floor['split']})" if floor.get("split") else ""
    return (_joined(f"F1 {number(floor.get('value'))} {relation} floor {number(floor.get('threshold'))}", split)
            + f": {_verdict(floor.get('passed'))}")


def champion_text(champion: dict[str, Any] | None) -> str:
    """``ΔF1 +0.012 [−0.004, +0.029] 95% vs v1 (min_improvement 0): ok``, or :data:`MISSING`.

    The interval is the recorded paired-bootstrap confidence interval of the
    F1 difference (challenger minus champion on the same rows); it is left out
    when the comparison predates it.
    """
    if not champion:
        return MISSING
    versus = f"vs v{champion['champion_version']}" if champion.get("champion_version") is not None else ""
    rule = (f"(min_improvement {champion['min_improvement']:g})" if _is_number(champion.get("min_improvement"))
            else "")
    return (_joined(f"{_DELTA}F1 {signed(champion.get('delta'))}",
                    interval_text(champion.get("interval"), champion.get("confidence_level")), versus, rule)
            + f": {_verdict(champion.get('passed'))}")


def real_guard_text(real: dict[str, Any] | None) -> str:
    """``real ΔROC-AUC −0.010 [−0.041, +0.020] 95%, margin 0.03: ok``, or :data:`MISSING`.

    The guard on the real holdout: the challenger may not lose more than
    ``margin`` of the metric (ROC-AUC) against the champion on real rows.
    """
    if not real:
        return MISSING
    metric = {"roc_auc": "ROC-AUC", "f1": "F1"}.get(real.get("metric", "roc_auc"), str(real.get("metric")))
    margin = f", margin {real['margin']:g}" if _is_number(real.get("margin")) else ""
    return (_joined(f"real {_DELTA}{metric} {signed(real.get('delta'))}",
                    interval_text(real.get("interval"), real.get("confidence_level")))
            + f"{margin}: {_verdict(real.get('passed'))}")


def comparison_lines(comparisons: dict[str, Any] | None) -> list[str]:
    """The recorded comparisons of a challenger (registry ``comparisons`` or an evaluation), one line each.

    ``floor``, ``champion`` and ``real`` in that order, those recorded only;
    ``[]`` for a champion or an old document.
    """
    comparisons = comparisons or {}
    render = (("floor", floor_text), ("champion", champion_text), ("real", real_guard_text))
    return [text(comparisons[key]) for key, text in render if comparisons.get(key)]


def champion_delta(champion: dict[str, Any] | None) -> tuple[float, float | None, float | None] | None:
    """``(delta, low, high)`` of a champion comparison (``low``/``high`` ``None`` without an interval), or ``None``."""
    if not champion or not _is_number(champion.get("delta")):
        return None
    interval = champion.get("interval")
    if isinstance(interval, (list, tuple)) and interval_text(interval):
        return float(champion["delta"]), float(interval[0]), float(interval[1])
    return float(champion["delta"]), None, None


def candidate_text(candidate: dict[str, Any]) -> str:
    """One candidate of an alert: ``v3 finetuned: F1 0.4123, ΔF1 [−0.004, +0.029], real ROC-AUC 0.7012``."""
    kind = candidate.get("lineage_kind") or ""
    interval = interval_text(candidate.get("champion_delta_interval")) or MISSING
    return (_joined(f"v{candidate.get('model_version', '?')}", kind) + f": F1 {number(candidate.get('f1'))}, "
            f"{_DELTA}F1 {interval}, real ROC-AUC {number(candidate.get('real_roc_auc'))}")


def calibration_text(calibration: dict[str, Any] | None) -> str:
    """``platt on 1500 rows: Brier 0.2100 → 0.1900, ECE 0.0800 → 0.0300 (test split)``, or :data:`MISSING`."""
    if not calibration:
        return MISSING
    rows = f" on {calibration['n_rows']} rows" if calibration.get("n_rows") is not None else ""
    test = calibration.get("test") or {}
    change = ", ".join(f"{label} {number(test.get(f'{key}_before'))} {_ARROW} {number(test.get(f'{key}_after'))}"
                       for key, label in (("brier", "Brier"), ("ece", "ECE")))
    return f"{calibration.get('method') or 'calibrated'}{rows}: {change} (test split)"


def evaluation_gap_text(batch: dict[str, Any] | None) -> str:
    """A batch's recorded evaluation gap: ``v1: synthetic test 0.8612, real holdout 0.7702, gap +0.091``.

    Parameters
    ----------
    batch : dict or None
        A ``processing_metadata`` document; its ``fidelity.evaluation_gap``
        (:func:`daily_mlops.ml.fidelity.evaluation_gap`: the champion's ROC-AUC
        on the synthetic test split and on the real holdout) is read.

    Returns
    -------
    str
        The line, or :data:`MISSING` when no gap was recorded (the day was not
        evaluated, or its document predates the field).
    """
    gap = ((batch or {}).get("fidelity") or {}).get("evaluation_gap")
    if not isinstance(gap, dict):
        return MISSING
    version = f"v{gap['model_version']}: " if gap.get("model_version") is not None else ""
    return (f"{version}synthetic test {number(gap.get('synthetic_test_roc_auc'))}, real holdout "
            f"{number(gap.get('real_holdout_roc_auc'))}, gap {signed(gap.get('gap'))}")
