"""The pure decisions of the daily loop: standard library (and the project's exceptions) only, no I/O.

Every choice the DAGs and the CLI make from numbers lives here, so each can be
tested as a table (``tests/unit/test_decisions.py``):

* :func:`next_step`: after an evaluation, pass, retrain or alert;
* :func:`task_for_step`: which task of the evaluation DAG a step leads to
  (:func:`retrain_task_id`, :func:`check_task_id`: the task ids of the ``attempt_<n>`` task groups);
* :func:`choose_parent`: which version a retraining attempt starts from;
* :func:`carry_best`: the XCom result an evaluation passes down the chain (best version so far,
  versions tried, attempt count); :func:`last_result`: the newest of them;
* :func:`challenger_status`: the approve/reject rule for a retrained version;
* :func:`choose_approved_version`: which evaluation of a day is deployed;
* :func:`day_as_designed`: whether a day's DAG runs ended as designed (the CLI's exit code);
* :func:`validate_f1_threshold`: the one check of an F1 threshold, wherever it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daily_mlops.errors import ConfigError

__all__ = [
    "ALERT",
    "ALERT_TASK",
    "F1_THRESHOLD_MAX",
    "CHECK_TASK",
    "EVALUATE_TASK",
    "PASS",
    "PASS_TASK",
    "RETRAIN",
    "RETRAIN_TASK",
    "attempt_group_id",
    "carry_best",
    "challenger_status",
    "check_task_id",
    "choose_approved_version",
    "choose_parent",
    "day_as_designed",
    "last_result",
    "next_step",
    "passes",
    "result_task_id",
    "retrain_task_id",
    "task_for_step",
    "validate_f1_threshold",
]

#: Step names returned by :func:`next_step`.
PASS, RETRAIN, ALERT = "pass", "retrain", "alert"
#: Task ids of the evaluation DAG's two ends.
PASS_TASK, ALERT_TASK = "send_evaluation_results", "send_alert"
#: The champion's evaluation and its check (attempt 0, outside any task group).
EVALUATE_TASK, CHECK_TASK = "evaluate_model", "check_model_performance"
#: The two tasks of each retraining attempt's task group ``attempt_<n>``.
RETRAIN_TASK = "retrain_model"
#: Registry statuses a version may be deployed from.
DEPLOYABLE = ("approved", "deployed")
#: Largest accepted F1 threshold. F1 is at most 1, so a threshold in (1, 2] never passes:
#: the documented way to force the retry-and-alert path (the DAG param's ``maximum``).
F1_THRESHOLD_MAX = 2.0


def validate_f1_threshold(value: Any, source: str) -> float:
    """An F1 threshold as a float when it is finite and in [0, :data:`F1_THRESHOLD_MAX`].

    The one check shared by ``MLOPS_F1_THRESHOLD`` (the Settings validator),
    the evaluation DAG's param ``f1_threshold`` (its JSON schema cannot refuse
    NaN: every comparison with NaN is false, so ``minimum``/``maximum`` pass it)
    and the CLI's ``--f1-threshold``. A NaN threshold would fail every
    evaluation and cause needless retraining and an alert.

    Parameters
    ----------
    value : Any
        The threshold (a fraction; above 1 forces the alert path).
    source : str
        Where it came from, named in the message, e.g. ``"MLOPS_F1_THRESHOLD"``,
        ``"DAG param f1_threshold"`` or ``"--f1-threshold"``.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        When the value is not a number (bool included), is NaN or infinite, or
        lies outside [0, 2]; the message names ``source`` and the fix.
    """
    fix = f"use a number from 0 to {F1_THRESHOLD_MAX:g} (above 1 forces the retrain-and-alert path)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}={value!r} is not a number; {fix}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{source}={value!r} is not a finite number; {fix}")
    if not 0.0 <= number <= F1_THRESHOLD_MAX:
        raise ConfigError(f"{source}={value!r} is out of range; {fix}")
    return number


def passes(f1: float, f1_threshold: float) -> bool:
    """The F1 bar: ``f1 >= f1_threshold`` (both fractions; a threshold above 1 never passes)."""
    return float(f1) >= float(f1_threshold)


def next_step(f1: float, f1_threshold: float, attempt: int, max_attempts: int) -> str:
    """Decide what follows an evaluation: ``"pass"``, ``"retrain"`` or ``"alert"``.

    Parameters
    ----------
    f1 : float
        F1 of the positive class in [0, 1] of the model just evaluated.
    f1_threshold : float
        F1 the model must reach (``MLOPS_F1_THRESHOLD`` or the run's param).
    attempt : int
        Retraining attempts made so far (0 after the champion's evaluation).
    max_attempts : int
        Attempts allowed (``MLOPS_MAX_RETRAIN_ATTEMPTS``, at most 3).
    """
    if passes(f1, f1_threshold):
        return PASS
    return RETRAIN if attempt < max_attempts else ALERT


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


def result_task_id(attempt: int) -> str:
    """Task id whose XCom holds the evaluation result of ``attempt``: ``evaluate_model`` or the retrain task."""
    return EVALUATE_TASK if attempt == 0 else retrain_task_id(attempt)


def task_for_step(step: str, attempt: int, max_unrolled: int) -> str:
    """The evaluation DAG task a step leads to after the evaluation of ``attempt``.

    ``max_unrolled`` is the number of retraining attempts the DAG unrolls; a
    ``"retrain"`` past it leads to the alert.

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


def carry_best(result: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The XCom result an evaluation passes on: ``result`` plus what the chain has seen so far.

    Each evaluation task hands its result to the next task only, so the
    result carries the whole story of the day's DAG run: ``best_version`` and
    ``best_f1`` (highest F1 so far, ties to the newer version, as
    :func:`choose_parent`), ``versions_tried`` (in attempt order) and
    ``attempt`` (retraining attempts made: 0 for the champion).

    Parameters
    ----------
    result : mapping
        The evaluation just made: ``model_version``, ``f1`` (in [0, 1]), ``attempt``.
    previous : mapping, optional
        The chain result of the evaluation before it (``None`` for the champion).

    Raises
    ------
    ValueError
        When ``result`` is not the attempt right after ``previous``.
    """
    version, attempt = int(result["model_version"]), int(result["attempt"])
    if previous is None:
        best: Mapping[str, Any] = result
        tried = [version]
    else:
        if attempt != int(previous["attempt"]) + 1:
            raise ValueError(f"attempt {attempt} does not follow attempt {previous['attempt']}")
        best = choose_parent([{"model_version": previous["best_version"], "f1": previous["best_f1"]}, result])
        tried = [*(int(v) for v in previous["versions_tried"]), version]
    return {**result, "best_version": int(best["model_version"]), "best_f1": float(best["f1"]),
            "versions_tried": tried}


def last_result(results: Iterable[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
    """The chain result with the most attempts among ``results`` (``None`` for skipped tasks), or ``None``."""
    tried = [r for r in results if r]
    return max(tried, key=lambda r: int(r["attempt"])) if tried else None


def challenger_status(f1: float, f1_threshold: float, current: str) -> str | None:
    """The registry status a retrained version moves to after its evaluation, or ``None`` to stay.

    A candidate that reaches the bar is approved, one that does not is
    rejected; a rejected version that a rerun with a lower bar passes is
    approved. Approved, deployed and retired versions are never moved here.
    """
    ok = passes(f1, f1_threshold)
    if ok and current in ("candidate", "rejected"):
        return "approved"
    if not ok and current == "candidate":
        return "rejected"
    return None


def choose_approved_version(
    evaluations: Sequence[Mapping[str, Any]], f1_threshold: float, statuses: Mapping[int, str]
) -> Mapping[str, Any] | None:
    """The evaluation of a day whose version is deployed: the latest attempt that passed and is deployable.

    Parameters
    ----------
    evaluations : sequence of mapping
        ``performance_metrics`` documents of one DAG run (``f1``, ``attempt``, ``model_version``).
    statuses : mapping of int to str
        Registry status per model version.

    Returns
    -------
    mapping or None
        ``None`` when no evaluation passed.
    """
    passing = [e for e in sorted(evaluations, key=lambda e: e["attempt"])
               if passes(e["f1"], f1_threshold) and statuses.get(int(e["model_version"])) in DEPLOYABLE]
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
