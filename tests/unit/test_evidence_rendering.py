"""Real-holdout metrics first, and each comparison's noise, in every view: status, models list/show, report, card.

Documents as the loop records them now (``lineage_kind``,
``metrics.reference`` for every version, ``calibration``, ``comparisons`` with
paired bootstrap intervals, alert ``candidates``) beside documents written
before (none of those fields): the new numbers appear, the old ones show ``-``.
"""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from daily_mlops.cli.output import alerts_table, evaluations_table, registry_table, versions_table
from daily_mlops.loop.model_versions import list_versions, version_rows
from daily_mlops.reporting.evidence import (
    calibration_text,
    candidate_text,
    champion_text,
    comparison_lines,
    evaluation_metrics,
    real_guard_text,
    version_metrics,
)
from daily_mlops.reporting.figures import champion_delta_figure, versions_figure
from daily_mlops.reporting.model_card import model_card_markdown
from daily_mlops.reporting.page import build_report_html

MINUS = "\u2212"
DAY = "2026-11-02"


def _m(f1: float, roc_auc: float, *, brier: float = 0.2, ece: float = 0.05, n: int = 1500) -> dict:
    return {"f1": f1, "roc_auc": roc_auc, "precision": 0.4, "recall": 0.6, "accuracy": 0.7, "brier": brier,
            "ece": ece, "n_samples": n}


FLOOR = {"value": 0.4700, "threshold": 0.40, "passed": True, "split": "validation"}
CHAMPION = {"champion_version": 1, "champion_f1": 0.458, "f1": 0.470, "delta": 0.012, "interval": [-0.004, 0.029],
            "confidence_level": 0.95, "method": "paired bootstrap (scipy.stats.bootstrap, BCa)", "n_resamples": 1000,
            "n_rows": 1500, "metric": "f1", "min_improvement": 0.0, "passed": True, "split": "validation"}
REAL = {"metric": "roc_auc", "champion_version": 1, "champion": 0.7445, "challenger": 0.7345, "delta": -0.010,
        "interval": [-0.041, 0.020], "confidence_level": 0.95, "method": "paired bootstrap", "n_resamples": 1000,
        "n_rows": 300, "margin": 0.03, "passed": False, "split": "real holdout"}
NEW = {
    "model_name": "tabtransformer", "model_version": 3, "status": "rejected", "parent_version": 1,
    "lineage_kind": "finetuned", "logical_date": DAY, "run_key": f"retrain:{DAY}:attempt-1",
    "created_at": dt.datetime(2026, 11, 2, 3, 4), "trained_on": ["batch-bootstrap", f"batch-{DAY}"],
    "metrics": {**_m(0.4511, 0.6123), "test": _m(0.4511, 0.6123), "validation": _m(0.4700, 0.6234),
                "reference": _m(0.5512, 0.7345, n=300)},
    "calibration": {"method": "platt", "coef": 1.1, "intercept": -0.2, "n_rows": 1500,
                    "test": {"brier_before": 0.2311, "brier_after": 0.2105, "ece_before": 0.0812, "ece_after": 0.0297}},
    "comparisons": {"floor": FLOOR, "champion": CHAMPION, "real": REAL, "passed": False, "logical_date": DAY},
}
OLD = {"model_name": "tabtransformer", "model_version": 2, "status": "approved", "parent_version": 1,
       "logical_date": "2026-11-01", "run_key": "retrain:2026-11-01:attempt-1",
       "metrics": {"f1": 0.4187, "roc_auc": 0.6021}}
NEW_EVALUATION = {"logical_date": DAY, "model_name": "tabtransformer", "model_version": 3, "attempt": 1,
                  "f1": 0.4700, "roc_auc": 0.6234, "split": "validation", "test_f1": 0.4511, "test_roc_auc": 0.6123,
                  "reference": _m(0.5512, 0.7345, n=300), "f1_threshold": 0.40, "passed": False,
                  "floor": FLOOR, "champion": CHAMPION, "real": REAL}
OLD_EVALUATION = {"logical_date": "2026-11-01", "model_name": "tabtransformer", "model_version": 1, "attempt": 0,
                  "f1": 0.4321, "roc_auc": 0.6012, "split": "test", "f1_threshold": 0.40, "passed": True}
