"""The report's figures: documents and day rows in, plotly figures out (no database access).

Every figure puts the logical dates on a category x axis (one tick per day
the loop ran, in order), so the figures line up with each other and with the
report's table. Source: plotly 7 ``graph_objects`` and ``make_subplots``
(https://plotly.com/python/reference/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_mlops.reporting.evidence import champion_delta, version_metrics
from daily_mlops.reporting.summary import gate_verdict

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["GATE_FIGURES", "attempts_figure", "calibration_figure", "champion_delta_figure", "deployment_figure",
           "drift_figure", "gate_figure", "lineage_figure", "performance_figure", "positive_rate_figure",
           "versions_figure"]

#: Colours: champion, F1 floor, alert, approved, neutral; challengers (by attempt), recalibration, a gate stop.
CHAMPION, FLOOR, ALERT, APPROVED, NEUTRAL = "#1f4e79", "#c0392b", "#c0392b", "#2e8b57", "#7f8c8d"
CHALLENGER = {1: "#e67e22", 2: "#8e44ad", 3: "#16a085"}
RECALIBRATED = "#5dade2"
GATE_STOP = "#a04000"
#: The gate's figures drawn per day: (``quality`` field, its floor in ``quality.floors``, panel title).
GATE_FIGURES = (("min_validity", "min_diagnostic", "lowest SDMetrics data validity (fails below)"),
                ("max_unseen_share", "max_unseen_share", "largest unseen-category share (fails above)"),
                ("max_null_increase", "max_null_increase", "largest null-share increase (fails above)"))

def _axes(fig: Any, axis: str, *, row: int | None = None, col: int | None = None, **props: Any) -> None:
    """Set ``props`` on the x or y axes (of one subplot when ``row``/``col`` are given)."""
    getattr(fig, f"for_each_{axis}axis")(lambda ax: ax.update(**props), row=row, col=col)


def _annotations(fig: Any, **props: Any) -> None:
    """Set ``props`` on every annotation of ``fig``."""
    fig.for_each_annotation(lambda note: note.update(**props))

def _candidate(doc: dict[str, Any]) -> tuple[int, str, str, str]:
    """``(slot, name, colour, marker symbol)`` of an evaluation: 0 the champion, 1 its recalibration (recorded as
    attempt 0, stage ``recalibrated``), ``n + 1`` retraining attempt ``n``; the slot orders them within a day."""
    attempt = int(doc.get("attempt", 0))
    if attempt == 0 and doc.get("stage") == "recalibrated":
        return 1, "champion recalibrated on the day's rows", RECALIBRATED, "hexagon"
    if attempt == 0:
        return 0, "champion (model in service, attempt 0)", CHAMPION, "circle"
    return (attempt + 1, f"challenger, retraining attempt {attempt}", CHALLENGER.get(attempt, NEUTRAL),
            ["diamond", "square", "triangle-up"][(attempt - 1) % 3])


def _template() -> go.layout.Template:
    import plotly.graph_objects as go

    axis = {"gridcolor": "#e5e8ec", "linecolor": "#b0b7bf", "zerolinecolor": "#e5e8ec", "automargin": True}
    return go.layout.Template(layout={
        "font": {"family": "DejaVu Sans, Arial, sans-serif", "size": 13, "color": "#222"},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
        "xaxis": axis, "yaxis": axis, "margin": {"l": 70, "r": 30, "t": 90, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.06, "x": 0},
    })


def _days_axis(fig: go.Figure, days: list[str], **where: Any) -> None:
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=days, title_text="logical date", **where)


def _empty(fig: go.Figure, message: str) -> None:
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font={"size": 15, "color": NEUTRAL})


def performance_figure(evaluations: list[dict[str, Any]], days: list[str], *,
                       stopped: tuple[str, ...] | list[str] = ()) -> go.Figure:
    """F1 (top) and ROC-AUC (bottom) per logical date: the champion, every challenger and the F1 floor.

    The x axis is the day's position (ticks labelled with the logical date);
    challengers sit just right of their day's champion, in attempt order, and
    the F1 floor (the day's ``f1_threshold``, configuration) is a dashed
    reference line across each day, not a series. A challenger's F1 carries
    an error bar: the recorded 95% paired bootstrap interval of its F1 minus
    its baseline's (``champion.interval``), placed on its F1, so the bar
    reaches below the baseline's F1 exactly when the gain is within noise.
    The champion has no paired interval (nothing to compare it with).

    Parameters
    ----------
    evaluations : list of dict
        ``performance_metrics`` documents (``logical_date``, ``model_version``,
        ``attempt`` 0 = champion, ``f1``, ``roc_auc``, ``f1_threshold``, ``champion``), fractions in [0, 1].
    days : list of str
        The logical dates of the x axis, oldest first.
    stopped : list of str
        Logical dates the data-quality gate stopped (no evaluation): marked so, not left blank.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("F1 of the positive label that decided (the day's validation rows; "
                                        "the test split on days before they were recorded)",
                                        "ROC-AUC on the same rows"))
    position = {day: i for i, day in enumerate(days)}
    by_slot: dict[int, list[dict[str, Any]]] = {}
    for doc in evaluations:
        if doc["logical_date"] in position:
            by_slot.setdefault(_candidate(doc)[0], []).append(doc)
    for slot in sorted(by_slot):
        docs = by_slot[slot]
        _, name, color, symbol = _candidate(docs[0])
        marker = {"color": color, "size": 11 if slot == 0 else 10, "symbol": symbol}
        x = [position[d["logical_date"]] + 0.12 * slot for d in docs]
        # The recorded paired 95% interval of ΔF1 against the baseline, placed on the candidate's F1.
        deltas = [champion_delta(d.get("champion")) for d in docs]
        intervals = [None if c is None or c[1] is None or c[2] is None else (c[0], c[1], c[2]) for c in deltas]
        for row, metric in ((1, "f1"), (2, "roc_auc")):
            error = {}
            if row == 1 and any(intervals):
                error = {"error_y": {"type": "data", "symmetric": False, "thickness": 2.5, "width": 6, "color": color,
                                     "array": [None if i is None else i[2] - i[0] for i in intervals],
                                     "arrayminus": [None if i is None else i[0] - i[1] for i in intervals]}}
            fig.add_trace(go.Scatter(
                x=x, y=[d.get(metric) for d in docs], name=name, legendgroup=name, showlegend=row == 1,
                mode="lines+markers+text" if slot == 0 else "markers+text",
                text=[f"v{d['model_version']}" for d in docs], customdata=[d["logical_date"] for d in docs],
                textposition="top center" if slot == 0 else "middle right", marker=marker,
                line={"color": color, "width": 2}, cliponaxis=False,
                hovertemplate=f"%{{customdata}}<br>%{{text}} ({name})<br>{metric}=%{{y:.4f}}<extra></extra>",
                **error,
            ), row=row, col=1)
    floors: dict[str, float] = {}
    for doc in evaluations:
        if doc.get("f1_threshold") is not None and doc["logical_date"] in position:
            floors.setdefault(doc["logical_date"], float(doc["f1_threshold"]))
    for day in stopped:
        if day in position:
            fig.add_annotation(x=position[day], y=0.5, yref="y domain",
                               text="no evaluation:<br>stopped by the<br>data-quality gate",
                               showarrow=False, font={"color": GATE_STOP, "size": 12}, row=1, col=1)
    for day, floor in floors.items():  # configuration: a reference line per day, never a series
        fig.add_shape(type="line", x0=position[day] - 0.25, x1=position[day] + 0.62, y0=floor, y1=floor,
                      line={"color": FLOOR, "dash": "dash", "width": 2.5}, row=1, col=1)
        fig.add_annotation(x=position[day] - 0.25, y=floor, text=f"floor {floor:.2f}", showarrow=False,
                           xanchor="left", yanchor="bottom", font={"color": FLOOR, "size": 11}, row=1, col=1)
    # The F1 axis spans the figures shown (not 0 to 1), so the intervals of a few hundredths can be read.
    shown = [float(d["f1"]) for d in evaluations if d["logical_date"] in position and d.get("f1") is not None]
    shown += list(floors.values())
    low, high = (max(0.0, min(shown) - 0.08), min(1.0, max(shown) + 0.08)) if shown else (0.0, 1.0)
    _axes(fig, "y", title_text="F1", range=[low, high], row=1, col=1)
    _axes(fig, "y", title_text="ROC-AUC", range=[0.4, 1.0], row=2, col=1)
    _axes(fig, "x", tickmode="array", tickvals=list(range(len(days))), ticktext=days,
                     range=[-0.5, max(len(days), 1) - 0.25], zeroline=False)
    _axes(fig, "x", title_text="logical date", row=2, col=1)
    fig.layout.update(template=_template(), height=660)
    if not evaluations:
        _empty(fig, "no evaluation recorded in these days")
    return fig


