"""The report page read back as a browser gets it: the HTML parsed with html.parser, each figure's plotly JSON decoded.

The documents follow the demo's story in the shape the loop records them:
the champion passes, a shifted day approves a challenger (with its paired
ΔF1 interval), then the data-quality gate stops a broken batch.
"""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser

from daily_mlops.reporting.page import FIGURE_IDS, build_report_html

DAYS = ["2026-11-01", "2026-11-02", "2026-11-04"]
FLOORS = {"min_diagnostic": 0.9, "max_unseen_share": 0.05, "max_null_increase": 0.1}
RELIABILITY = {"mean_predicted": [0.05, 0.15, None, 0.62, 0.91], "observed_rate": [0.04, 0.2, None, 0.55, 0.88],
               "count": [400, 300, 0, 200, 100]}


def _metrics(f1: float, roc_auc: float, n: int) -> dict:
    return {"f1": f1, "roc_auc": roc_auc, "brier": 0.12, "ece": 0.03, "n_samples": n,
            "confusion_matrix": [[600, 100], [90, 210]], "reliability": RELIABILITY}


def _batch(day: str, status: str, drift: dict[str, float], rate: float) -> dict:
    failed = status == "failed"
    worst = ([{"column": "status_of_existing_checking_account", "check": "unseen_share", "value": 0.7931,
               "floor": 0.05, "failed": True},
              {"column": "duration_in_month", "check": "null_increase", "value": 0.7931, "floor": 0.1, "failed": True}]
             if failed else [{"column": "housing", "check": "unseen_share", "value": 0.0, "floor": 0.05,
                              "failed": False}])
    return {"logical_date": day, "status": "quality_failed" if failed else "ready",
            "processed": {"columns": {"x_num": ["duration_in_month", "credit_amount"],
                                      "x_cat": ["status_of_existing_checking_account"]}},
            "quality": {"status": status, "floors": FLOORS, "failures": 2 if failed else 0, "worst": worst,
                        "message": "2 check(s) past the floor" if failed else "all 41 checks within their floors",
                        "min_validity": 0.21 if failed else 1.0, "max_unseen_share": 0.79 if failed else 0.0,
                        "max_null_increase": 0.79 if failed else 0.0},
            "drift": {"columns": drift, "worst": [{"column": c, "score": v, "metric": "KSComplement"}
                                                  for c, v in sorted(drift.items(), key=lambda kv: kv[1])],
                      "positive_rate": rate, "reference_positive_rate": 0.3}}


def _evaluation(day: str, version: int, attempt: int, f1: float, **extra) -> dict:
    return {"logical_date": day, "model_name": "tabtransformer", "model_version": version, "attempt": attempt,
            "f1": f1, "roc_auc": 0.8, "f1_threshold": 0.64, "split": "validation", **extra}


CURRENT = {"model_name": "tabtransformer", "model_version": 2, "status": "deployed", "lineage": [1],
           "logical_date": "2026-11-02", "lineage_kind": "finetuned",
           "signature": {"target": {"labels": ["good", "bad"]}},
           "metrics": {"test": _metrics(0.69, 0.88, 1000), "reference": _metrics(0.58, 0.77, 300)}}
