"""``daily-mlops report`` and ``daily-mlops models card``: read through storage, build with reporting, write a file.

Each function loads the documents with :mod:`daily_mlops.storage.reports`,
hands them to the pure builders of :mod:`daily_mlops.reporting` and writes the
result atomically (a temporary file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops.settings import Settings
    from daily_mlops.storage import Database

__all__ = ["model_card", "reference_attribution", "write_predictions", "write_report"]


def reference_attribution(path: Path) -> dict[str, Any]:
    """The reference CSV's path and the source/licence bullets of the ``README.md`` beside it.

    Returns
    -------
    dict
        ``path`` (str) and ``attribution``: the README's ``- `` bullet items,
        continuation lines joined (empty when there is no README).
    """
    readme = Path(path).parent / "README.md"
    bullets: list[str] = []
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif bullets and line.startswith("  ") and line.strip():
            bullets[-1] += " " + line.strip()
    return {"path": str(path), "attribution": bullets}


def _write_atomically(out: Path, text: str, *, option: str, example: str = "report.html") -> Path:
    out = Path(out).expanduser().resolve()
    if out.is_dir():
        raise ConfigError(f"{option} {out} is a directory; give a file name, e.g. {out / example}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _source(settings: Settings) -> str:
    server = "MLOPS_MONGO_URI" if settings.mongo_uri else f"the embedded server under {settings.embedded_mongo_path}"
    return f"database {settings.mongo_db!r} ({server})"


def model_card(settings: Settings, *, db: Database, model_version: int, out: Path | None = None,
               now: dt.datetime | None = None) -> tuple[str, Path | None]:
    """The Markdown model card of ``model_version``; written to ``out`` when given.

    Returns
    -------
    (str, Path or None)
        The Markdown and the absolute path written (``None`` without ``out``).

    Raises
    ------
    NotFoundError
        When the version is not in the registry (names the versions that are).
    ConfigError
        When ``out`` is a directory.
    """
    from daily_mlops.reporting.model_card import model_card_markdown
    from daily_mlops.storage.reports import load_model_card_data

    data = load_model_card_data(db, model_version, model_name=settings.model_name)
    text = model_card_markdown(data, reference=reference_attribution(settings.reference_data),
                               generated_at=now or dt.datetime.now(dt.UTC))
    return text, (_write_atomically(out, text, option="--out") if out is not None else None)


def write_report(settings: Settings, *, db: Database, out: Path, days: int | None = 30,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Write the HTML report of the last ``days`` logical dates to ``out``.

    Returns
    -------
    dict
        ``path`` (absolute), ``size_bytes``, ``days`` (logical dates shown) and
        ``current_version`` (``None`` before bootstrap).

    Raises
    ------
    ConfigError
        When ``out`` is a directory.
    """
    from daily_mlops.reporting.model_card import model_card_markdown
    from daily_mlops.reporting.page import build_report_html
    from daily_mlops.storage.reports import load_model_card_data, load_report_data

    now = now or dt.datetime.now(dt.UTC)
    data = load_report_data(db, days=days, model_name=settings.model_name)
    card = None
    if data["current"] is not None:
        card = model_card_markdown(load_model_card_data(db, data["current"]["model_version"],
                                                        model_name=settings.model_name),
                                   reference=reference_attribution(settings.reference_data), generated_at=now)
    page = build_report_html(data, card_markdown=card, generated_at=now, source=_source(settings))
    path = _write_atomically(out, page, option="--out")
    return {"path": path, "size_bytes": path.stat().st_size, "days": data["days"],
            "current_version": data["current"]["model_version"] if data["current"] else None}


def write_predictions(out: Path, probabilities: Any, *, decision_threshold: float, positive_label: str,
                      negative_label: str, input_flags: list[dict[str, Any]] | None = None) -> Path:
    """Write ``predict --output``: a CSV with columns ``row``, ``probability``, ``label``; return its absolute path.

    Parameters
    ----------
    probabilities : array of shape (n_rows,)
        P(positive label) per input row, in [0, 1].
    decision_threshold : float
        A row is labelled ``positive_label`` when its probability is >= this, else ``negative_label``.
    input_flags : list of dict, optional
        Per row, ``{"unseen": {column: value}, "null": [column, ...]}``
        (:meth:`daily_mlops.ml.input_flags.InputFlags.per_row`); when given,
        two more columns ``unseen`` (a JSON object) and ``null`` (a JSON
        list), each empty for a row without such values.

    Raises
    ------
    ConfigError
        When ``out`` is a directory. The file is written atomically (never half-written).
    """
    import csv
    import io
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ("unseen", "null") if input_flags is not None else ()
    writer.writerow(["row", "probability", "label", *extra])
    for i, p in enumerate(probabilities):
        row_flags = input_flags[i] if input_flags is not None else {}
        flags = [json.dumps(row_flags[k], ensure_ascii=False) if row_flags[k] else "" for k in extra]
        writer.writerow([i, f"{float(p):.6f}", positive_label if p >= decision_threshold else negative_label, *flags])
    return _write_atomically(out, buffer.getvalue(), option="--output", example="predictions.csv")
