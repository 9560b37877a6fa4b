"""What happened on each logical date, and which model version was deployed when: documents in, rows out.

Pure functions over the documents :func:`daily_mlops.storage.reports.load_report_data`
returns (standard library and :mod:`daily_mlops.reporting.evidence` only). A *day row* is one line of the report's table
and the source of its attempts and deployment figures.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from daily_mlops.reporting.evidence import comparison_lines, evaluation_gap_text

__all__ = ["GATE_CHECKS", "day_rows", "deployed_on", "deployment_intervals", "drift_lines", "gate_check_text",
           "gate_verdict"]

#: How the report names a gate check (``processing_metadata.quality.worst[].check``), and the side of its floor
#: that fails (:func:`daily_mlops.ml.quality.gate`).
GATE_CHECKS = {"diagnostic_validity": ("SDMetrics data validity", "<"),
               "diagnostic_structure": ("SDMetrics data structure", "<"),
               "unseen_share": ("unseen-category share", ">"), "null_increase": ("null-share increase", ">")}


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
        for this, following in itertools.zip_longest(events, events[1:]):
            intervals.append({"model_version": int(this["model_version"]), "start": this["logical_date"],
                              "end": following["logical_date"] if following else None})
    return sorted(intervals, key=lambda i: (i["start"], i["model_version"]))


def deployed_on(intervals: list[dict[str, Any]], day: str) -> int | None:
    """The version deployed at the end of logical date ``day`` (``None`` before the first deployment)."""
    live = [i for i in intervals if i["start"] <= day and (i["end"] is None or i["end"] > day)]
    return max(live, key=lambda i: i["start"])["model_version"] if live else None


def gate_verdict(batch: dict[str, Any] | None) -> str | None:
    """The data-quality gate's recorded verdict of a ``processing_metadata`` document: ``passed``, ``failed`` or
    ``None`` (the gate recorded none: it did not run, or the batch predates it). Never decided again here."""
    status = ((batch or {}).get("quality") or {}).get("status")
    return status if status in ("passed", "failed") else None


def gate_check_text(check: dict[str, Any]) -> str:
    """One recorded gate check: ``duration_in_month: null-share increase 0.793 > floor 0.1``."""
    name = str(check.get("check"))
    words, fails = GATE_CHECKS.get(name, (name, ">"))
    relation = fails if check.get("failed") else {"<": ">=", ">": "<="}[fails]
    value, floor = check.get("value"), check.get("floor")
    value = f"{value:.3f}" if isinstance(value, (int, float)) else "-"
    floor = f"{floor:g}" if isinstance(floor, (int, float)) else "-"
    return f"{check.get('column', '?')}: {words} {value} {relation} floor {floor}"


def drift_lines(drift: dict[str, Any] | None) -> list[str]:
    """The recorded worst drift columns, ``credit_amount 0.16 (KS)``, lowest first (1 = like the reference).

    KS: SDMetrics KSComplement, TV: TVComplement (the metric recorded with the column)."""
    short = {"KSComplement": "KS", "TVComplement": "TV"}
    return [f"{w['column']} {w['score']:.2f}" + (f" ({short.get(w['metric'], w['metric'])})" if w.get("metric") else "")
            for w in (drift or {}).get("worst", []) if isinstance(w.get("score"), (int, float))]


def _gate_detail(batch: dict[str, Any] | None) -> list[str]:
    """The day table's gate cell: the verdict, then its failed checks, else the lowest-scoring drift columns."""
    verdict = gate_verdict(batch)
    if verdict is None or batch is None:  # a verdict implies a batch
        return ["no gate verdict recorded"]
    quality = batch["quality"]
    if verdict == "failed":
        failed = [gate_check_text(c) for c in quality.get("worst", []) if c.get("failed")]
        more = int(quality.get("failures") or len(failed)) - len(failed)
        return ["FAILED", *failed] + ([f"(+{more} more check(s) past the floor)"] if more > 0 else [])
    drift = drift_lines(batch.get("drift"))
    return ["passed"] + (["lowest drift: " + ", ".join(drift)] if drift else [])


def _outcome(row: dict[str, Any], deployment: dict[str, Any] | None) -> str:
    if row["stopped_by_gate"]:
        return ("stopped by the data-quality gate (worst columns: " + ", ".join(row["gate_columns"])
                + "); no model was judged, retrained or deployed on this batch")
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
        ``logical_date``; ``gate`` (the data-quality gate's recorded verdict,
        :func:`gate_verdict`), ``gate_detail`` (lines: the verdict, then its
        failed checks with their figures and floors, else the lowest drift
        columns), ``gate_columns`` (the columns of its failed checks) and
        ``stopped_by_gate`` (a failed verdict and no evaluation);
        ``champion_version`` and ``champion_f1`` (attempt 0,
        ``None`` when the day was not evaluated); ``f1_threshold`` (the F1 floor
        of that evaluation); ``attempts`` (retraining attempts, 0 to 3);
        ``challengers`` (versions they registered); ``best_f1``; ``alert``
        (an open ``MODEL_PERFORMANCE_FAILURE`` alert); ``approved_version``;
        ``deployment_status``; ``deployed_version`` (in place at the end of the
        day); ``evaluation_gap`` (the champion's ROC-AUC on the synthetic test
        split against the real holdout, :func:`~daily_mlops.reporting.evidence.evaluation_gap_text`;
        ``-`` when not recorded); ``outcome`` (one sentence) and ``comparisons`` (per challenger
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
        batch = next((b for b in data.get("processing", []) if b.get("logical_date") == day), None)
        row = {
            "logical_date": day,
            "gate": gate_verdict(batch),
            "gate_detail": _gate_detail(batch),
            "gate_columns": list(dict.fromkeys(c.get("column", "?") for c in ((batch or {}).get("quality") or {})
                                               .get("worst", []) if c.get("failed"))),
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
            "evaluation_gap": evaluation_gap_text(batch),
        }
        if alert is not None:
            row["best_f1"] = float(alert.get("f1_score", row["best_f1"] or 0.0))
            row["f1_threshold"] = alert.get("f1_threshold", row["f1_threshold"])
        # The gate recorded a failed verdict and no evaluation ran: the designed stop, not a crash.
        row["stopped_by_gate"] = row["gate"] == "failed" and champion is None and not evals
        row["outcome"] = _outcome(row, deployment)
        row["comparisons"] = [f"v{e['model_version']}: " + "; ".join(comparison_lines(
            {key: e.get(key) for key in ("champion", "real")})) for e in evals if e.get("champion") or e.get("real")]
        rows.append(row)
    return rows