DATA = {
    "days": DAYS,
    "evaluations": [
        _evaluation("2026-11-01", 1, 0, 0.69),
        _evaluation("2026-11-02", 1, 0, 0.62),
        _evaluation("2026-11-02", 2, 1, 0.67, champion={"champion_version": 1, "delta": 0.05,
                                                        "interval": [0.011, 0.064], "confidence_level": 0.95,
                                                        "passed": True}),
    ],
    "passed": [{"logical_date": "2026-11-01", "approved_version": 1},
               {"logical_date": "2026-11-02", "approved_version": 2}],
    "alerts": [],
    "deployments": [{"logical_date": "2026-11-01", "model_version": 1, "status": "deployed"},
                    {"logical_date": "2026-11-02", "model_version": 2, "status": "deployed"}],
    "processing": [
        _batch("2026-11-01", "passed", {"duration_in_month": 0.89, "credit_amount": 0.94,
                                        "status_of_existing_checking_account": 0.99}, 0.302),
        _batch("2026-11-02", "passed", {"duration_in_month": 0.24, "credit_amount": 0.16,
                                        "status_of_existing_checking_account": 0.98}, 0.295),
        _batch("2026-11-04", "failed", {"duration_in_month": 0.91, "credit_amount": 0.94,
                                        "status_of_existing_checking_account": 0.21}, 0.301),
    ],
    "versions": [{"model_name": "tabtransformer", "model_version": 1, "status": "retired", "run_key": "bootstrap",
                  "lineage_kind": "bootstrap",
                  "metrics": {"test": _metrics(0.70, 0.88, 1000), "reference": _metrics(0.54, 0.78, 300)}},
                 CURRENT],
    "current": CURRENT,
}