def versions_figure(versions: list[dict[str, Any]]) -> go.Figure:
    """F1 (top) and ROC-AUC (bottom) per model version: the real holdout (the headline) beside the synthetic test split.

    A version without real-holdout metrics (registered before they were
    recorded for every version) has a gap in the real-holdout line.

    Parameters
    ----------
    versions : list of dict
        ``model_metadata`` documents of one model family, oldest first (``metrics.reference``,
        ``metrics.test`` or the flat test metrics), fractions in [0, 1].
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=("F1 of the positive label per model version", "ROC-AUC per model version"))
    x = [f"v{doc['model_version']}" for doc in versions]
    kinds = [doc.get("lineage_kind") or "-" for doc in versions]
    series = (("real holdout (real rows, never trained on)", "reference", CHAMPION, "circle", "solid"),
              ("synthetic test split (reported only)", "test", CHALLENGER[1], "circle-open", "dot"))
    for name, split, color, symbol, dash in series:
        per_version = [version_metrics(doc, split) for doc in versions]
        for row, metric in ((1, "f1"), (2, "roc_auc")):
            fig.add_trace(go.Scatter(
                x=x, y=[m.get(metric) for m in per_version], name=name, legendgroup=name, showlegend=row == 1,
                mode="lines+markers", connectgaps=False, customdata=kinds,
                marker={"color": color, "size": 11, "symbol": symbol, "line": {"width": 2, "color": color}},
                line={"color": color, "width": 2, "dash": dash},
                hovertemplate=f"%{{x}} (%{{customdata}})<br>{name}<br>{metric}=%{{y:.4f}}<extra></extra>",
            ), row=row, col=1)
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=x)
    _axes(fig, "x", title_text="model version", row=2, col=1)
    _axes(fig, "y", title_text="F1", range=[0, 1], row=1, col=1)
    _axes(fig, "y", title_text="ROC-AUC", range=[0.4, 1.0], row=2, col=1)
    fig.layout.update(template=_template(), height=560)
    if not versions:
        _empty(fig, "no model version registered yet")
    return fig


def champion_delta_figure(evaluations: list[dict[str, Any]], days: list[str]) -> go.Figure:
    """Each challenger's F1 minus its champion's, per logical date, with the recorded 95% interval as an error bar.

    The interval is the paired bootstrap confidence interval recorded with the
    comparison (``champion.interval``, scipy.stats.bootstrap, BCa); a
    comparison recorded without one is drawn as a marker alone. Zero (no
    difference) is a grey line; an interval that crosses it is within noise.

    Parameters
    ----------
    evaluations : list of dict
        ``performance_metrics`` documents; those with a ``champion`` sub-document are drawn.
    days : list of str
        The logical dates of the x axis, oldest first.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    position = {day: i for i, day in enumerate(days)}
    recorded = [(doc, champion_delta(doc.get("champion"))) for doc in evaluations if doc["logical_date"] in position]
    points = [(doc, delta) for doc, delta in recorded if delta is not None]
    for slot in sorted({_candidate(doc)[0] for doc, _ in points}):
        chosen = [(doc, delta) for doc, delta in points if _candidate(doc)[0] == slot]
        _, name, color, symbol = _candidate(chosen[0][0])
        deltas = [d for _, (d, _, _) in chosen]
        fig.add_trace(go.Scatter(
            x=[position[doc["logical_date"]] + 0.08 * (slot - 2) for doc, _ in chosen], y=deltas,
            error_y={"type": "data", "symmetric": False, "thickness": 2, "width": 6,
                     "array": [None if high is None else high - d for _, (d, _, high) in chosen],
                     "arrayminus": [None if low is None else d - low for _, (d, low, _) in chosen]},
            mode="markers+text", name=name, marker={"color": color, "size": 10, "symbol": symbol},
            text=[f"v{doc['model_version']}" for doc, _ in chosen], textposition="middle right", cliponaxis=False,
            customdata=[doc["logical_date"] for doc, _ in chosen],
            hovertemplate="%{customdata}<br>%{text}: \u0394F1 %{y:+.3f}<extra></extra>",
        ))
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1.5})
    _axes(fig, "y", title_text="\u0394F1 (challenger minus champion)", zeroline=False)
    _axes(fig, "x", tickmode="array", tickvals=list(range(len(days))), ticktext=days, title_text="logical date",
          range=[-0.5, max(len(days), 1) - 0.3], zeroline=False)
    fig.layout.update(template=_template(), height=380)
    if not points:
        _empty(fig, "no champion comparison recorded in these days")
    return fig


