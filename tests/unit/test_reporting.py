"""Pure parts of the report: day rows, deployment intervals, the gate's verdict, figures, Markdown rendering."""

from __future__ import annotations

import datetime as dt

from daily_mlops.reporting.figures import drift_figure, gate_figure, performance_figure
from daily_mlops.reporting.model_card import markdown_to_html
from daily_mlops.reporting.summary import day_rows, deployed_on, deployment_intervals, gate_check_text

AT = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def _entry(status: str, day: str | None, minutes: int) -> dict:
    return {"status": status, "logical_date": day, "at": AT + dt.timedelta(minutes=minutes), "reason": "test"}


def test_deployment_intervals_follow_the_status_history_through_a_rollback():
    """v1 deployed, replaced by v2, then reinstated: three intervals, and the version in place on each day."""
    versions = [
        {"model_version": 1, "status_history": [_entry("approved", None, 0), _entry("deployed", "2026-11-01", 1),
                                                _entry("retired", "2026-11-03", 5), _entry("approved", "2026-11-05", 8),
                                                _entry("deployed", "2026-11-05", 9)]},
        {"model_version": 2, "status_history": [
            _entry("candidate", "2026-11-03", 4), _entry("approved", "2026-11-03", 4),
            _entry("deployed", "2026-11-03", 5), _entry("retired", "2026-11-05", 9),
        ]},
    ]
    intervals = deployment_intervals(versions, [])
    assert intervals == [{"model_version": 1, "start": "2026-11-01", "end": "2026-11-03"},
                         {"model_version": 2, "start": "2026-11-03", "end": "2026-11-05"},
                         {"model_version": 1, "start": "2026-11-05", "end": None}]
    assert [deployed_on(intervals, f"2026-11-0{d}") for d in range(1, 7)] == [1, 1, 2, 2, 1, 1]
    assert deployed_on(intervals, "2026-10-31") is None


def test_deployment_intervals_fall_back_to_deployment_events():
    """Without a registry history, each `deployed` event lasts until the next one."""
    events = [{"model_version": 1, "status": "deployed", "logical_date": "2026-11-01"},
              {"model_version": 1, "status": "already_deployed", "logical_date": "2026-11-02"},
              {"model_version": 3, "status": "deployed", "logical_date": "2026-11-04"}]
    assert deployment_intervals([], events) == [{"model_version": 1, "start": "2026-11-01", "end": "2026-11-04"},
                                                {"model_version": 3, "start": "2026-11-04", "end": None}]


def test_day_rows_name_each_outcome():
    """Champion passed and already deployed; approved but not deployed; unfinished run; batch only."""
    def ev(day, version, attempt, f1):
        return {"logical_date": day, "model_version": version, "attempt": attempt, "f1": f1, "f1_threshold": 0.4}

    data = {
        "days": ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"],
        "evaluations": [ev("2026-11-01", 1, 0, 0.5), ev("2026-11-02", 1, 0, 0.3), ev("2026-11-02", 2, 1, 0.45),
                        ev("2026-11-03", 1, 0, 0.2)],
        "passed": [{"logical_date": "2026-11-01", "approved_version": 1},
                   {"logical_date": "2026-11-02", "approved_version": 2}],
        "alerts": [],
        "deployments": [{"logical_date": "2026-11-01", "model_version": 1, "status": "already_deployed"}],
        "versions": [],
    }
    rows = day_rows(data)
    assert [r["outcome"] for r in rows] == [
        "champion passed; v1 already deployed",
        "challenger v2 approved; not deployed yet",
        "no decision recorded (the evaluation run did not finish)",
        "no evaluation recorded (batch only)",
    ]
    assert rows[1]["attempts"] == 1 and rows[1]["challengers"] == [2] and rows[1]["best_f1"] == 0.45
    assert rows[3]["champion_version"] is None and rows[3]["f1_threshold"] is None


FLOORS = {"min_diagnostic": 0.9, "max_unseen_share": 0.05, "max_null_increase": 0.1}


def _batch(day: str, status: str | None, **figures) -> dict:
    worst = [{"column": "purpose", "check": "unseen_share", "value": 0.79, "floor": 0.05, "failed": True},
             {"column": "age_in_years", "check": "null_increase", "value": 0.31, "floor": 0.1, "failed": True}]
    quality = {"status": status, "floors": FLOORS, "failures": 3 if status == "failed" else 0,
               "worst": worst if status == "failed" else [], "message": f"gate {status}", **figures}
    return {"logical_date": day, "quality": quality if status else {},
            "drift": {"columns": {"age_in_years": 0.9, "purpose": 0.4 if status == "failed" else 0.95},
                      "worst": [{"column": "age_in_years", "score": 0.9, "metric": "KSComplement"}]}}