ALERT = {"logical_date": "2026-11-03", "alert_type": "MODEL_PERFORMANCE_FAILURE", "severity": "CRITICAL",
         "f1_score": 0.3912, "retrain_attempts": 2, "retry_attempts": 2, "message": "below the floor",
         "candidates": [{"model_version": 4, "lineage_kind": "recalibrated", "f1": 0.3912,
                         "champion_delta_interval": [-0.031, 0.008], "real_roc_auc": 0.7123},
                        {"model_version": 5, "lineage_kind": "finetuned", "f1": 0.3701,
                         "champion_delta_interval": None, "real_roc_auc": None}]}
OLD_ALERT = {"logical_date": "2026-10-30", "alert_type": "MODEL_PERFORMANCE_FAILURE", "severity": "CRITICAL",
             "f1_score": 0.3011, "retrain_attempts": 3, "message": "old alert"}


def _text(renderable, width: int = 400) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _row(text: str, start: str) -> str:
    """The first table line whose first cell is ``start``."""
    return next(line for line in text.splitlines() if line.startswith(f"│ {start} "))


def test_comparisons_read_as_delta_interval_level_and_verdict():
    """ΔF1 with its interval and level, the real guard with its margin and verdict, signs as typographic minus."""
    assert champion_text(CHAMPION) == f"\u0394F1 +0.012 [{MINUS}0.004, +0.029] 95% vs v1 (min_improvement 0): ok"
    assert real_guard_text(REAL) == f"real \u0394ROC-AUC {MINUS}0.010 [{MINUS}0.041, +0.020] 95%, margin 0.03: failed"
    assert comparison_lines(NEW["comparisons"])[0] == "F1 0.4700 >= floor 0.4000 (validation): ok"
    old_champion = {k: v for k, v in CHAMPION.items() if k not in ("interval", "confidence_level")}
    assert champion_text(old_champion) == "\u0394F1 +0.012 vs v1 (min_improvement 0): ok"  # recorded before intervals
    assert champion_text(None) == real_guard_text({}) == calibration_text(None) == "-"
    assert comparison_lines(None) == [] and comparison_lines({"passed": True}) == []


def test_candidates_and_calibration_read_with_missing_values_as_dash():
    """An alert candidate without an interval or a real ROC-AUC shows '-'; calibration shows before → after."""
    first, second = ALERT["candidates"]
    assert candidate_text(first) == (f"v4 recalibrated: F1 0.3912, \u0394F1 [{MINUS}0.031, +0.008], "
                                     "real ROC-AUC 0.7123")
    assert candidate_text(second) == "v5 finetuned: F1 0.3701, \u0394F1 -, real ROC-AUC -"
    assert calibration_text(NEW["calibration"]) == ("platt on 1500 rows: Brier 0.2311 \u2192 0.2105, "
                                                    "ECE 0.0812 \u2192 0.0297 (test split)")


def test_metrics_by_split_for_new_and_old_documents():
    """Registry: metrics.reference / .test, else the flat test metrics. Evaluation: reference, test_* or flat."""
    assert version_metrics(NEW, "reference")["f1"] == 0.5512 and version_metrics(NEW, "test")["f1"] == 0.4511
    assert version_metrics(OLD, "reference") == {} and version_metrics(OLD, "test")["roc_auc"] == 0.6021
    assert evaluation_metrics(NEW_EVALUATION, "test") == {"f1": 0.4511, "roc_auc": 0.6123}
    assert evaluation_metrics(NEW_EVALUATION, "validation")["f1"] == 0.4700
    assert evaluation_metrics(OLD_EVALUATION, "test")["f1"] == 0.4321
    assert evaluation_metrics(OLD_EVALUATION, "reference") == {}


def test_status_versions_table_puts_the_real_holdout_first_and_shows_the_comparisons():
    """A new version: real 0.5512 / 0.7345 before test 0.4511 / 0.6123, then its three comparisons; an old one: '-'."""
    text = _text(versions_table([OLD, NEW], title="model versions"))
    new = _row(text, "3")
    assert new.index("0.5512 / 0.7345") < new.index("0.4511 / 0.6123") and "finetuned" in new
    assert f"\u0394F1 +0.012 [{MINUS}0.004, +0.029] 95%" in text
    assert f"real \u0394ROC-AUC {MINUS}0.010 [{MINUS}0.041, +0.020] 95%, margin 0.03: failed" in text
    old = _row(text, "2")
    assert "- / -" in old and old.index("- / -") < old.index("0.4187 / 0.6021")