def attempts_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Retraining attempts per logical date, bars coloured by the day's outcome, alert days marked.

    Parameters
    ----------
    rows : list of dict
        From :func:`daily_mlops.reporting.summary.day_rows`.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    days = [r["logical_date"] for r in rows]
    groups = (("alert: every attempt failed", ALERT, lambda r: r["alert"]),
              ("a challenger was approved", APPROVED, lambda r: not r["alert"] and r["approved_version"] is not None
               and r["approved_version"] != r["champion_version"]),
              ("the champion passed (no retraining)", CHAMPION, lambda r: not r["alert"]
               and r["approved_version"] is not None and r["approved_version"] == r["champion_version"]),
              ("stopped by the data-quality gate", GATE_STOP, lambda r: r.get("stopped_by_gate")),
              ("no decision recorded", NEUTRAL, lambda r: not r["alert"] and r["approved_version"] is None
               and not r.get("stopped_by_gate")))
    for name, color, member in groups:
        chosen = [r for r in rows if member(r)]
        if chosen:
            fig.add_trace(go.Bar(
                x=[r["logical_date"] for r in chosen], y=[max(r["attempts"], 0.04) for r in chosen], name=name,
                marker_color=color, text=[str(r["attempts"]) for r in chosen], textposition="outside",
                customdata=[r["outcome"] for r in chosen],
                hovertemplate="%{x}: %{text} attempt(s)<br>%{customdata}<extra></extra>",
            ))
    alerts = [r for r in rows if r["alert"]]
    if alerts:
        fig.add_trace(go.Scatter(
            x=[r["logical_date"] for r in alerts], y=[r["attempts"] + 0.7 for r in alerts], mode="markers+text",
            name="alert day (MODEL_PERFORMANCE_FAILURE)", text=["ALERT"] * len(alerts), textposition="top center",
            marker={"symbol": "triangle-down", "size": 16, "color": ALERT}, textfont={"color": ALERT, "size": 14},
            hoverinfo="skip",
        ))
    top = max([r["attempts"] for r in rows] + [3])
    _axes(fig, "y", title_text="retraining attempts", range=[0, top + 1.6], dtick=1)
    _days_axis(fig, days)
    fig.layout.update(template=_template(), height=380, barmode="overlay", bargap=0.45)
    if not rows:
        _empty(fig, "no logical date recorded yet")
    return fig


