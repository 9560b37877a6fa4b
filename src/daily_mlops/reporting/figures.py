"""The report's figures: documents and day rows in, plotly figures out (no database access).

Every figure puts the logical dates on a category x axis (one tick per day
the loop ran, in order), so the figures line up with each other and with the
report's table. Source: plotly 7 ``graph_objects`` and ``make_subplots``
(https://plotly.com/python/reference/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_mlops.reporting.evidence import champion_delta, version_metrics
from daily_mlops.reporting.summary import flatten_numbers

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["attempts_figure", "champion_delta_figure", "data_quality_figure", "deployment_figure", "lineage_figure",
           "performance_figure", "versions_figure"]

#: Colours: champion, challengers (by attempt), F1 floor, alert, approved, neutral.
CHAMPION, FLOOR, ALERT, APPROVED, NEUTRAL = "#1f4e79", "#c0392b", "#c0392b", "#2e8b57", "#7f8c8d"
CHALLENGER = {1: "#e67e22", 2: "#8e44ad", 3: "#16a085"}
#: Data-quality series drawn per sub-document (the rest are counted in a note).
MAX_SERIES = 12



def _axes(fig: Any, axis: str, *, row: int | None = None, col: int | None = None, **props: Any) -> None:
    """Set ``props`` on the x or y axes (of one subplot when ``row``/``col`` are given)."""
    getattr(fig, f"for_each_{axis}axis")(lambda ax: ax.update(**props), row=row, col=col)


def _annotations(fig: Any, **props: Any) -> None:
    """Set ``props`` on every annotation of ``fig``."""
    fig.for_each_annotation(lambda note: note.update(**props))

def _template() -> "go.layout.Template":
    import plotly.graph_objects as go

    axis = {"gridcolor": "#e5e8ec", "linecolor": "#b0b7bf", "zerolinecolor": "#e5e8ec", "automargin": True}
    return go.layout.Template(layout={
        "font": {"family": "DejaVu Sans, Arial, sans-serif", "size": 13, "color": "#222"},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
        "xaxis": axis, "yaxis": axis, "margin": {"l": 70, "r": 30, "t": 90, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.06, "x": 0},
    })


def _days_axis(fig: "go.Figure", days: list[str], **where: Any) -> None:
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=days, title_text="logical date", **where)


def _empty(fig: "go.Figure", message: str) -> None:
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font={"size": 15, "color": NEUTRAL})


def performance_figure(evaluations: list[dict[str, Any]], days: list[str]) -> "go.Figure":
    """F1 (top) and ROC-AUC (bottom) per logical date: the champion, every challenger and the F1 floor.

    The x axis is the day's position (ticks labelled with the logical date);
    challengers sit just right of their day's champion, in attempt order, and
    the F1 floor is a short red bar across each day.

    Parameters
    ----------
    evaluations : list of dict
        ``performance_metrics`` documents (``logical_date``, ``model_version``,
        ``attempt`` 0 = champion, ``f1``, ``roc_auc``, ``f1_threshold``), fractions in [0, 1].
    days : list of str
        The logical dates of the x axis, oldest first.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("F1 of the positive label that decided (the day's validation rows; "
                                        "the test split on days before they were recorded)",
                                        "ROC-AUC on the same rows"))
    position = {day: i for i, day in enumerate(days)}
    by_attempt: dict[int, list[dict[str, Any]]] = {}
    for doc in evaluations:
        if doc["logical_date"] in position:
            by_attempt.setdefault(int(doc.get("attempt", 0)), []).append(doc)
    for attempt in sorted(by_attempt):
        docs = by_attempt[attempt]
        name = "champion (model in service, attempt 0)" if attempt == 0 else f"challenger, retraining attempt {attempt}"
        color = CHAMPION if attempt == 0 else CHALLENGER.get(attempt, NEUTRAL)
        marker = {"color": color, "size": 11 if attempt == 0 else 10,
                  "symbol": "circle" if attempt == 0 else ["diamond", "square", "triangle-up"][(attempt - 1) % 3]}
        x = [position[d["logical_date"]] + 0.1 * attempt for d in docs]
        for row, metric in ((1, "f1"), (2, "roc_auc")):
            fig.add_trace(go.Scatter(
                x=x, y=[d.get(metric) for d in docs], name=name, legendgroup=name, showlegend=row == 1,
                mode="lines+markers+text" if attempt == 0 else "markers+text",
                text=[f"v{d['model_version']}" for d in docs], customdata=[d["logical_date"] for d in docs],
                textposition="top center", marker=marker, line={"color": color, "width": 2}, cliponaxis=False,
                hovertemplate=f"%{{customdata}}<br>%{{text}} ({'champion' if attempt == 0 else f'attempt {attempt}'})"
                              f"<br>{metric}=%{{y:.4f}}<extra></extra>",
            ), row=row, col=1)
    floors: dict[str, float] = {}
    for doc in evaluations:
        if doc.get("f1_threshold") is not None and doc["logical_date"] in position:
            floors.setdefault(doc["logical_date"], float(doc["f1_threshold"]))
    if floors:
        xs: list[float | None] = []
        ys: list[float | None] = []
        labels: list[str] = []
        for day, floor in floors.items():
            xs += [position[day] - 0.25, position[day] + 0.45, None]
            ys += [floor, floor, None]
            labels += ["", f"floor {floor:.2f}", ""]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name="F1 floor (f1_threshold of the day's run)", mode="lines+text", text=labels,
            textposition="top left", textfont={"color": FLOOR}, line={"color": FLOOR, "dash": "dash", "width": 2.5},
            hovertemplate="F1 floor %{y:.2f}<extra></extra>", cliponaxis=False,
        ), row=1, col=1)
    top = max([1.0] + [f + 0.05 for f in floors.values()])
    _axes(fig, "y", title_text="F1", range=[0, top], row=1, col=1)
    _axes(fig, "y", title_text="ROC-AUC", range=[0.4, 1.0], row=2, col=1)
    _axes(fig, "x", tickmode="array", tickvals=list(range(len(days))), ticktext=days,
                     range=[-0.5, max(len(days), 1) - 0.3], zeroline=False)
    _axes(fig, "x", title_text="logical date", row=2, col=1)
    fig.layout.update(template=_template(), height=660)
    if not evaluations:
        _empty(fig, "no evaluation recorded in these days")
    return fig


