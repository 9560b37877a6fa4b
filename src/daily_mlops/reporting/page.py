"""The report page: one self-contained HTML file (figures, the days table, the current model card).

plotly.js is embedded once, in the first figure (``include_plotlyjs=True``);
every other figure is written with ``include_plotlyjs=False`` and uses that
copy, so the file opens offline and loads no script from anywhere
(plotly ``Figure.to_html``, https://plotly.com/python/interactive-html-export/).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daily_mlops.reporting import figures
from daily_mlops.reporting.evidence import calibration_text, version_metrics
from daily_mlops.reporting.model_card import markdown_to_html
from daily_mlops.reporting.summary import day_rows

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["FIGURE_IDS", "build_report_html"]

#: ``id`` of each figure's plot div, in page order (the data-quality ones only when the gate recorded figures,
#: the calibration and lineage ones only once a model version is registered).
FIGURE_IDS = ("fig-versions", "fig-performance", "fig-calibration", "fig-champion-delta", "fig-attempts",
              "fig-deployments", "fig-gate", "fig-drift", "fig-positive-rate", "fig-lineage")

_STYLE = """
body{font-family:"DejaVu Sans",Arial,sans-serif;color:#222;max-width:1360px;margin:0 auto;padding:24px 24px;
line-height:1.45}
h1{margin-bottom:4px}h2{margin-top:40px;border-bottom:2px solid #e5e8ec;padding-bottom:4px}
.meta{color:#666;margin-top:0}.note{color:#555;max-width:1000px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
th,td{border:1px solid #d5d9de;padding:5px 10px;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}td.nowrap,td.num{white-space:nowrap}
tr.alert td{background:#fdecea}tr.alert td.outcome{color:#a93226;font-weight:bold}
tr.gate-failed td{background:#fdf2e9}tr.gate-failed td.outcome,td.gate-failed{color:#a93226;font-weight:bold}
td.gate{font-size:12px;min-width:190px;max-width:250px;overflow-wrap:anywhere}td.outcome{max-width:230px}
td.comparisons{font-size:12px;min-width:270px}td.gap{font-size:12px;min-width:150px}.wide{overflow-x:auto}
#days th,#days td{padding:5px 7px}
dl.glossary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;max-width:1100px}
dl.glossary dt{font-weight:bold}dl.glossary dd{margin:0}
.card{border:1px solid #d5d9de;border-radius:6px;padding:4px 24px;background:#fbfbfc}
.card table{font-size:13px}.card h1{font-size:1.5em}.card h2{font-size:1.2em;margin-top:28px}
.card h3{font-size:1.05em}.empty{color:#7f8c8d;font-style:italic}
"""


def _f(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _v(version: Any) -> str:
    return f"v{version}" if version is not None else "-"


def _html_table(table_id: str, head: tuple[str, ...], rows: Sequence[tuple[str, tuple[tuple[str, Any], ...]]]) -> str:
    """A table: ``rows`` of ``(tr class, ((td class, text), ...))``; every text escaped, newlines as ``<br>``."""
    out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for tr_class, cells in rows:
        out.append(f'<tr class="{tr_class}">' + "".join(
            f'<td class="{c}">{html.escape(str(v)).replace(chr(10), "<br>")}</td>' for c, v in cells) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def _days_table(rows: list[dict[str, Any]]) -> str:
    head = ("logical date", "data-quality gate: verdict, worst columns", "champion", "champion F1", "F1 floor",
            "attempts", "best F1", "outcome", "deployed version", "challengers vs champion (95% interval)",
            "champion ROC-AUC: evaluation gap")
    return _html_table("days", head, [
        ("alert" if r["alert"] else "gate-failed" if r["gate"] == "failed" else "day",
         (("nowrap", r["logical_date"]), ("gate gate-failed" if r["gate"] == "failed" else "gate",
                                          "\n".join(r["gate_detail"])),
          ("", _v(r["champion_version"])), ("num", _f(r["champion_f1"])),
          ("num", _f(r["f1_threshold"], 2)), ("num", "-" if r.get("stopped_by_gate") else str(r["attempts"])),
          ("num", _f(r["best_f1"])),
          ("outcome", r["outcome"]), ("", _v(r["deployed_version"])),
          ("comparisons", "\n".join(r.get("comparisons") or []) or "-"), ("gap", r.get("evaluation_gap") or "-")))
        for r in rows])


def _versions_table(versions: list[dict[str, Any]]) -> str:
    """The headline table: per model version, real-holdout F1 and ROC-AUC before the synthetic test split's."""
    head = ("version", "kind", "status", "real holdout F1", "real holdout ROC-AUC", "test F1", "test ROC-AUC",
            "calibration")
    rows = []
    for doc in versions:
        real, test = version_metrics(doc, "reference"), version_metrics(doc, "test")
        rows.append(("version", (("", _v(doc["model_version"])), ("", doc.get("lineage_kind") or "-"),
                                 ("", doc.get("status") or "-"), ("num", _f(real.get("f1"))),
                                 ("num", _f(real.get("roc_auc"))), ("num", _f(test.get("f1"))),
                                 ("num", _f(test.get("roc_auc"))), ("", calibration_text(doc.get("calibration"))))))
    return _html_table("versions-table", head, rows)


def _headline(rows: list[dict[str, Any]], current: dict[str, Any] | None) -> str:
    if not rows:
        return ("<p>No logical date has been run yet: run <code>daily-mlops demo</code> or "
                "<code>daily-mlops run</code>.</p>")
    alerts = sum(r["alert"] for r in rows)
    deployed = [r for r in rows if r["deployment_status"] == "deployed"]
    parts = [f"{len(rows)} logical date(s), {html.escape(rows[0]['logical_date'])} to "
             f"{html.escape(rows[-1]['logical_date'])}", f"{alerts} alert day(s)",
             f"{sum(r['gate'] == 'failed' for r in rows)} day(s) stopped by the data-quality gate",
             f"{len(deployed)} deployment(s)"]
    if current is not None:
        real, test = version_metrics(current, "reference"), version_metrics(current, "test")
        split = ("the bootstrap test split" if current.get("run_key") == "bootstrap"
                 else f"the test split of {current.get('logical_date')}")
        parts.append(f"current model: <b>{html.escape(current['model_name'])} v{current['model_version']}</b> "
                     f"({html.escape(str(current.get('status')))}, real holdout F1 <b>{_f(real.get('f1'))}</b>, "
                     f"ROC-AUC <b>{_f(real.get('roc_auc'))}</b>; F1 {_f(test.get('f1'))} on {html.escape(split)})")
    return "<p>" + "; ".join(parts) + ".</p>"


_GLOSSARY = """<dl class="glossary">
<dt>logical date</dt><dd>the day a run of the three DAGs is for; each day gets its own synthetic batch of rows.</dd>
<dt>champion</dt><dd>the model in service when the day starts (the deployed version, else the newest approved one);
it is scored first, as attempt 0.</dd>
<dt>challenger</dt><dd>a new model version made when the champion scores below the F1 floor: first the champion
recalibrated on the day's calibration rows, then up to 3 fine-tuning attempts; every candidate is judged on the day's
validation rows against its baseline, and reported on the test split and the real holdout.</dd>
<dt>F1 floor</dt><dd>the <code>f1_threshold</code> of the day's run: the F1 of the positive label a model must reach to
be approved and deployed.</dd>
<dt>real holdout</dt><dd>real reference rows kept out of the synthesizer's fit and of all training: the
headline figures. The synthetic test split is reported beside them; validation rows decide.</dd>
<dt>&Delta;F1 interval</dt><dd>a challenger's F1 minus its champion's on the same rows, with the 95% paired bootstrap
confidence interval recorded with the comparison (scipy.stats.bootstrap, BCa): an interval across 0 is within
noise.</dd>
<dt>data-quality gate</dt><dd>checks each day's batch for breakage before any model sees it: SDMetrics data
validity per column, the share of categories the preprocessor never saw, the increase in nulls, each against a
configured floor. A failed gate stops the day: no model is judged, retrained or deployed on that batch.</dd>
<dt>drift score</dt><dd>SDMetrics KSComplement (numeric columns) or TVComplement (categorical columns and the
target) of the batch against the reference rows: 1 = the same distribution, 0 = nothing in common. Recorded, never
gated.</dd>
<dt>evaluation gap</dt><dd>the champion's ROC-AUC on the day's synthetic test split minus its ROC-AUC on the
real holdout (<code>fidelity.evaluation_gap</code>): how much easier the synthetic rows are to separate than real ones.
Recorded, never gated.</dd>
<dt>alert</dt><dd>every attempt stayed below the floor: a <code>MODEL_PERFORMANCE_FAILURE</code> alert is raised and
the deployed model is left unchanged.</dd>
</dl>"""


def _figure_html(fig: go.Figure, div_id: str, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=first, div_id=div_id, default_width="100%",
                       default_height=f"{int(fig.layout.height or 450)}px",
                       config={"displaylogo": False, "responsive": True})


def build_report_html(
    data: dict[str, Any], *, card_markdown: str | None, generated_at: dt.datetime, source: str,
) -> str:
    """The whole report as one HTML document.

    Parameters
    ----------
    data : dict
        From :func:`daily_mlops.storage.reports.load_report_data`.
    card_markdown : str or None
        The model card of ``data["current"]`` (:func:`~daily_mlops.reporting.model_card.model_card_markdown`).
    generated_at : datetime
        Shown in the header.
    source : str
        The database the data came from, for the header (no credentials).

    Returns
    -------
    str
        UTF-8 HTML with plotly.js inlined once (about 4.8 MB) and no external resource.
    """
    rows = day_rows(data)
    days = data["days"]
    current = data.get("current")
    versions = data.get("versions", [])
    evaluations = data.get("evaluations", [])
    processing = data.get("processing", [])
    no_version = "no model version registered yet"
    no_gate = "no data-quality figures recorded (the gate did not run on these days, or predates them)"
    deployed = (f"v{current['model_version']}, {current.get('status')}" if current else "none yet")
    # (section id, title, note, [(div id, figure or None, what the page says without it)])
    sections: list[tuple[str, str, str, list[tuple[str, Any, str]]]] = [
        ("versions", "Real-holdout F1 and ROC-AUC per model version",
         "The headline: each version scored on the real holdout (solid), beside the synthetic test split (dotted). "
         "Versions registered before the real holdout was recorded for every version leave a gap.",
         [("fig-versions", figures.versions_figure(versions) if versions else None, no_version)]),
        ("performance", "F1 and ROC-AUC per logical date, with their intervals",
         "Each day the champion is scored on the day's validation rows; when it falls below the F1 floor (dashed "
         "red line: configuration), its recalibration and up to three fine-tuned challengers are judged on the same "
         "rows. A candidate's error bar is the recorded 95% paired bootstrap interval of its F1 minus its "
         "baseline's, placed on its F1: when the bar reaches below the baseline's F1, the gain is within noise. The "
         "champion has no bar (it is not compared with anything).",
         [("fig-performance", figures.performance_figure(
             evaluations, days, stopped=[r["logical_date"] for r in rows if r["stopped_by_gate"]]),
           "")]),
        ("calibration", f"Calibration and confusion matrix of the current version ({deployed})",
         "Left: per bin of predicted probability, the share of rows that were positive; on the dashed diagonal the "
         "probabilities mean what they say. Right: the confusion matrices at the version's decision threshold "
         "(rows: the true label).",
         [("fig-calibration", figures.calibration_figure(current) if current else None, no_version)]),
        ("champion-delta", "Challengers against the champion",
         "Each challenger's F1 minus its champion's on the same rows, the error bar its recorded 95% paired "
         "bootstrap interval; a bar across zero is a difference within noise.",
         [("fig-champion-delta", figures.champion_delta_figure(evaluations, days), "")]),
        ("attempts", "Retraining attempts per logical date",
         "0 attempts: the champion passed. Red: every attempt failed and an alert was raised.",
         [("fig-attempts", figures.attempts_figure(rows), "")]),
        ("deployments", "Deployed model version",
         "The version serving predictions at the end of each day (registry status history), with each deployment "
         "marked.", [("fig-deployments", figures.deployment_figure(rows, data.get("deployments", [])), "")]),
        ("data-quality", "Data quality and drift",
         "Was the day's batch fit to use? Top: the gate's verdict per day, and the three figures it judged, each "
         "against its configured floor (dashed red line). Middle: how far each column drifted from the reference "
         "rows (1 = alike; worst columns on top). Bottom: the share of positive labels against the reference's.",
         [("fig-gate", figures.gate_figure(processing, days), no_gate),
          ("fig-drift", figures.drift_figure(processing, days), "no drift figures recorded"),
          ("fig-positive-rate", figures.positive_rate_figure(processing, days), "no positive rate recorded")]),
        ("lineage", "Lineage of the current model version",
         "Each version was fine-tuned (or recalibrated) from the one before it; green is the current (deployed, else "
         "champion) version.",
         [("fig-lineage", figures.lineage_figure(current, versions) if current else None, no_version)]),
    ]
    body = [f"<section id=\"overview\"><h1>daily-mlops report</h1><p class=\"meta\">generated "
            f"{generated_at:%Y-%m-%d %H:%M UTC} from {html.escape(source)}</p>", _headline(rows, current), _GLOSSARY,
            "</section>", '<section id="versions-section"><h2>Model versions: real holdout first</h2>',
            _versions_table(versions) if versions else f'<p class="empty">{no_version}</p>',
            "</section>", '<section id="days-section"><h2>Logical dates</h2>',
            f'<div class="wide">{_days_table(rows)}</div>' if rows else '<p class="empty">no logical date recorded</p>',
            "</section>"]
    first = True
    for section_id, title, note, plots in sections:
        body.append(f'<section id="{section_id}"><h2>{html.escape(title)}</h2><p class="note">{note}</p>')
        for div_id, fig, empty in plots:
            if fig is None:
                body.append(f'<p class="empty">{html.escape(empty)}</p>')
            else:
                body.append(_figure_html(fig, div_id, first))
                first = False
        body.append("</section>")
    body.append('<section id="model-card"><h2>Model card of the current version</h2>')
    body.append((f'<div class="card">{markdown_to_html(card_markdown)}</div>' if card_markdown
                 else '<p class="empty">no model version registered yet</p>') + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>daily-mlops report</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