def deployment_figure(rows: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> go.Figure:
    """The model version deployed at the end of each logical date, with each deployment marked.

    Parameters
    ----------
    rows : list of dict
        From :func:`daily_mlops.reporting.summary.day_rows` (``deployed_version``).
    deployments : list of dict
        ``deployment_events`` documents; those of status ``deployed`` on a row's date are marked.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    days = [r["logical_date"] for r in rows]
    versions = sorted({r["deployed_version"] for r in rows if r["deployed_version"] is not None})
    fig.add_trace(go.Scatter(
        x=days, y=[f"v{r['deployed_version']}" if r["deployed_version"] is not None else None for r in rows],
        mode="lines+markers", name="deployed version (serving)", line={"shape": "hv", "color": CHAMPION, "width": 3},
        marker={"size": 10, "color": CHAMPION}, connectgaps=False,
        hovertemplate="%{x}: %{y} deployed<extra></extra>",
    ))
    shown = set(days)
    events = [e for e in deployments if e.get("status") == "deployed" and e.get("logical_date") in shown]
    if events:
        fig.add_trace(go.Scatter(
            x=[e["logical_date"] for e in events], y=[f"v{e['model_version']}" for e in events], mode="markers+text",
            name="deployment (deployment_events)", text=[f"deployed v{e['model_version']}" for e in events],
            textposition="top center", marker={"symbol": "star", "size": 18, "color": APPROVED},
            hovertemplate="%{x}: %{text}<extra></extra>", cliponaxis=False,
        ))
    _axes(fig, "y", title_text="model version", type="category", categoryorder="array",
                     categoryarray=[f"v{v}" for v in versions], range=[-0.6, len(versions) - 0.2])
    _days_axis(fig, days, range=[-0.4, max(len(days), 1) - 0.6])
    fig.layout.update(template=_template(), height=300 + 30 * len(versions))
    if not versions:
        _empty(fig, "no model version deployed yet")
    return fig


def _batches(processing: list[dict[str, Any]], days: list[str]) -> list[dict[str, Any]]:
    """The ``processing_metadata`` documents of ``days``, in day order (one per day)."""
    by_day = {doc.get("logical_date"): doc for doc in processing}
    return [by_day[d] for d in days if d in by_day]


def gate_figure(processing: list[dict[str, Any]], days: list[str]) -> go.Figure | None:
    """The data-quality gate per logical date: a strip of verdicts (top), its three figures against their floors.

    The verdict is the one the gate recorded (``quality.status``,
    :func:`daily_mlops.reporting.summary.gate_verdict`); the panels below
    are the figures it judged (``quality.min_validity``,
    ``max_unseen_share``, ``max_null_increase``, fractions in [0, 1]) with
    each configured floor (``quality.floors``) drawn as a dashed reference
    line, never as a series. Returns ``None`` when no day has a verdict.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    batches = _batches(processing, days)
    if not any(gate_verdict(b) for b in batches):
        return None
    fig = make_subplots(rows=2, cols=3, specs=[[{"colspan": 3}, None, None], [{}, {}, {}]], row_heights=[0.28, 0.72],
                        vertical_spacing=0.2, horizontal_spacing=0.08,
                        subplot_titles=("gate verdict per logical date", *(t for _, _, t in GATE_FIGURES)))
    verdicts = (("passed", "gate passed", APPROVED, "passed"), ("failed", "gate FAILED: day stopped", ALERT, "FAILED"),
                (None, "no gate verdict recorded", NEUTRAL, "none"))
    for verdict, name, color, label in verdicts:
        chosen = [b for b in batches if gate_verdict(b) == verdict]
        if chosen:
            fig.add_trace(go.Scatter(
                x=[b["logical_date"] for b in chosen], y=["gate"] * len(chosen), mode="markers+text", name=name,
                marker={"symbol": "square", "size": 30, "color": color}, text=[label] * len(chosen),
                textposition="bottom center", textfont={"color": color, "size": 13}, cliponaxis=False,
                customdata=[((b.get("quality") or {}).get("message") or "-") for b in chosen],
                hovertemplate="%{x}: " + label + "<br>%{customdata}<extra></extra>",
            ), row=1, col=1)
    for col, (field, floor_key, title) in enumerate(GATE_FIGURES, start=1):
        points = [(b["logical_date"], b["quality"][field]) for b in batches
                  if isinstance((b.get("quality") or {}).get(field), (int, float))]
        fig.add_trace(go.Scatter(
            x=[d for d, _ in points], y=[v for _, v in points], mode="lines+markers", name=title, showlegend=False,
            line={"color": CHAMPION}, marker={"size": 9, "color": CHAMPION},
            hovertemplate=f"%{{x}}<br>{title} %{{y:.3f}}<extra></extra>"), row=2, col=col)
        floors = {float(b["quality"]["floors"][floor_key]) for b in batches
                  if isinstance(((b.get("quality") or {}).get("floors") or {}).get(floor_key), (int, float))}
        for floor in sorted(floors):  # configuration: a reference line, never a series
            fig.add_hline(y=floor, line={"color": FLOOR, "dash": "dash", "width": 2}, row=2, col=col,
                          annotation_text=f"floor {floor:g}", annotation_position="top left",
                          annotation_font={"color": FLOOR, "size": 12})
        _axes(fig, "y", range=[-0.05, 1.05], row=2, col=col)
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=days)
    _axes(fig, "y", visible=False, row=1, col=1)
    _annotations(fig, font={"size": 12})
    fig.layout.update(template=_template(), height=520)
    return fig