def test_day_rows_read_the_gate_verdict_and_a_stopped_day():
    """A failed verdict without evaluation reads 'stopped by the data-quality gate' with its worst columns."""
    data = {"days": ["2026-11-01", "2026-11-04", "2026-11-05"], "evaluations": [], "passed": [], "alerts": [],
            "deployments": [], "versions": [],
            "processing": [_batch("2026-11-01", "passed"), _batch("2026-11-04", "failed"), _batch("2026-11-05", None)]}
    passed, stopped, unknown = day_rows(data)
    assert passed["gate"] == "passed" and passed["gate_detail"] == ["passed", "lowest drift: age_in_years 0.90 (KS)"]
    assert stopped["stopped_by_gate"] and stopped["gate_columns"] == ["purpose", "age_in_years"]
    assert stopped["outcome"].startswith("stopped by the data-quality gate (worst columns: purpose, age_in_years)")
    assert stopped["gate_detail"] == ["FAILED", "purpose: unseen-category share 0.790 > floor 0.05",
                                      "age_in_years: null-share increase 0.310 > floor 0.1",
                                      "(+1 more check(s) past the floor)"]
    assert unknown["gate"] is None and unknown["outcome"] == "no evaluation recorded (batch only)"
    assert gate_check_text({"column": "job", "check": "diagnostic_validity", "value": 0.95, "floor": 0.9,
                            "failed": False}) == "job: SDMetrics data validity 0.950 >= floor 0.9"


def test_gate_figure_draws_verdicts_and_floors_as_reference_lines_only():
    """One strip trace per verdict; the gate's figures as series; each floor a dashed line, never a trace."""
    batches = [_batch("2026-11-01", "passed", min_validity=1.0, max_unseen_share=0.0, max_null_increase=0.0),
               _batch("2026-11-02", "failed", min_validity=0.2, max_unseen_share=0.79, max_null_increase=0.31)]
    assert gate_figure([_batch("2026-11-01", None)], ["2026-11-01"]) is None
    fig = gate_figure(batches, ["2026-11-01", "2026-11-02"])
    strip = {t.name: list(t.x) for t in fig.data if t.y and t.y[0] == "gate"}
    assert strip == {"gate passed": ["2026-11-01"], "gate FAILED: day stopped": ["2026-11-02"]}
    assert not any("floor" in (t.name or "").lower() for t in fig.data)
    assert sorted(round(shape.y0, 3) for shape in fig.layout.shapes) == [0.05, 0.1, 0.9]
    assert [t.y[1] for t in fig.data if t.name.startswith("largest")] == [0.79, 0.31]


def test_drift_figure_puts_the_worst_columns_first():
    """The heatmap's rows are columns ordered by their lowest score; numeric columns marked KS."""
    batches = [_batch("2026-11-01", "passed"), _batch("2026-11-02", "failed")]
    batches[0]["processed"] = {"columns": {"x_num": ["age_in_years"], "x_cat": ["purpose"]}}
    fig = drift_figure(batches, ["2026-11-01", "2026-11-02"])
    heatmap = fig.data[0]
    assert heatmap.type == "heatmap" and list(heatmap.y) == ["purpose (TV)", "age_in_years (KS)"]
    assert [list(row) for row in heatmap.z] == [[0.95, 0.4], [0.9, 0.9]]
    assert drift_figure([{"logical_date": "2026-11-01"}], ["2026-11-01"]) is None


def test_performance_figure_draws_champion_challengers_and_labelled_floor():
    """One F1 and one ROC-AUC trace per candidate kind; the floor a labelled line (not a trace); ΔF1 error bars."""
    evals = [{"logical_date": "2026-11-01", "model_version": 1, "attempt": 0, "f1": 0.4, "roc_auc": 0.6,
              "f1_threshold": 0.75},
             {"logical_date": "2026-11-01", "model_version": 2, "attempt": 1, "f1": 0.5, "roc_auc": 0.62,
              "f1_threshold": 0.75, "champion": {"delta": 0.1, "interval": [0.04, 0.13]}}]
    fig = performance_figure(evals, ["2026-11-01", "2026-11-02"], stopped=["2026-11-02"])
    names = [t.name for t in fig.data]
    assert names.count("champion (model in service, attempt 0)") == 2
    assert names.count("challenger, retraining attempt 1") == 2
    assert not any("floor" in name for name in names)
    assert [(s.y0, s.y1, s.line.dash) for s in fig.layout.shapes] == [(0.75, 0.75, "dash")]
    texts = [a.text for a in fig.layout.annotations]
    assert "floor 0.75" in texts and any("stopped by the<br>data-quality gate" in t for t in texts)
    assert fig.data[2].x[0] > fig.data[0].x[0]  # the challenger sits right of its champion
    bar = fig.data[2].error_y  # F1 0.5, ΔF1 0.1 in [0.04, 0.13]: from 0.44 to 0.53
    assert round(bar.array[0], 6) == 0.03 and round(bar.arrayminus[0], 6) == 0.06
    assert fig.data[3].error_y.array is None  # no bar on ROC-AUC


def test_markdown_to_html_renders_tables_and_escapes_raw_html():
    """Pipe tables become <table>; HTML in a value (e.g. a hostile column name) is escaped, not executed."""
    out = markdown_to_html("| a | b |\n|---|---|\n| 1 | <script>x</script> |\n")
    assert "<table>" in out and "<td>1</td>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