def versions_figure(versions: list[dict[str, Any]]) -> "go.Figure":
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


def champion_delta_figure(evaluations: list[dict[str, Any]], days: list[str]) -> "go.Figure":
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
    points = [(doc, champion_delta(doc.get("champion"))) for doc in evaluations if doc["logical_date"] in position]
    points = [(doc, delta) for doc, delta in points if delta is not None]
    for attempt in sorted({int(doc.get("attempt", 0)) for doc, _ in points}):
        chosen = [(doc, delta) for doc, delta in points if int(doc.get("attempt", 0)) == attempt]
        deltas = [d for _, (d, _, _) in chosen]
        fig.add_trace(go.Scatter(
            x=[position[doc["logical_date"]] + 0.1 * (attempt - 1) for doc, _ in chosen], y=deltas,
            error_y={"type": "data", "symmetric": False, "thickness": 2, "width": 6,
                     "array": [None if high is None else high - d for _, (d, _, high) in chosen],
                     "arrayminus": [None if low is None else d - low for _, (d, low, _) in chosen]},
            mode="markers+text", name=f"challenger, retraining attempt {attempt}",
            marker={"color": CHALLENGER.get(attempt, NEUTRAL), "size": 10,
                    "symbol": ["diamond", "square", "triangle-up"][(attempt - 1) % 3]},
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


def attempts_figure(rows: list[dict[str, Any]]) -> "go.Figure":
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
              ("no decision recorded", NEUTRAL, lambda r: not r["alert"] and r["approved_version"] is None))
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


def deployment_figure(rows: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> "go.Figure":
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


def data_quality_figure(processing: list[dict[str, Any]], days: list[str]) -> "go.Figure | None":
    """Every numeric figure under ``quality`` and ``drift`` of ``processing_metadata``, per logical date.

    One small panel per figure (each with its own y axis: scores, PSI values
    and counts do not share a scale), ``quality`` ones first. Returns ``None``
    when no day records one (the report then says so). At most
    :data:`MAX_SERIES` figures are drawn per sub-document, in name order; the
    title says how many exist.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels: dict[str, dict[str, dict[str, float]]] = {}
    for doc in processing:
        for key in ("quality", "drift"):
            for name, value in flatten_numbers(doc.get(key), key).items():
                panels.setdefault(key, {}).setdefault(name, {})[doc["logical_date"]] = value
    if not panels:
        return None
    shown = [(key, name) for key in ("quality", "drift") for name in sorted(panels.get(key, {}))[:MAX_SERIES]]
    capped = [f"{key}: first {MAX_SERIES} of {len(panels[key])} series shown"
              for key in panels if len(panels[key]) > MAX_SERIES]
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[name for _, name in shown],
                        horizontal_spacing=0.08, vertical_spacing=min(0.25, 0.6 / rows))
    for i, (key, name) in enumerate(shown):
        series = panels[key][name]
        x = [d for d in days if d in series]
        fig.add_trace(go.Scatter(x=x, y=[series[d] for d in x], mode="lines+markers", name=name, showlegend=False,
                                 line={"color": CHAMPION if key == "quality" else CHALLENGER[1]},
                                 hovertemplate=f"%{{x}}<br>{name}=%{{y:.4g}}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    _axes(fig, "x", type="category", categoryorder="array", categoryarray=days)
    _annotations(fig, font={"size": 12})
    fig.layout.update(template=_template(), height=90 + 240 * rows, margin={"t": 70 if capped else 50},
                      title={"text": "; ".join(capped), "font": {"size": 13}} if capped else None)
    return fig


def lineage_figure(current: dict[str, Any], versions: list[dict[str, Any]]) -> "go.Figure":
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
        origin = "trained at bootstrap" if bootstrap else f"fine-tuned on {day}" if day else "registered"
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