def drift_figure(processing: list[dict[str, Any]], days: list[str]) -> go.Figure | None:
    """A heatmap of each column's drift score by logical date, the worst columns first (top).

    Scores are SDMetrics ``KSComplement`` (numeric columns) and
    ``TVComplement`` (categorical columns and the target) recorded under
    ``drift.columns``: 1 means the batch's column looks like the reference's,
    0 that they share nothing. Columns are ordered by their lowest score over
    the days shown; a numeric column (``processed.columns.x_num``) is marked
    ``(KS)``, the others ``(TV)`` when the document names its columns.
    Returns ``None`` when no day records them.
    """
    import plotly.graph_objects as go

    batches = [b for b in _batches(processing, days) if ((b.get("drift") or {}).get("columns"))]
    if not batches:
        return None
    scores = {b["logical_date"]: b["drift"]["columns"] for b in batches}
    columns = sorted({c for cols in scores.values() for c in cols},
                     key=lambda c: (min(v[c] for v in scores.values() if c in v), c))
    numeric = {c for b in batches for c in (((b.get("processed") or {}).get("columns") or {}).get("x_num") or [])}
    labels = [f"{c} ({'KS' if c in numeric else 'TV'})" if numeric else c for c in columns]
    shown = [b["logical_date"] for b in batches]
    fig = go.Figure(go.Heatmap(
        x=shown, y=labels, z=[[scores[d].get(c) for d in shown] for c in columns], zmin=0, zmax=1,
        colorscale="RdYlGn", texttemplate="%{z:.2f}", textfont={"size": 11}, xgap=2, ygap=1, name="drift score",
        colorbar={"title": {"text": "1 = like the<br>reference"}, "thickness": 14},
        hovertemplate="%{x}<br>%{y}: %{z:.3f}<extra></extra>"))
    _axes(fig, "y", autorange="reversed", type="category", tickfont={"size": 11})
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=shown, side="top")
    fig.layout.update(template=_template(), height=160 + 24 * len(columns), margin={"t": 90},
                      title={"text": "drift of each column from the reference rows (KS: KSComplement, TV: TVComplement;"
                                     " 1 = alike, worst columns on top)", "font": {"size": 14}, "x": 0.5, "y": 0.99})
    return fig


