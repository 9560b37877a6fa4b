"""``daily-mlops explain DATE``: one logical date's story, assembled from what the DAGs recorded.

:func:`explain_day` is pure: it takes the documents
:func:`daily_mlops.storage.reports.load_day_records` read (the batch and the
gate's verdict, the evaluations of the day's newest evaluation DAG run, the
approval or the alert, the deployment events, the registry's status history)
and returns one JSON-able dict; the CLI renders it as text or prints it as
JSON. Nothing is decided again here: every verdict (``passed``, ``status``)
and every reason is the one recorded; a piece that was not recorded is named
in ``missing``. The comparisons read as :mod:`daily_mlops.reporting.evidence`
writes them everywhere else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from daily_mlops.errors import NotFoundError

__all__ = ["CHECK_NAMES", "NO_EVALUATION", "explain_day", "version_in_place"]

#: What each recorded comparison of a candidate checks (``floor``, ``champion``, ``real``), for "why rejected".
CHECK_NAMES = {"floor": "the F1 floor", "champion": "the paired ΔF1 interval vs its baseline",
               "real": "the real-holdout guard"}
#: The missing piece named when the day has no evaluation DAG run in ``performance_metrics``.
NO_EVALUATION = "no evaluation run for this date"
#: The comparison fields a story keeps (the rest, e.g. ``method``, ``n_resamples``, stays in MongoDB).
_COMPARISON_KEYS = ("metric", "value", "threshold", "delta", "interval", "confidence_level", "champion_version",
                    "min_improvement", "margin", "split", "passed")
_FIDELITY_KEYS = ("tstr_roc_auc", "trtr_roc_auc", "ratio", "column_shapes", "column_pair_trends")


def _jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 strings and tuples as lists (what ``json.dumps`` then reads back)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _pick(doc: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    return {k: doc[k] for k in keys if k in doc} if doc else None


def _batch(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The batch as recorded by generate_data and check_data_quality (``processing_metadata``)."""
    from daily_mlops.ml.drift_scenarios import drift_summary

    if not doc:
        return None
    quality, drift = doc.get("quality") or {}, doc.get("drift") or {}
    gate = ({"status": quality.get("status"), "message": quality.get("message"),
             "failures": quality.get("failures"), "worst": list(quality.get("worst") or [])}
            if quality.get("status") else None)
    return {
        "batch_id": doc.get("batch_id"),
        "rows": doc.get("n_rows"),
        "drift_param": drift.get("param") or doc.get("drift_mode"),
        "status": doc.get("status"),
        "gate": gate,
        "drift": ({**{k: drift[k] for k in ("score", "min", "worst", "positive_rate", "reference_positive_rate")
                      if k in drift}, "summary": drift_summary(drift)} if drift.get("score") is not None else None),
        "fidelity": _pick(doc.get("fidelity"), _FIDELITY_KEYS),
    }


def _scores(doc: dict[str, Any]) -> dict[str, Any]:
    """An evaluation's validation (deciding), test and real-holdout figures."""
    from daily_mlops.reporting.evidence import evaluation_metrics

    test, real = evaluation_metrics(doc, "test"), evaluation_metrics(doc, "reference")
    return {
        "split": doc.get("split", "test"),
        "f1": doc.get("f1"),
        "roc_auc": doc.get("roc_auc"),
        "test": {k: test.get(k) for k in ("f1", "roc_auc")} if test else None,
        "real_holdout": {k: real.get(k) for k in ("f1", "roc_auc", "n_samples")} if real else None,
    }


def _registry_decision(version: dict[str, Any] | None, day: str) -> dict[str, Any] | None:
    """The newest approval or rejection of ``version`` recorded for ``day`` in its status history, or ``None``.

    ``status`` (``approved`` / ``rejected``), ``reason`` (the evaluation's own words, with the run id), ``at``.
    """
    moves = [e for e in (version or {}).get("status_history", [])
             if e.get("logical_date") == day and e.get("status") in ("approved", "rejected")]
    return {k: moves[-1].get(k) for k in ("status", "reason", "at")} if moves else None


def _evaluation(doc: dict[str, Any], version: dict[str, Any] | None, *, day: str, approved: int | None,
                champion: bool) -> dict[str, Any]:
    """One evaluation of the day: its scores, its recorded comparisons and verdict, the registry's reason."""
    from daily_mlops.reporting.evidence import comparison_lines

    number = int(doc["model_version"])
    comparisons = {k: _pick(doc[k], _COMPARISON_KEYS) or {} for k in ("floor", "champion", "real") if doc.get(k)}
    failed = [CHECK_NAMES[k] for k, c in comparisons.items() if c.get("passed") is False and not champion]
    if number == approved:
        verdict = "approved"
    elif champion:
        verdict = "passed" if doc.get("passed") else "below the floor"
    else:
        verdict = "passed, not chosen" if doc.get("passed") else "rejected"
    return {
        "model_version": number,
        "stage": doc.get("stage") or "champion",
        "lineage_kind": (version or {}).get("lineage_kind"),
        "parent_version": doc.get("parent_version"),
        "attempt": doc.get("attempt"),
        **_scores(doc),
        "f1_threshold": doc.get("f1_threshold"),
        "f1_threshold_note": doc.get("f1_threshold_note"),
        "passed": doc.get("passed"),
        "comparisons": comparisons,
        "lines": comparison_lines(comparisons),
        "verdict": verdict,
        "failed_checks": failed,
        "registry_status": (version or {}).get("status"),
        "decision": _registry_decision(version, day),
    }


