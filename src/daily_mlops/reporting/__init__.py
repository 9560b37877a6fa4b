"""Reporting: documents in, figures, HTML and Markdown out (``daily-mlops report``, ``daily-mlops models card``).

Modules: :mod:`~daily_mlops.reporting.summary` (one row per logical date,
deployment intervals), :mod:`~daily_mlops.reporting.figures` (plotly figures),
:mod:`~daily_mlops.reporting.model_card` (model cards, Mitchell et al. 2019)
and :mod:`~daily_mlops.reporting.page` (the self-contained HTML report).
Pure: the documents come from :mod:`daily_mlops.storage.reports`; nothing here
reads or writes MongoDB.
"""

from __future__ import annotations

from daily_mlops.reporting.model_card import markdown_to_html, model_card_markdown
from daily_mlops.reporting.page import FIGURE_IDS, build_report_html
from daily_mlops.reporting.summary import day_rows, deployment_intervals

__all__ = ["FIGURE_IDS", "build_report_html", "day_rows", "deployment_intervals", "markdown_to_html",
           "model_card_markdown"]