def test_status_evaluations_and_alerts_show_real_test_deciding_and_candidates():
    """An evaluation: real, test, the deciding F1 with its split and the comparisons; an alert: its candidates."""
    text = _text(evaluations_table([NEW_EVALUATION, OLD_EVALUATION]))
    new = _row(text, DAY)
    assert new.index("0.5512 / 0.7345") < new.index("0.4511 / 0.6123") < new.index("0.4700 / 0.4000")
    assert "(validation)" in new and f"\u0394F1 +0.012 [{MINUS}0.004, +0.029] 95% vs v1" in new
    assert "F1 0.4700 >= floor" not in text  # the floor is its own column here
    old = _row(text, "2026-11-01")
    assert "- / -" in old and "0.4321 / 0.6012" in old and "0.4321 / 0.4000 (test)" in old
    alerts = _text(alerts_table([ALERT, OLD_ALERT]))
    assert f"v4 recalibrated: F1 0.3912, \u0394F1 [{MINUS}0.031, +0.008], real ROC-AUC 0.7123" in alerts
    assert "v5 finetuned: F1 0.3701, \u0394F1 -, real ROC-AUC -" in alerts
    assert "old alert" in _row(alerts, "2026-10-30")


class _Registry:
    """The two registry reads ``list_versions`` makes."""

    def model_names(self) -> list[str]:
        return ["tabtransformer"]

    def list(self, name: str) -> list[dict]:
        return [OLD, NEW]


def test_models_list_rows_carry_real_holdout_and_test_metrics():
    """list_versions: real_f1/real_roc_auc (None on an old document) beside the test split's f1/roc_auc; the
    table puts them first and keeps a version on one line at 140 columns."""
    old, new = list_versions(_Registry())
    assert (new["lineage_kind"], new["real_f1"], new["real_roc_auc"], new["f1"], new["roc_auc"]) == (
        "finetuned", 0.5512, 0.7345, 0.4511, 0.6123)
    assert (old["lineage_kind"], old["real_f1"], old["real_roc_auc"], old["f1"]) == (None, None, None, 0.4187)
    text = _text(registry_table([old, new]), width=140)  # the CLI's width when piped
    new_line = next(line for line in text.splitlines() if "tabtransformer │ 3 " in line)
    assert new_line.index("0.5512 / 0.7345") < new_line.index("0.4511 / 0.6123") and "finetuned" in new_line
    assert "- / -" in next(line for line in text.splitlines() if "tabtransformer │ 2 " in line)


def test_models_show_adds_kind_calibration_and_comparisons():
    """version_rows: real holdout before validation and test; calibration before → after; the three comparisons."""
    rows = version_rows(NEW)
    fields = [field for field, _ in rows]
    values = dict(rows)
    assert fields.index("F1 / ROC-AUC (real holdout)") < fields.index("F1 / ROC-AUC (test)")
    assert values["lineage kind"] == "finetuned" and values["F1 / ROC-AUC (real holdout)"] == "0.5512 / 0.7345"
    assert values["F1 / ROC-AUC (validation)"] == "0.4700 / 0.6234"
    assert values["calibration"].startswith("platt on 1500 rows: Brier 0.2311 \u2192 0.2105")
    assert values[f"vs champion ({DAY})"] == champion_text(CHAMPION)
    assert values[f"real holdout guard ({DAY})"].endswith("margin 0.03: failed")
    old = dict(version_rows(OLD))
    assert old["lineage kind"] == old["calibration"] == "-" and old["F1 / ROC-AUC (real holdout)"] == "- / -"
    assert old["F1 / ROC-AUC (test)"] == "0.4187 / 0.6021" and "vs champion" not in " ".join(old)