def positive_rate_figure(processing: list[dict[str, Any]], days: list[str]) -> go.Figure | None:
    """The batch's positive rate per logical date against the reference rows' (a dashed reference line).

    Both measured by the gate (``drift.positive_rate`` on the batch sample,
    ``drift.reference_positive_rate``); days before the gate recorded them
    fall back to the batch's ``positive_rate``. Fractions in [0, 1]. Returns
    ``None`` when no day records one.
    """
    import plotly.graph_objects as go

    points, reference = [], set()
    for b in _batches(processing, days):
        drift = b.get("drift") or {}
        rate = drift.get("positive_rate", b.get("positive_rate"))
        if isinstance(rate, (int, float)):
            points.append((b["logical_date"], float(rate)))
        if isinstance(drift.get("reference_positive_rate"), (int, float)):
            reference.add(round(float(drift["reference_positive_rate"]), 6))
    if not points:
        return None
    fig = go.Figure(go.Scatter(
        x=[d for d, _ in points], y=[r for _, r in points], mode="lines+markers+text", name="batch positive rate",
        text=[f"{r:.3f}" for _, r in points], textposition="top center", cliponaxis=False,
        line={"color": CHAMPION, "width": 2}, marker={"size": 10, "color": CHAMPION},
        hovertemplate="%{x}: positive rate %{y:.3f}<extra></extra>"))
    for rate in sorted(reference):
        fig.add_hline(y=rate, line={"color": NEUTRAL, "dash": "dash", "width": 2},
                      annotation_text=f"reference {rate:.3f}",
                      annotation_position="bottom left", annotation_font={"color": NEUTRAL, "size": 12})
    top = max([r for _, r in points] + list(reference))
    _axes(fig, "y", title_text="share of positive labels", range=[0, min(1.0, top * 1.3 + 0.05)])
    _days_axis(fig, days)
    fig.layout.update(template=_template(), height=340, showlegend=False, margin={"t": 60},
                      title={"text": "positive rate of the batch (gate sample) against the reference rows' (dashed)",
                             "font": {"size": 14}, "x": 0.5})
    return fig