def _alert(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The open alert (its ``candidates`` are the story's candidates, told from their evaluations)."""
    if not doc:
        return None
    return {"alert_type": doc.get("alert_type"), "severity": doc.get("severity"), "status": doc.get("status"),
            "message": doc.get("message"), "retry_attempts": doc.get("retry_attempts"),
            "versions_tried": doc.get("model_versions_tried")}


def _deployment(event: dict[str, Any]) -> dict[str, Any]:
    """One ``deployment_events`` document: what happened, to which version, by whom and why."""
    rollback = event.get("event_type") == "model_rolled_back"
    by = event.get("user") or event.get("reviewer") or event.get("dag_id") or (
        "unknown" if rollback else "the deployment DAG")
    return {
        "status": event.get("status"),
        "event_type": event.get("event_type"),
        "model_version": event.get("model_version"),
        "previous_version": event.get("previous_version", event.get("from_version")),
        "version_in_place": event.get("version_in_place"),
        "rollback": rollback,
        "by": by,
        "reason": event.get("reason"),
        "at": event.get("responded_at") or event.get("timestamp"),
    }


def version_in_place(records: dict[str, Any]) -> int | None:
    """The version in place after the date: that of the newest deployment event up to it (``records["in_place"]``).

    ``None`` when no deployment was recorded up to the date (also for an event that changed nothing and
    predates ``version_in_place``).
    """
    event = records.get("in_place")
    if not event:
        return None
    if event.get("version_in_place") is not None:
        return int(event["version_in_place"])
    return int(event["model_version"]) if event.get("status") == "deployed" else None


def explain_day(records: dict[str, Any], *, outcome: str | None = None) -> dict[str, Any]:
    """One logical date's story as one JSON-able dict (``json.loads(json.dumps(story)) == story``).

    Parameters
    ----------
    records : dict
        :func:`daily_mlops.storage.reports.load_day_records` of the date.
    outcome : str, optional
        One sentence on how the day ended (:func:`daily_mlops.orchestration.runner.day_story` of the day's
        summary, with :func:`version_in_place` as the version that stays deployed).

    Returns
    -------
    dict
        ``logical_date``, ``outcome``; ``batch`` (``rows``, ``drift_param``, ``gate``: the verdict with
        ``status``/``message``/``worst``, ``drift`` in brief, ``fidelity``; ``None`` without a batch);
        ``evaluation_run``; ``champion`` (attempt 0: validation ``f1`` with its ``floor``, ``test``,
        ``real_holdout``; ``None`` without an evaluation); ``candidates`` (each recalibrated or fine-tuned
        version in chain order: its scores, ``comparisons`` with the floor, the paired ΔF1 interval vs its
        baseline and the real-holdout guard, ``lines`` (their text), ``verdict``, ``failed_checks`` and the
        registry's ``decision``: status, reason, time); ``approved_version``; ``alert``; ``reviewer`` (a
        recorded rejection: ``answer``, ``reviewer``, ``at``; ``None`` otherwise); ``deployments``
        (deployed, already deployed, superseded, rejected by the reviewer, rolled back: ``by`` whom,
        ``reason``); ``version_in_place`` (after the day); ``missing`` (each piece not recorded, named, e.g.
        :data:`NO_EVALUATION`).

    Raises
    ------
    NotFoundError
        When nothing at all was recorded for the date (no batch, evaluation, alert or deployment).
    """
    from daily_mlops.decisions import chain_position

    day = records["logical_date"]
    batch, evaluations = _batch(records.get("batch")), list(records.get("evaluations") or [])
    deployments, alert = list(records.get("deployments") or []), records.get("alert")
    if batch is None and not evaluations and not deployments and not alert:
        raise NotFoundError(f"nothing was recorded for logical date {day}: no daily batch, evaluation, alert or "
                            f"deployment; run that day with `daily-mlops run --date {day}`")
    versions = {int(v["model_version"]): v for v in records.get("versions") or []}
    passed = records.get("passed") or {}
    approved = passed.get("approved_version")
    ordered = sorted(evaluations, key=chain_position)
    judged = [_evaluation(e, versions.get(int(e["model_version"])), day=day, approved=approved,
                          champion=chain_position(e) == 0) for e in ordered]
    champion = judged[0] if ordered and chain_position(ordered[0]) == 0 else None
    rejection = next((e for e in reversed(deployments) if e.get("status") == "rejected_by_reviewer"), None)

    missing = []
    gate_failed = bool(batch and batch["gate"] and batch["gate"]["status"] == "failed")
    if batch is None:
        missing.append("no daily batch for this date (data_pipeline_dag stored none)")
    elif batch["gate"] is None:
        missing.append("no data-quality verdict recorded (check_data_quality did not finish)")
    if not evaluations:
        missing.append(NO_EVALUATION + (": the data-quality gate stopped the day" if gate_failed else ""))
    elif champion is None:
        missing.append("no champion evaluation (attempt 0) in this run")
    if evaluations and approved is None and not alert:
        missing.append("no verdict recorded for the evaluation run (neither an approved version nor an alert)")
    if approved is not None and not deployments:
        missing.append(f"no deployment recorded for the approved v{approved}")
    return _jsonable({
        "logical_date": day,
        "outcome": outcome,
        "batch": batch,
        "evaluation_run": records.get("run_id"),
        "champion": champion,
        "candidates": judged[1:] if champion else judged,
        "approved_version": approved,
        "alert": _alert(alert),
        "reviewer": ({"answer": "rejected", "reviewer": rejection.get("reviewer"),
                      "model_version": rejection.get("model_version"), "at": rejection.get("responded_at")}
                     if rejection else None),
        "deployments": [_deployment(e) for e in deployments],
        "version_in_place": version_in_place(records),
        "missing": missing,
    })
