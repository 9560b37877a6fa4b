"""What happened on each logical date, and which model version was deployed when: documents in, rows out.

Pure functions over the documents :func:`daily_mlops.storage.reports.load_report_data`
returns (standard library and :mod:`daily_mlops.reporting.evidence` only). A *day row* is one line of the report's table
and the source of its attempts and deployment figures.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from daily_mlops.reporting.evidence import comparison_lines

__all__ = ["day_rows", "deployed_on", "deployment_intervals", "flatten_numbers"]


def _day_of(entry: dict[str, Any]) -> str | None:
    """The logical date of a ``status_history`` entry, else the UTC date it was written."""
    if entry.get("logical_date"):
        return str(entry["logical_date"])
    at = entry.get("at")
    return at.date().isoformat() if isinstance(at, dt.datetime) else None


def deployment_intervals(versions: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """When each model version was deployed: ``[{"model_version", "start", "end"}]`` (logical dates).

    Read from the registry's ``status_history`` (a ``deployed`` entry opens an
    interval, the next other status closes it, ``end`` ``None`` = still
    deployed). Without a registry history (versions of another store),
    ``deployment_events`` of status ``deployed`` are used, each ending at the next.
    Sorted by start date.
    """
    intervals: list[dict[str, Any]] = []
    for doc in versions:
        opened: str | None = None
        for entry in doc.get("status_history", []):  # appended in order by ModelRegistry.set_status
            day = _day_of(entry)
            if entry.get("status") == "deployed" and opened is None and day:
                opened = day
            elif entry.get("status") != "deployed" and opened is not None:
                intervals.append({"model_version": int(doc["model_version"]), "start": opened, "end": day or opened})
                opened = None
        if opened is not None:
            intervals.append({"model_version": int(doc["model_version"]), "start": opened, "end": None})
    if not intervals:
        events = [e for e in deployments if e.get("status") == "deployed"]
        for this, following in zip(events, [*events[1:], None]):
            intervals.append({"model_version": int(this["model_version"]), "start": this["logical_date"],
                              "end": following["logical_date"] if following else None})
    return sorted(intervals, key=lambda i: (i["start"], i["model_version"]))


def deployed_on(intervals: list[dict[str, Any]], day: str) -> int | None:
    """The version deployed at the end of logical date ``day`` (``None`` before the first deployment)."""
    live = [i for i in intervals if i["start"] <= day and (i["end"] is None or i["end"] > day)]
    return max(live, key=lambda i: i["start"])["model_version"] if live else None


def _outcome(row: dict[str, Any], deployment: dict[str, Any] | None) -> str:
    if row["alert"]:
        return (f"ALERT: best F1 {row['best_f1']:.4f} < floor {row['f1_threshold']:.2f} after "
                f"{row['attempts']} retraining attempt(s); deployed model unchanged")
    if row["champion_version"] is None and not row["attempts"]:
        return "no evaluation recorded (batch only)"
    approved = row["approved_version"]
    if approved is None:
        return "no decision recorded (the evaluation run did not finish)"
    text = ("champion passed" if approved == row["champion_version"]
            else f"challenger v{approved} approved")
    if deployment is None:
        return text + "; not deployed yet"
    status = deployment.get("status")
    if status == "deployed":
        return text + f"; deployed v{deployment['model_version']}"
    if status == "already_deployed":
        return text + f"; v{deployment['model_version']} already deployed"
    in_place = deployment.get("version_in_place")
    return text + f"; deployment {status}" + (f" (v{in_place} of a later day kept)" if in_place else "")


def day_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One summary per logical date of ``data["days"]`` (oldest first).

    Returns
    -------
    list of dict
        ``logical_date``; ``champion_version`` and ``champion_f1`` (attempt 0,
        ``None`` when the day was not evaluated); ``f1_threshold`` (the F1 floor
        of that evaluation); ``attempts`` (retraining attempts, 0 to 3);
        ``challengers`` (versions they registered); ``best_f1``; ``alert``
        (an open ``MODEL_PERFORMANCE_FAILURE`` alert); ``approved_version``;
        ``deployment_status``; ``deployed_version`` (in place at the end of the
        day); ``outcome`` (one sentence) and ``comparisons`` (per challenger
        evaluated, ``v2: ΔF1 ...``: its champion comparison and real-holdout
        guard with their intervals, :mod:`daily_mlops.reporting.evidence`; empty
        before they were recorded).
    """
    intervals = deployment_intervals(data.get("versions", []), data.get("deployments", []))
    rows = []
    for day in data["days"]:
        evals = [e for e in data.get("evaluations", []) if e["logical_date"] == day]
        champion = next((e for e in evals if int(e.get("attempt", 0)) == 0), None)
        alert = next((a for a in data.get("alerts", [])
                      if a["logical_date"] == day and a.get("status", "open") == "open"), None)
        passed = next((p for p in data.get("passed", []) if p["logical_date"] == day), None)
        deployment = next((d for d in reversed(data.get("deployments", [])) if d["logical_date"] == day), None)
        f1s = [float(e["f1"]) for e in evals if e.get("f1") is not None]
        row = {
            "logical_date": day,
            "champion_version": int(champion["model_version"]) if champion else None,
            "champion_f1": champion.get("f1") if champion else None,
            "f1_threshold": (champion or (evals[0] if evals else {})).get("f1_threshold"),
            "attempts": max((int(e.get("attempt", 0)) for e in evals), default=0),
            "challengers": [int(e["model_version"]) for e in evals if int(e.get("attempt", 0)) > 0],
            "best_f1": max(f1s) if f1s else None,
            "alert": alert is not None,
            "approved_version": int(passed["approved_version"]) if passed and not alert else None,
            "deployment_status": deployment.get("status") if deployment else None,
            "deployed_version": deployed_on(intervals, day),
        }
        if alert is not None:
            row["best_f1"] = float(alert.get("f1_score", row["best_f1"] or 0.0))
            row["f1_threshold"] = alert.get("f1_threshold", row["f1_threshold"])
        row["outcome"] = _outcome(row, deployment)
        row["comparisons"] = [f"v{e['model_version']}: " + "; ".join(comparison_lines(
            {key: e.get(key) for key in ("champion", "real")})) for e in evals if e.get("champion") or e.get("real")]
        rows.append(row)
    return rows


def flatten_numbers(document: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a nested document as ``{"dotted.path": value}`` (booleans and lists skipped).

    Used for the data-quality (``quality``) and drift (``drift``) sub-documents
    of ``processing_metadata``, whatever figures a data-quality gate records there.
    """
    out: dict[str, float] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            out.update(flatten_numbers(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(document, (int, float)) and not isinstance(document, bool) and prefix:
        value = float(document)
        if value == value and abs(value) != float("inf"):  # NaN and infinities cannot be plotted
            out[prefix] = value
    return out