def calibration_figure(current: dict[str, Any]) -> go.Figure:
    """The deployed version's reliability diagram (left) and confusion matrices (test split, real holdout).

    The reliability diagram plots, per bin of predicted probability, the
    observed positive rate against the mean predicted probability (Guo et
    al. 2017; the bins ``metrics.<split>.reliability`` recorded at
    evaluation, those of its ECE), with the diagonal (perfect calibration)
    as a reference line. A version registered before the bins were recorded
    says so in the panel, with its recorded Brier score and ECE. The
    confusion matrices are ``metrics.<split>.confusion_matrix`` (rows: true
    label, columns: predicted; negative first).

    Parameters
    ----------
    current : dict
        The ``model_metadata`` document of the current (deployed, else champion) version.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    splits = (("test", "synthetic test split", CHALLENGER[1]), ("reference", "real holdout", CHAMPION))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.1, column_widths=[0.44, 0.28, 0.28],
                        subplot_titles=("reliability diagram (calibration curve)",
                                        "confusion matrix, synthetic test split", "confusion matrix, real holdout"))
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"color": NEUTRAL, "dash": "dash", "width": 1.5},
                  row=1, col=1)
    fig.add_annotation(x=0.03, y=0.97, text="dashed: perfectly calibrated", showarrow=False, xanchor="left",
                       font={"size": 11, "color": NEUTRAL}, row=1, col=1)
    missing = []
    for split, name, color in splits:
        metrics = version_metrics(current, split)
        bins = metrics.get("reliability") or {}
        # the three lists are written together, one entry per bin (loop.evidence.score_metrics)
        points = [(p, o, n) for p, o, n in zip(bins.get("mean_predicted", []), bins.get("observed_rate", []),
                                               bins.get("count", []), strict=True) if p is not None and o is not None]
        if points:
            fig.add_trace(go.Scatter(
                x=[p for p, _, _ in points], y=[o for _, o, _ in points], customdata=[n for _, _, n in points],
                mode="lines+markers", name=f"calibration curve, {name} (ECE {metrics.get('ece', 0):.3f})",
                line={"color": color, "width": 2}, marker={"size": 9, "color": color},
                hovertemplate="predicted %{x:.2f}, observed %{y:.2f}<br>%{customdata} rows<extra></extra>",
            ), row=1, col=1)
        elif metrics:
            missing.append(f"{name}: Brier {metrics.get('brier', float('nan')):.3f}, ECE "
                           f"{metrics.get('ece', float('nan')):.3f}")
    if missing:
        fig.add_annotation(text="per-bin calibration not recorded for this version<br>(registered before it was)<br>"
                           + "<br>".join(missing), x=0.5, y=0.85, xref="x", yref="y", showarrow=False,
                           font={"size": 12, "color": NEUTRAL}, bgcolor="white")
    _axes(fig, "x", title_text="mean predicted probability", range=[0, 1], row=1, col=1)
    _axes(fig, "y", title_text="observed positive rate", range=[0, 1], row=1, col=1)
    labels = (current.get("signature") or {}).get("target", {}).get("labels") or ["negative", "positive"]
    for col, (split, name, _) in enumerate(splits, start=2):
        matrix = version_metrics(current, split).get("confusion_matrix")
        if not matrix:
            fig.add_annotation(text="not recorded", x=0.5, y=0.5, xref=f"x{col} domain", yref=f"y{col} domain",
                               showarrow=False, font={"color": NEUTRAL})
            continue
        fig.add_trace(go.Heatmap(
            z=matrix, x=[f"pred. {label}" for label in labels], y=[f"true {label}" for label in labels],
            colorscale="Blues", showscale=False, texttemplate="%{z}", textfont={"size": 15}, name=name,
            hovertemplate=f"{name}<br>%{{y}}, %{{x}}: %{{z}} rows<extra></extra>"), row=1, col=col)
        _axes(fig, "y", autorange="reversed", row=1, col=col)
    fig.layout.update(template=_template(), height=430,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0})
    return fig


def lineage_figure(current: dict[str, Any], versions: list[dict[str, Any]]) -> go.Figure:
    """The lineage of ``current``: root version -> ... -> current, each with its F1 and training day.

    Parameters
    ----------
    current : dict
        The registry document of the current (deployed, else champion) version.
    versions : list of dict
        Registry documents of the model (its ancestors are looked up there).
    """
    import plotly.graph_objects as go

    by_version = {int(v["model_version"]): v for v in versions}
    chain = [*[int(v) for v in current.get("lineage", [])], int(current["model_version"])]
    docs = [by_version.get(v, {"model_version": v}) for v in chain]
    docs[-1] = current
    x = list(range(len(docs)))

    def caption(doc: dict[str, Any]) -> str:
        f1, real_f1 = version_metrics(doc, "test").get("f1"), version_metrics(doc, "reference").get("f1")
        day = doc.get("logical_date")
        bootstrap = doc.get("run_key") == "bootstrap"
        made = "recalibrated" if doc.get("lineage_kind") == "recalibrated" else "fine-tuned"
        origin = "trained at bootstrap" if bootstrap else f"{made} on {day}" if day else "registered"
        split = "bootstrap test split" if bootstrap else f"test split of {day}" if day else "its test split"
        score = f"F1 {f1:.3f} on the {split}" if isinstance(f1, float) else "F1 not recorded"
        real = f"real holdout F1 {real_f1:.3f}<br>" if isinstance(real_f1, float) else ""
        return f"{origin}<br>{real}{score}<br>status: {doc.get('status', '?')}"

    fig = go.Figure(go.Scatter(
        x=x, y=[0] * len(docs), mode="markers+text", text=[f"<b>v{d['model_version']}</b>" for d in docs],
        textposition="top center", textfont={"size": 16},
        marker={"size": 34, "color": [NEUTRAL] * (len(docs) - 1) + [APPROVED], "line": {"width": 2, "color": "white"}},
        customdata=[", ".join(d.get("trained_on", [])) for d in docs], name="model version",
        hovertemplate="%{text}<br>trained on %{customdata}<extra></extra>", showlegend=False,
    ))
    for i, doc in enumerate(docs):
        fig.add_annotation(x=i, y=-0.55, text=caption(doc), showarrow=False, font={"size": 12})
        if i:
            fig.add_annotation(x=i - 0.12, y=0, ax=i - 0.88, ay=0, xref="x", yref="y", axref="x", ayref="y",
                               text="", showarrow=True, arrowhead=3, arrowsize=1.4, arrowwidth=2,
                               arrowcolor=NEUTRAL)
    _axes(fig, "x", visible=False, range=[-0.6, len(docs) - 0.4])
    _axes(fig, "y", visible=False, range=[-1.0, 0.6])
    fig.layout.update(template=_template(), height=260, margin={"t": 20, "b": 10})
    return fig