class _Page(HTMLParser):
    """Plot divs, the inline scripts and the cells of the days table."""

    def __init__(self) -> None:
        super().__init__()
        self.divs: list[str] = []
        self.scripts: list[str] = []
        self.rows: list[list[str]] = []
        self._script = self._days = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.divs.append(a["id"])
        self._script = tag == "script"
        if tag == "table":
            self._days = a.get("id") == "days"
        if self._days and tag == "tr":
            self.rows.append([])
        if self._days and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("\n".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._days = False

    def handle_data(self, data):
        if self._script:
            self.scripts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _figures(page: _Page) -> dict[str, dict]:
    """``{div id: {"data": [...], "layout": {...}}}`` from each ``Plotly.newPlot(id, data, layout, config)`` call."""
    decoder = json.JSONDecoder()
    found = {}
    for script in page.scripts:
        start = script.find("Plotly.newPlot(")
        if start < 0 or "plotly-graph-div" in script[:start]:
            continue
        rest = script[start + len("Plotly.newPlot("):]
        values = []
        for _ in range(3):  # the div id, the traces, the layout
            rest = rest.lstrip().lstrip(",").lstrip()
            value, end = decoder.raw_decode(rest)
            values.append(value)
            rest = rest[end:]
        found[values[0]] = {"data": values[1], "layout": values[2]}
    return found


def _build() -> tuple[_Page, dict[str, dict]]:
    html = build_report_html(DATA, card_markdown="# card", generated_at=dt.datetime(2026, 12, 7), source="test")
    page = _Page()
    page.feed(html)
    return page, _figures(page)


def test_report_page_has_every_figure_a_person_asks_for():
    """Parsed back: gate strip, drift heatmap, interval bars, real-holdout series, calibration curve, matrices."""
    page, figures = _build()
    assert page.divs == list(FIGURE_IDS) and set(figures) == set(FIGURE_IDS)

    strip = {t["name"]: t["x"] for t in figures["fig-gate"]["data"] if t.get("y") and t["y"][0] == "gate"}
    assert strip == {"gate passed": ["2026-11-01", "2026-11-02"], "gate FAILED: day stopped": ["2026-11-04"]}

    heatmap = next(t for t in figures["fig-drift"]["data"] if t["type"] == "heatmap")
    assert heatmap["y"][:2] == ["credit_amount (KS)", "status_of_existing_checking_account (TV)"]  # worst first
    assert heatmap["x"] == DAYS and heatmap["z"][0] == [0.94, 0.16, 0.94]

    challenger = next(t for t in figures["fig-performance"]["data"]
                      if t["name"] == "challenger, retraining attempt 1" and "error_y" in t)
    low, high = 0.67 - challenger["error_y"]["arrayminus"][0], 0.67 + challenger["error_y"]["array"][0]
    assert (round(low, 3), round(high, 3)) == (0.631, 0.684)  # champion F1 0.62 + the recorded ΔF1 interval

    real = next(t for t in figures["fig-versions"]["data"] if t["name"].startswith("real holdout"))
    assert real["x"] == ["v1", "v2"] and real["y"] == [0.54, 0.58]

    curves = [t for t in figures["fig-calibration"]["data"] if t["name"].startswith("calibration curve")]
    assert [c["name"].split(", ")[1].split(" (")[0] for c in curves] == ["synthetic test split", "real holdout"]
    assert curves[0]["x"] == [0.05, 0.15, 0.62, 0.91] and curves[0]["customdata"] == [400, 300, 200, 100]
    matrices = [t for t in figures["fig-calibration"]["data"] if t["type"] == "heatmap"]
    assert [m["z"] for m in matrices] == [[[600, 100], [90, 210]]] * 2

    rates = figures["fig-positive-rate"]["data"][0]
    assert rates["y"] == [0.302, 0.295, 0.301]
    assert [s["y0"] for s in figures["fig-positive-rate"]["layout"]["shapes"]] == [0.3]


def test_report_page_draws_no_configuration_floor_as_a_series():
    """Floors (the gate's and the F1 floor) are layout lines; no trace is named after one or sits flat on one."""
    _, figures = _build()
    floors = {*FLOORS.values(), 0.64}
    for div_id, figure in figures.items():
        for trace in figure["data"]:
            assert "floor" not in (trace.get("name") or "").lower(), (div_id, trace.get("name"))
            ys = [y for y in trace.get("y") or [] if isinstance(y, float)]
            assert not (len(ys) > 1 and set(ys) <= floors), (div_id, trace.get("name"))
    gate_lines = sorted(s["y0"] for s in figures["fig-gate"]["layout"]["shapes"])
    assert gate_lines == sorted(FLOORS.values())
    assert [s["y0"] for s in figures["fig-performance"]["layout"]["shapes"]] == [0.64, 0.64]


def test_days_table_says_the_gate_stopped_the_broken_day():
    """The gate day reads 'stopped by the data-quality gate' with its worst columns, never 'batch only'."""
    page, _ = _build()
    by_day = {row[0]: row for row in page.rows if row}  # the header row has no td
    gate, outcome = by_day["2026-11-04"][1], by_day["2026-11-04"][7]
    assert gate.startswith("FAILED") and "status_of_existing_checking_account: unseen-category share 0.793" in gate
    assert outcome.startswith("stopped by the data-quality gate (worst columns: "
                              "status_of_existing_checking_account, duration_in_month)")
    assert by_day["2026-11-04"][5] == "-"  # no retraining attempt: not "0"
    assert by_day["2026-11-01"][1].startswith("passed")
    assert not any("batch only" in cell for row in page.rows for cell in row)


def test_days_table_shows_the_champions_evaluation_gap_and_a_dash_for_old_batches():
    """The day table's last column: the champion's ROC-AUC on the synthetic test split, on the real holdout and
    their gap (processing_metadata.fidelity.evaluation_gap); '-' on a batch recorded before the field."""
    gap = {"model_version": 1, "synthetic_test_roc_auc": 0.8612, "real_holdout_roc_auc": 0.7702, "gap": 0.091,
           "reason": None}
    processing = [{**DATA["processing"][0], "fidelity": {"tstr_roc_auc": 0.7, "evaluation_gap": gap}},
                  *DATA["processing"][1:]]
    html = build_report_html({**DATA, "processing": processing}, card_markdown=None,
                             generated_at=dt.datetime(2026, 12, 7), source="test")
    page = _Page()
    page.feed(html)
    by_day = {row[0]: row for row in page.rows if row}
    assert by_day["2026-11-01"][10] == "v1: synthetic test 0.8612, real holdout 0.7702, gap +0.091"
    assert by_day["2026-11-02"][10] == "-" and by_day["2026-11-04"][10] == "-"
    assert "champion ROC-AUC: evaluation gap" in html and "<dt>evaluation gap</dt>" in html
