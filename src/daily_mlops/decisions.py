"""The pure decisions of the daily loop: standard library (and the project's exceptions) only, no I/O.

Every choice the DAGs and the CLI make from numbers lives here, so each can be
tested as a table (``tests/unit/test_decisions.py``):

* :func:`next_step`: after an evaluation, pass, retrain or alert;
* :func:`task_for_step`: which task of the evaluation DAG a step leads to (the champion's recalibration,
  :func:`retrain_task_id`, :func:`check_task_id`: the task ids of the ``attempt_<n>`` task groups);
* :func:`choose_parent`: which version a retraining attempt starts from (best validation F1);
* :func:`carry_best`: the XCom result an evaluation passes down the chain (best version so far,
  versions tried, attempt count, the baseline); :func:`last_result`: the newest of them;
* :func:`judge_candidate`: the three comparisons a candidate must pass (F1 floor, the paired interval
  against its baseline, non-inferiority on the real holdout; after TFX's Evaluator);
* :func:`challenger_status`: the approve/reject rule for a candidate version;
* :func:`step_after`: :func:`next_step` for a chain result (what the DAG's branch calls);
* :func:`choose_approved_version`: which evaluation of a day is deployed;
* :func:`day_as_designed`: whether a day's DAG runs ended as designed (the CLI's exit code);
* :func:`day_outcome`: which of the six ends a day reached (:data:`DAY_OUTCOMES`), the one rule the run
  summary and the day's story render, both through :func:`day_outcome_text`;
* :func:`previous_day_pending`: what of the previous logical date still runs (a day starts when nothing does);
* :func:`previous_day_deadlock`: when waiting for it can never end (an earlier run queued behind this one).

The F1 floor's own rules (the one check of a threshold, ``auto`` resolved from the bootstrap model's F1)
belong to the setting: :mod:`daily_mlops.settings.thresholds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "ALERT",
    "ALERT_TASK",
    "CHAMPION",
    "CHECK_TASK",
    "DAY_OUTCOMES",
    "FINISHED_RUN_STATES",
    "EVALUATE_TASK",
    "FINETUNED",
    "PASS",
    "PASS_TASK",
    "RECALIBRATE_TASK",
    "RECALIBRATED",
    "RECALIBRATION_GROUP",
    "RETRAIN",
    "RETRAIN_TASK",
    "attempt_group_id",
    "carry_best",
    "chain_position",
    "challenger_status",
    "check_task_id",
    "choose_approved_version",
    "choose_parent",
    "day_as_designed",
    "DAY_OUTCOME_TEXTS",
    "day_outcome",
    "day_outcome_text",
    "previous_day_deadlock", "previous_day_pending",
    "judge_candidate",
    "last_result",
    "next_step",
    "passes",
    "result_task_id",
    "result_task_ids",
    "retrain_task_id",
    "step_after",
    "task_for_step",
]

#: Step names returned by :func:`next_step`.
PASS, RETRAIN, ALERT = "pass", "retrain", "alert"
#: Task ids of the evaluation DAG's two ends.
PASS_TASK, ALERT_TASK = "send_evaluation_results", "send_alert"
#: The champion's evaluation and its check (attempt 0, outside any task group).
EVALUATE_TASK, CHECK_TASK = "evaluate_model", "check_model_performance"
#: The two tasks of each retraining attempt's task group ``attempt_<n>``.
RETRAIN_TASK = "retrain_model"
#: The task group that recalibrates the champion before any fine-tuning, and its task.
RECALIBRATION_GROUP = "recalibration"
RECALIBRATE_TASK = f"{RECALIBRATION_GROUP}.recalibrate_champion"
#: Registry statuses a version may be deployed from.
DEPLOYABLE = ("approved", "deployed")
#: How a day can end, in the order :func:`day_outcome` checks them.
GATE_FAILED, ALERTED, DEPLOYED, ALREADY_DEPLOYED, SUPERSEDED, NO_DEPLOYMENT = (
    "gate_failed", "alert", "deployed", "already_deployed", "superseded", "none")
DAY_OUTCOMES = (GATE_FAILED, ALERTED, DEPLOYED, ALREADY_DEPLOYED, SUPERSEDED, NO_DEPLOYMENT)
#: Slack of the champion comparison, so that ``0.46 - 0.36 >= 0.10`` holds in floating point.
_EPSILON = 1e-12


def passes(f1: float, f1_threshold: float) -> bool:
    """The F1 bar: ``f1 >= f1_threshold`` (both fractions; a threshold above 1 never passes)."""
    return float(f1) >= float(f1_threshold)


def judge_candidate(
    *, f1: float, f1_threshold: float, champion_version: int, f1_difference: Mapping[str, Any],
    min_improvement: float = 0.0, real_difference: Mapping[str, Any] | None = None, real_margin: float = 0.0,
) -> dict[str, Any]:
    """The three comparisons a candidate model version must pass, as recorded on it.

    After TFX's Evaluator (https://www.tensorflow.org/tfx/model_analysis/model_validations), with the
    noise of each comparison taken into account:

    * **floor** (value threshold, a point estimate): the candidate's validation F1 reaches ``f1_threshold``.
      It guards against deploying a model below the level the business accepts.
    * **champion** (change threshold): the paired bootstrap 95% interval of validation F1, candidate minus
      baseline (:func:`daily_mlops.ml.comparison.paired_difference`), lies above ``min_improvement``: its
      lower bound exceeds it. It guards against promoting on sampling noise: a challenger whose gain is
      within the noise of the day's rows stays a challenger.
    * **real** (non-inferiority on real rows): the paired interval of real-holdout ROC-AUC, candidate minus
      baseline, has its lower bound at ``-real_margin`` or above. It guards against a version that learnt
      the synthetic batch (a drifted or mislabelled one) at the expense of real borrowers. Skipped (passed)
      when there is no real holdout.

    Parameters
    ----------
    f1 : float
        The candidate's F1 (positive class, in [0, 1]) on the day's validation split.
    f1_threshold : float
        The F1 floor in effect (resolved; see :func:`daily_mlops.settings.thresholds.resolve_f1_threshold`).
    champion_version : int
        The baseline: the deployed champion for its recalibration, the recalibrated champion for a fine-tuned
        challenger (thresholds chosen on the same calibration rows).
    f1_difference, real_difference : mapping
        :func:`daily_mlops.ml.comparison.paired_difference` results (``delta``, ``interval``, ...).
    min_improvement, real_margin : float
        ``MLOPS_MIN_IMPROVEMENT`` (or the DAG param) and ``MLOPS_REAL_MARGIN``, fractions in [0, 1].

    Returns
    -------
    dict
        ``floor`` (``value``, ``threshold``, ``passed``, ``split``), ``champion`` (the F1 difference with
        ``champion_version``, ``champion_f1``, ``f1``, ``min_improvement``, ``passed``, ``split``), ``real``
        (the ROC-AUC difference with ``margin``, ``passed``, ``split``; ``None`` without a holdout) and
        ``passed`` (all three). Plain Python values.
    """
    floor = {"value": float(f1), "threshold": float(f1_threshold), "passed": passes(f1, f1_threshold),
             "split": "validation"}
    low = float(f1_difference["interval"][0])
    champion = {**dict(f1_difference), "champion_version": int(champion_version),
                "champion_f1": float(f1_difference["champion"]), "f1": float(f1_difference["challenger"]),
                "min_improvement": float(min_improvement), "split": "validation",
                "passed": low > float(min_improvement) - _EPSILON and float(f1_difference["delta"]) > 0.0}
    real = None
    if real_difference is not None:
        real = {**dict(real_difference), "champion_version": int(champion_version), "margin": float(real_margin),
                "split": "real holdout",
                "passed": float(real_difference["interval"][0]) >= -float(real_margin) - _EPSILON}
    passed = floor["passed"] and champion["passed"] and (real is None or real["passed"])
    return {"floor": floor, "champion": champion, "real": real, "passed": bool(passed)}


def next_step(passed: bool, attempt: int, max_attempts: int) -> str:
    """Decide what follows an evaluation: ``"pass"``, ``"retrain"`` or ``"alert"``.

    Parameters
    ----------
    passed : bool
        Whether the evaluation passed: the champion's validation F1 reached the floor, or a candidate passed
        :func:`judge_candidate`.
    attempt : int
        Fine-tuning attempts made so far (0 after the champion's evaluation and its recalibration).
    max_attempts : int
        Attempts allowed (``MLOPS_MAX_RETRAIN_ATTEMPTS``, at most 3).
    """
    if passed:
        return PASS
    return RETRAIN if attempt < max_attempts else ALERT


def step_after(result: Mapping[str, Any], max_attempts: int) -> str:
    """:func:`next_step` for a chain result of :func:`carry_best` (the evaluation DAG's branches call it).

    Uses what the evaluation recorded: ``passed`` and ``attempt``.
    """
    return next_step(bool(result["passed"]), int(result["attempt"]), max_attempts)


def attempt_group_id(attempt: int) -> str:
    """Task group of retraining attempt ``attempt`` (1-based): ``attempt_<n>``."""
    if attempt < 1:
        raise ValueError(f"retraining attempts count from 1 (got {attempt})")
    return f"attempt_{attempt}"


def retrain_task_id(attempt: int) -> str:
    """Task id of retraining attempt ``attempt`` (1-based): ``attempt_<n>.retrain_model``."""
    return f"{attempt_group_id(attempt)}.{RETRAIN_TASK}"


def check_task_id(attempt: int) -> str:
    """Task id of the branch after the evaluation of ``attempt``: ``check_model_performance`` for the
    champion (0), ``attempt_<n>.check_model_performance`` for retraining attempt ``n``."""
    return CHECK_TASK if attempt == 0 else f"{attempt_group_id(attempt)}.{CHECK_TASK}"


def result_task_ids(max_attempts: int) -> list[str]:
    """Every task whose XCom holds an evaluation result, in chain order: champion, recalibration, attempts."""
    return [EVALUATE_TASK, RECALIBRATE_TASK, *(retrain_task_id(a) for a in range(1, max_attempts + 1))]


def result_task_id(attempt: int) -> str:
    """Task id whose XCom holds the evaluation result of ``attempt``: ``evaluate_model`` or the retrain task."""
    return EVALUATE_TASK if attempt == 0 else retrain_task_id(attempt)


def task_for_step(step: str, attempt: int, max_unrolled: int, *, recalibrated: bool = True) -> str:
    """The evaluation DAG task a step leads to after the evaluation of ``attempt``.

    ``max_unrolled`` is the number of retraining attempts the DAG unrolls; a
    ``"retrain"`` past it leads to the alert. ``recalibrated`` is False only
    after the champion's own evaluation: its ``"retrain"`` leads to the
    recalibration of the champion (:data:`RECALIBRATE_TASK`), the cheapest fix, before any fine-tuning.

    Raises
    ------
    ValueError
        For an unknown step.
    """
    if step == PASS:
        return PASS_TASK
    if step == ALERT:
        return ALERT_TASK
    if step == RETRAIN:
        if not recalibrated:
            return RECALIBRATE_TASK
        return retrain_task_id(attempt + 1) if attempt < max_unrolled else ALERT_TASK
    raise ValueError(f"unknown step {step!r}; expected {PASS!r}, {RETRAIN!r} or {ALERT!r}")


def choose_parent(results: Iterable[Mapping[str, Any] | None]) -> Mapping[str, Any]:
    """The evaluation result a retraining attempt starts from: highest F1, ties to the newer version.

    ``results`` are XCom results (``None`` for skipped tasks are ignored).

    Raises
    ------
    ValueError
        When there is no result at all.
    """
    tried = [r for r in results if r]
    if not tried:
        raise ValueError("no earlier evaluation to start a retraining attempt from")
    return max(tried, key=lambda r: (r["f1"], r["model_version"]))


#: ``stage`` of a chain result: the champion as deployed, its recalibration, a fine-tuned challenger.
CHAMPION, RECALIBRATED, FINETUNED = "champion", "recalibrated", "finetuned"


def chain_position(result: Mapping[str, Any]) -> int:
    """Where an evaluation stands in the day's chain: 0 champion, 1 its recalibration, ``1 + n`` attempt ``n``."""
    attempt = int(result["attempt"])
    if attempt:
        return 1 + attempt
    return 1 if result.get("stage") == RECALIBRATED else 0


def carry_best(result: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The XCom result an evaluation passes on: ``result`` plus what the chain has seen so far.

    Each evaluation task hands its result to the next task only, so the
    result carries the whole story of the day's DAG run: ``best_version`` and
    ``best_f1`` (highest validation F1 so far, ties to the newer version, as
    :func:`choose_parent`: the parent of the next fine-tuning attempt),
    ``versions_tried`` (in chain order), ``attempt`` (fine-tuning attempts
    made: 0 for the champion and its recalibration), ``champion_version`` /
    ``champion_f1`` (the deployed champion's evaluation, attempt 0) and
    ``baseline_version``: what a fine-tuned challenger is compared with, the
    recalibrated champion (threshold chosen on the same calibration rows). A
    retry of a task reads them from the previous result again, so the
    baseline never moves within a DAG run.

    Parameters
    ----------
    result : mapping
        The evaluation just made: ``model_version``, ``f1`` (validation, in [0, 1]), ``attempt``, ``stage``.
    previous : mapping, optional
        The chain result of the evaluation before it (``None`` for the champion).

    Raises
    ------
    ValueError
        When ``result`` does not come right after ``previous`` in the chain (:func:`chain_position`).
    """
    version = int(result["model_version"])
    if previous is None:
        best: Mapping[str, Any] = result
        tried = [version]
        champion = {"champion_version": version, "champion_f1": float(result["f1"]), "baseline_version": version}
    else:
        if chain_position(result) != chain_position(previous) + 1:
            raise ValueError(f"attempt {result['attempt']} ({result.get('stage', FINETUNED)}) does not follow "
                             f"attempt {previous['attempt']} ({previous.get('stage', CHAMPION)})")
        best = choose_parent([{"model_version": previous["best_version"], "f1": previous["best_f1"]}, result])
        tried = [*(int(v) for v in previous["versions_tried"]), version]
        first = int(previous["versions_tried"][0])
        champion = {"champion_version": int(previous.get("champion_version", first)),
                    "champion_f1": float(previous.get("champion_f1", previous["best_f1"])),
                    "baseline_version": version if result.get("stage") == RECALIBRATED
                    else int(previous.get("baseline_version", first))}
    return {**result, "best_version": int(best["model_version"]), "best_f1": float(best["f1"]),
            "versions_tried": tried, **champion}


def last_result(results: Iterable[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
    """The chain result furthest down the chain among ``results`` (``None`` for skipped tasks), or ``None``."""
    tried = [r for r in results if r]
    return max(tried, key=chain_position) if tried else None


def challenger_status(passed: bool, current: str) -> str | None:
    """The registry status a candidate version moves to after its evaluation, or ``None`` to stay.

    A candidate that passed :func:`judge_candidate` is approved; one that did
    not is rejected. A rejected version that a rerun passes is approved.
    Approved, deployed and retired versions are never moved here.
    """
    if passed and current in ("candidate", "rejected"):
        return "approved"
    if not passed and current == "candidate":
        return "rejected"
    return None


def choose_approved_version(
    evaluations: Sequence[Mapping[str, Any]], statuses: Mapping[int, str]
) -> Mapping[str, Any] | None:
    """The evaluation of a day whose version is deployed: the last in the chain that passed and is deployable.

    Parameters
    ----------
    evaluations : sequence of mapping
        ``performance_metrics`` documents of one DAG run (``passed``, ``attempt``, ``stage``, ``model_version``).
    statuses : mapping of int to str
        Registry status per model version.

    Returns
    -------
    mapping or None
        ``None`` when no evaluation passed.
    """
    passing = [e for e in sorted(evaluations, key=chain_position)
               if e.get("passed") and statuses.get(int(e["model_version"])) in DEPLOYABLE]
    return passing[-1] if passing else None


def day_as_designed(runs: Mapping[str, tuple[str, Iterable[str]]], expected_dags: Sequence[str],
                    evaluation_dag: str) -> bool:
    """Whether a day's DAG runs ended as designed (``daily-mlops run`` exits 0) or not (exit 1).

    Parameters
    ----------
    runs : mapping of dag_id to (state, failed task ids)
        The day's DAG runs.
    expected_dags : sequence of str
        Every DAG that must have run.
    evaluation_dag : str
        The DAG whose ``send_alert`` may fail: an alert day is an outcome, not an error.
    """
    if set(runs) != set(expected_dags):
        return False
    for dag_id, (state, failed) in runs.items():
        allowed = {ALERT_TASK} if dag_id == evaluation_dag else set()
        failed = set(failed)
        if failed - allowed:
            return False
        if state == "failed" and not failed & allowed:
            return False
        if state not in ("success", "failed"):
            return False
    return True


def day_outcome(summary: Mapping[str, Any]) -> str:
    """How one day ended: one of :data:`DAY_OUTCOMES`, from its run summary.

    Parameters
    ----------
    summary : mapping
        The day's summary (:func:`daily_mlops.orchestration.runner.summarise_day`); the keys read are
        ``quality_status``, ``alert`` and ``deployment_status``.

    Returns
    -------
    str
        ``gate_failed`` when the data-quality gate recorded a failed verdict (it wins: no model was judged),
        else ``alert`` when the evaluation raised one, else the deployment's status (``deployed``,
        ``already_deployed``, ``superseded``), else ``none`` (no deployment run recorded anything, e.g. a
        deployment that was rejected or refused).
    """
    if summary.get("quality_status") == "failed":
        return GATE_FAILED
    if summary.get("alert"):
        return ALERTED
    status = summary.get("deployment_status")
    if status in (DEPLOYED, ALREADY_DEPLOYED, SUPERSEDED):
        return status
    return NO_DEPLOYMENT


#: How each of :data:`DAY_OUTCOMES` reads, as ``(cell, sentence)``: the outcome cell of ``daily-mlops run``'s
#: summary table (rich markup) and the day's one sentence (the task log, ``explain``, the live progress).
#: The fields are those :func:`day_outcome_text` fills in.
DAY_OUTCOME_TEXTS: dict[str, tuple[str, str]] = {
    GATE_FAILED: ("[red]STOPPED by the data-quality gate[/]: {reason}; no model judged, {live}",
                  "the data-quality gate stopped {day}: {reason}; {live}"),
    ALERTED: ("[red]ALERT[/] {alert_type}: {versus} after {attempts} retraining attempt(s), versions tried "
              "{tried}; nothing deployed, {live}",
              "evaluation for {day} ended in an alert ({alert_type}); {live}"),
    DEPLOYED: ("[green]deployed v{version}[/]", "{day}: v{version} approved and deployed{evidence}"),
    ALREADY_DEPLOYED: ("[green]v{version} already deployed (no-op)[/]",
                       "{day}: v{version} approved; it was already deployed{evidence}"),
    SUPERSEDED: ("[yellow]v{version} not deployed: a later day's version is in place[/]",
                 "{day}: v{version} approved; not deployed, a later day's version is in place"),
    NO_DEPLOYMENT: ("[yellow]no deployment[/]; {live}", "{day}: nothing deployed; {live}"),
}


def day_outcome_text(summary: Mapping[str, Any], *, sentence: bool, live: str) -> str:
    """How a day ended, in words: the :data:`DAY_OUTCOME_TEXTS` entry of :func:`day_outcome`, filled in.

    Parameters
    ----------
    summary : mapping
        The day's summary (:func:`daily_mlops.orchestration.runner.summarise_day`); read: ``logical_date``,
        ``quality_reason``, ``alert_type``, ``best_f1`` and ``f1_threshold`` (the alert's
        ``best F1 0.5000 < threshold 0.6000``, left out when either is missing), ``retrain_attempts``,
        ``versions_tried``, ``deployed_version`` and ``evidence`` (why the deployed version was approved).
    sentence : bool
        True: the day's sentence; False: the summary table's cell (rich markup).
    live : str
        What stays deployed, e.g. ``"the deployed model stays v5"``
        (:func:`daily_mlops.loop.deployment.stays_deployed`).
    """
    best, threshold = summary.get("best_f1"), summary.get("f1_threshold")
    fields = {
        "day": summary.get("logical_date"), "reason": summary.get("quality_reason"), "live": live,
        "alert_type": summary.get("alert_type") or "", "attempts": summary.get("retrain_attempts", 0),
        "tried": ", ".join(str(v) for v in summary.get("versions_tried", [])),
        "versus": f"best F1 {best:.4f} < threshold {threshold:.4f}" if None not in (best, threshold) else "",
        "version": summary.get("deployed_version"),
        "evidence": f" ({summary['evidence']})" if summary.get("evidence") else "",
    }
    return DAY_OUTCOME_TEXTS[day_outcome(summary)][int(sentence)].format_map(fields)


#: States that end a DAG run (Airflow's ``DagRunState.SUCCESS`` and ``FAILED``).
FINISHED_RUN_STATES = ("success", "failed")


def previous_day_pending(data_run_state: str | None, downstream: Mapping[str, tuple[int, int]], *,
                         wait_task_state: str | None = None) -> list[str]:
    """What of the previous logical date still runs; an empty list lets the next logical date start.

    Day d+1's champion is what day d deployed, so day d+1 starts only when day d's
    ``data_pipeline_dag`` run has finished and so has every run its trigger tasks created (evaluation,
    deployment) at its logical date. A data run stopped before its trigger tasks (the data-quality gate)
    has no downstream runs: it is settled once it finished.

    Parameters
    ----------
    data_run_state : str or None
        State of the previous ``data_pipeline_dag`` run (``queued``, ``running``, ``success``, ``failed``);
        ``None`` when there is none (the first logical date): nothing is pending.
    downstream : mapping of dag_id to (int, int)
        Per downstream DAG, the number of its runs at the previous logical date and how many of them are
        finished (:data:`FINISHED_RUN_STATES`).
    wait_task_state : str, optional
        State of the previous data run's own ``wait_for_previous_day`` task when known (``daily-mlops run``
        reads it; in Airflow ``depends_on_past`` checks it): anything but ``success`` / ``skipped`` means that
        day never started its work, so its own previous day may still be running.

    Returns
    -------
    list of str
        One phrase per pending thing, e.g. ``"model_deployment_pipeline: 1 of 1 run(s) not finished"``.
    """
    if data_run_state is None:
        return []
    pending = []
    if data_run_state not in FINISHED_RUN_STATES:
        pending.append(f"its data_pipeline_dag run is {data_run_state}")
    if wait_task_state is not None and wait_task_state not in ("success", "skipped"):
        pending.append(f"its wait_for_previous_day task is {wait_task_state}, so it never started")
    for dag_id, (runs, finished) in downstream.items():
        if finished < runs:
            pending.append(f"{dag_id}: {runs - finished} of {runs} run(s) not finished")
    return pending


def previous_day_deadlock(previous_run_id: str, previous_state: str | None, previous_run_type: str | None,
                          run_type: str | None) -> str | None:
    """Why waiting for the previous logical date can never end, or ``None`` when it can.

    ``data_pipeline_dag`` has ``max_active_runs=1``: while this run is active, an earlier run that is still
    ``queued`` cannot start, so this run's wait would only end at the sensor's timeout (both runs stuck).
    That happens when an earlier date is triggered after a later run started (for example the scheduler's
    own run of today, then a manual run of an older date). Backfill runs ignore ``max_active_runs``
    (Airflow 3 backfills), so a queued backfill run, or a wait inside a backfill, is not a deadlock.

    Parameters
    ----------
    previous_run_id : str
        The previous ``data_pipeline_dag`` run's id, named in the message.
    previous_state, previous_run_type : str or None
        Its state (``queued``, ``running``, ...) and run type (``scheduled``, ``manual``, ``backfill``, ...).
    run_type : str or None
        This run's type.

    Returns
    -------
    str or None
        The message the sensor fails with (it names the queued run and the fix), or ``None``.
    """
    if previous_state != "queued" or "backfill" in (previous_run_type, run_type):
        return None
    return (f"the previous logical date's data_pipeline_dag run {previous_run_id} is queued behind this run "
            "(max_active_runs=1), so it cannot start before this run ends and this day cannot run before it: "
            "this run stops here, nothing was written; once that run has finished, clear this run "
            "(Airflow UI: Clear) to run this day in order")
