"""Pure parts of the report: day rows, deployment intervals, numeric flattening, figures, Markdown rendering."""

from __future__ import annotations

import datetime as dt
import math

from daily_mlops.reporting.figures import MAX_SERIES, data_quality_figure, performance_figure
from daily_mlops.reporting.model_card import markdown_to_html
from daily_mlops.reporting.summary import day_rows, deployed_on, deployment_intervals, flatten_numbers

AT = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)


def _entry(status: str, day: str | None, minutes: int) -> dict:
    return {"status": status, "logical_date": day, "at": AT + dt.timedelta(minutes=minutes), "reason": "test"}


def test_deployment_intervals_follow_the_status_history_through_a_rollback():
    """v1 deployed, replaced by v2, then reinstated: three intervals, and the version in place on each day."""
    versions = [
        {"model_version": 1, "status_history": [_entry("approved", None, 0), _entry("deployed", "2026-11-01", 1),
                                                _entry("retired", "2026-11-03", 5), _entry("approved", "2026-11-05", 8),
                                                _entry("deployed", "2026-11-05", 9)]},
        {"model_version": 2, "status_history": [_entry("candidate", "2026-11-03", 4), _entry("approved", "2026-11-03", 4),
                                                _entry("deployed", "2026-11-03", 5), _entry("retired", "2026-11-05", 9)]},
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


def test_flatten_numbers_keeps_finite_numeric_leaves_only():
    """Nested numbers become dotted names; booleans, strings, lists, NaN and infinities are left out."""
    doc = {"score": 0.9, "passed": True, "columns": {"age": {"psi": 0.1, "n": 3}}, "note": "ok", "values": [1, 2],
           "bad": math.nan, "worse": math.inf}
    assert flatten_numbers(doc, "quality") == {"quality.score": 0.9, "quality.columns.age.psi": 0.1,
                                               "quality.columns.age.n": 3.0}
    assert flatten_numbers(None, "drift") == {}


def test_data_quality_figure_is_none_without_figures_and_caps_the_series():
    """No quality/drift numbers: None (the page says so); many drift columns: at most MAX_SERIES traces."""
    assert data_quality_figure([{"logical_date": "2026-11-01", "quality": {"passed": True}}], ["2026-11-01"]) is None
    drift = {f"col{i:02d}": 0.01 * i for i in range(MAX_SERIES + 5)}
    fig = data_quality_figure([{"logical_date": "2026-11-01", "drift": drift}], ["2026-11-01"])
    assert len(fig.data) == MAX_SERIES
    assert f"drift: first {MAX_SERIES} of {MAX_SERIES + 5} series shown" == fig.layout.title.text
    assert [a.text for a in fig.layout.annotations] == [f"drift.col{i:02d}" for i in range(MAX_SERIES)]


def test_performance_figure_draws_champion_challengers_and_labelled_floor():
    """One F1 and one ROC-AUC trace per attempt number, and the F1 floor with its value written on it."""
    evals = [{"logical_date": "2026-11-01", "model_version": 1, "attempt": 0, "f1": 0.4, "roc_auc": 0.6,
              "f1_threshold": 0.75},
             {"logical_date": "2026-11-01", "model_version": 2, "attempt": 1, "f1": 0.5, "roc_auc": 0.62,
              "f1_threshold": 0.75}]
    fig = performance_figure(evals, ["2026-11-01"])
    names = [t.name for t in fig.data]
    assert names.count("champion (model in service, attempt 0)") == 2
    assert names.count("challenger, retraining attempt 1") == 2
    floor = next(t for t in fig.data if t.name.startswith("F1 floor"))
    assert list(floor.y) == [0.75, 0.75, None] and "floor 0.75" in floor.text
    assert fig.data[2].x[0] > fig.data[0].x[0]  # the challenger sits right of its champion


def test_markdown_to_html_renders_tables_and_escapes_raw_html():
    """Pipe tables become <table>; HTML in a value (e.g. a hostile column name) is escaped, not executed."""
    out = markdown_to_html("| a | b |\n|---|---|\n| 1 | <script>x</script> |\n")
    assert "<table>" in out and "<td>1</td>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