def test_report_headline_table_and_day_comparisons():
    """The report: the versions table (real before test, calibration), the day's ΔF1 interval, both new figures."""
    data = {"days": ["2026-11-01", DAY], "evaluations": [OLD_EVALUATION, NEW_EVALUATION],
            "passed": [{"logical_date": "2026-11-01", "approved_version": 1}], "alerts": [], "deployments": [],
            "processing": [], "versions": [OLD, NEW], "current": NEW}
    page = build_report_html(data, card_markdown=None, generated_at=dt.datetime(2026, 12, 1), source="test")
    table = page[page.index('<table id="versions-table">'):]
    table = table[:table.index("</table>")]
    assert ('<td class="num">0.5512</td><td class="num">0.7345</td><td class="num">0.4511</td>'
            '<td class="num">0.6123</td>') in table
    assert "Brier 0.2311 \u2192 0.2105" in table
    assert '<td class="num">-</td><td class="num">-</td><td class="num">0.4187</td>' in table  # the old version
    assert f"v3: \u0394F1 +0.012 [{MINUS}0.004, +0.029] 95% vs v1" in page
    assert "real holdout F1 <b>0.5512</b>" in page
    assert 'id="fig-versions"' in page and 'id="fig-champion-delta"' in page


def test_versions_figure_and_champion_delta_error_bars():
    """Real holdout and test per version (a gap where not recorded); ΔF1 error bars from the recorded interval."""
    fig = versions_figure([OLD, NEW])
    real_f1 = next(t for t in fig.data if t.name.startswith("real holdout") and t.yaxis == "y")
    assert list(real_f1.x) == ["v2", "v3"] and list(real_f1.y) == [None, 0.5512]
    test_auc = next(t for t in fig.data if t.name.startswith("synthetic test") and t.yaxis == "y2")
    assert list(test_auc.y) == [0.6021, 0.6123]
    no_interval = {**NEW_EVALUATION, "model_version": 4, "attempt": 2,
                   "champion": {"champion_version": 1, "delta": -0.02, "passed": False}}
    delta = champion_delta_figure([OLD_EVALUATION, NEW_EVALUATION, no_interval], ["2026-11-01", DAY])
    first, second = delta.data
    assert list(first.y) == [0.012] and list(first.x) == [1.0]
    assert round(first.error_y.array[0], 6) == 0.017 and round(first.error_y.arrayminus[0], 6) == 0.016
    assert list(second.y) == [-0.02] and list(second.error_y.array) == [None]
    assert not delta.layout.annotations or "no champion" not in delta.layout.annotations[0].text


def test_model_card_leads_with_the_real_holdout_and_records_calibration_and_comparisons():
    """The card: real holdout column first, Brier/ECE before → after, the comparisons; an old version says so."""
    card = model_card_markdown({"model": NEW, "evaluations": [NEW_EVALUATION]}, reference={},
                               generated_at=dt.datetime(2026, 12, 1))
    assert "| metric | real holdout rows | validation rows | synthetic test split |" in card
    assert "| F1 (positive label) | 0.5512 | 0.4700 | 0.4511 |" in card
    assert "| Brier score | 0.2311 | 0.2105 |" in card
    assert "| ECE (expected calibration error) | 0.0812 | 0.0297 |" in card
    assert f"* \u0394F1 +0.012 [{MINUS}0.004, +0.029] 95% vs v1 (min_improvement 0): ok" in card
    assert "1,000 resamples of 1,500 paired rows" in card and "* overall: failed" in card
    evaluation = (f"| {DAY} | 1 | 0.4700 | 0.6234 | validation | 0.5512 | 0.7345 | 0.40 | no | "
                  f"+0.012 [{MINUS}0.004, +0.029] |")
    assert evaluation in card
    old = model_card_markdown({"model": OLD, "evaluations": [OLD_EVALUATION]}, reference={},
                              generated_at=dt.datetime(2026, 12, 1))
    assert "| metric | synthetic test split |" in old and "| F1 (positive label) | 0.4187 |" in old
    assert "Calibration: not recorded for this version." in old and "Comparisons that judged" not in old
    assert "| 2026-11-01 | 0 | 0.4321 | 0.6012 | test | - | - | 0.40 | yes | - |" in old
    # the measured training choices (pretraining ablation) are in every card
    assert "| seed | with pretraining | without | Δ with − without |" in card
    assert "| mean | 0.7607 | 0.7603 | +0.0004 |" in card and "off by default" in old
    # version 1 against plain baselines, and what it loses to, in every card
    assert "| German credit (bundled) | 0.764 | 0.775 | 0.776 | 0.774 | 0.736 | 0.870 |" in card
    assert "Version 1 loses to a LogisticRegression trained on the same synthetic rows" in old
