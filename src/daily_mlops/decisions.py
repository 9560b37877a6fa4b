"""The pure decisions of the daily loop: standard library (and the project's exceptions) only, no I/O.

Every choice the DAGs and the CLI make from numbers lives here, so each can be
tested as a table (``tests/unit/test_decisions.py``):

* :func:`next_step`: after an evaluation, pass, retrain or alert;
* :func:`task_for_step`: which task of the evaluation DAG a step leads to
  (:func:`retrain_task_id`, :func:`check_task_id`: the task ids of the ``attempt_<n>`` task groups);
* :func:`choose_parent`: which version a retraining attempt starts from;
* :func:`carry_best`: the XCom result an evaluation passes down the chain (best version so far,
  versions tried, attempt count); :func:`last_result`: the newest of them;
* :func:`compare_challenger`: the two comparisons a retrained version must pass (F1 floor and
  champion/challenger, after TFX's Evaluator); :func:`approves`: both at once;
* :func:`challenger_status`: the approve/reject rule for a retrained version;
* :func:`step_after`: :func:`next_step` for a chain result (what the DAG's branch calls);
* :func:`choose_approved_version`: which evaluation of a day is deployed;
* :func:`day_as_designed`: whether a day's DAG runs ended as designed (the CLI's exit code);
* re-exported from :mod:`daily_mlops.thresholds`: :func:`validate_f1_threshold` (the one check of an
  F1 threshold, wherever it comes from), :func:`parse_f1_threshold` (also accepts ``auto``),
  :func:`resolve_f1_threshold` / :func:`auto_f1_threshold` (``auto`` is the bootstrap model's
  held-out F1 minus ``f1_tolerance``) and :func:`describe_f1_threshold`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daily_mlops.thresholds import (
    AUTO, F1_THRESHOLD_MAX, auto_f1_threshold, describe_f1_threshold, parse_f1_threshold, resolve_f1_threshold,
    validate_f1_threshold,
)

__all__ = [
    "ALERT",
    "ALERT_TASK",
    "AUTO",
    "F1_THRESHOLD_MAX",
    "CHECK_TASK",
    "EVALUATE_TASK",
    "PASS",
    "PASS_TASK",
    "RETRAIN",
    "RETRAIN_TASK",
    "approves",
    "attempt_group_id",
    "auto_f1_threshold",
    "beats_champion",
    "carry_best",
    "challenger_status",
    "check_task_id",
    "choose_approved_version",
    "choose_parent",
    "compare_challenger",
    "day_as_designed",
    "describe_f1_threshold",
    "last_result",
    "next_step",
    "parse_f1_threshold",
    "passes",
    "resolve_f1_threshold",
    "result_task_id",
    "retrain_task_id",
    "step_after",
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
#: Slack of the champion comparison, so that ``0.46 - 0.36 >= 0.10`` holds in floating point.
_EPSILON = 1e-12


def passes(f1: float, f1_threshold: float) -> bool:
    """The F1 bar: ``f1 >= f1_threshold`` (both fractions; a threshold above 1 never passes)."""
    return float(f1) >= float(f1_threshold)


def beats_champion(f1: float, champion_f1: float, min_improvement: float = 0.0) -> bool:
    """The change threshold: ``f1 - champion_f1`` is above 0 and at least ``min_improvement`` (F1 fractions)."""
    delta = float(f1) - float(champion_f1)
    return delta > 0.0 and delta >= float(min_improvement) - _EPSILON


def approves(f1: float, f1_threshold: float, *, champion_f1: float | None = None, min_improvement: float = 0.0) -> bool:
    """Whether an evaluation passes: the F1 floor, and for a challenger (``champion_f1`` given) the champion too."""
    return passes(f1, f1_threshold) and (champion_f1 is None or beats_champion(f1, champion_f1, min_improvement))


def compare_challenger(
    f1: float, f1_threshold: float, *, champion_version: int, champion_f1: float, min_improvement: float = 0.0,
) -> dict[str, Any]:
    """The two comparisons a retrained version (challenger) must pass, as recorded on it.

    Follows the validation of TFX's Evaluator (TensorFlow Model Analysis,
    https://www.tensorflow.org/tfx/model_analysis/model_validations): a
    *value threshold* (``GenericValueThreshold(lower_bound=f1_threshold)``:
    the F1 floor) and a *change threshold* against the baseline
    (``GenericChangeThreshold(absolute=min_improvement, direction=HIGHER_IS_BETTER)``:
    the champion). Both models are scored on the same data: the day's test
    split. The challenger must beat the champion, i.e. score strictly
    higher, by at least ``min_improvement``.

    Parameters
    ----------
    f1 : float
        The challenger's F1 (positive class, in [0, 1]) on the day's test split.
    f1_threshold : float
        The F1 floor in effect (resolved; see :func:`resolve_f1_threshold`).
    champion_version : int
        The model version that was the champion when the day's DAG run started (attempt 0).
    champion_f1 : float
        Its F1 on the same test split (attempt 0's evaluation, carried by :func:`carry_best`).
    min_improvement : float, default 0
        The smallest F1 gain over the champion that counts (``MLOPS_MIN_IMPROVEMENT`` / the DAG param).

    Returns
    -------
    dict
        ``floor``: ``value``, ``threshold``, ``passed``; ``champion``: ``champion_version``,
        ``champion_f1``, ``delta`` (challenger minus champion), ``min_improvement``, ``passed``;
        ``passed``: both. Plain Python numbers.
    """
    floor = {"value": float(f1), "threshold": float(f1_threshold), "passed": passes(f1, f1_threshold)}
    champion = {"champion_version": int(champion_version), "champion_f1": float(champion_f1),
                "delta": float(f1) - float(champion_f1), "min_improvement": float(min_improvement),
                "passed": beats_champion(f1, champion_f1, min_improvement)}
    return {"floor": floor, "champion": champion, "passed": floor["passed"] and champion["passed"]}


def next_step(
    f1: float, f1_threshold: float, attempt: int, max_attempts: int, *, champion_f1: float | None = None,
    min_improvement: float = 0.0,
) -> str:
    """Decide what follows an evaluation: ``"pass"``, ``"retrain"`` or ``"alert"``.

    Parameters
    ----------
    f1 : float
        F1 of the positive class in [0, 1] of the model just evaluated.
    f1_threshold : float
        F1 the model must reach (the resolved ``MLOPS_F1_THRESHOLD`` or the run's param).
    attempt : int
        Retraining attempts made so far (0 after the champion's evaluation).
    max_attempts : int
        Attempts allowed (``MLOPS_MAX_RETRAIN_ATTEMPTS``, at most 3).
    champion_f1 : float, optional
        For a retrained version: the champion's F1 on the same test split, which it must beat by
        ``min_improvement`` too (:func:`approves`). ``None`` for the champion itself.
    min_improvement : float, default 0
    """
    if approves(f1, f1_threshold, champion_f1=champion_f1, min_improvement=min_improvement):
        return PASS
    return RETRAIN if attempt < max_attempts else ALERT


def step_after(result: Mapping[str, Any], max_attempts: int) -> str:
    """:func:`next_step` for a chain result of :func:`carry_best` (the evaluation DAG's branch calls it).

    Uses what the evaluation recorded: its resolved ``f1_threshold``, its ``attempt`` and, for a
    retrained version (attempt > 0), ``champion_f1`` and ``min_improvement``.
    """
    attempt = int(result["attempt"])
    return next_step(result["f1"], result["f1_threshold"], attempt, max_attempts,
                     champion_f1=result.get("champion_f1") if attempt else None,
                     min_improvement=result.get("min_improvement", 0.0) or 0.0)


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
    :func:`choose_parent`), ``versions_tried`` (in attempt order),
    ``attempt`` (retraining attempts made: 0 for the champion), and
    ``champion_version`` / ``champion_f1``: attempt 0's evaluation, the
    baseline every challenger of the day must beat (:func:`compare_challenger`).
    A retry of a retraining task reads them from the previous result again, so
    the baseline never moves within a DAG run.

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
        champion = {"champion_version": version, "champion_f1": float(result["f1"])}
    else:
        if attempt != int(previous["attempt"]) + 1:
            raise ValueError(f"attempt {attempt} does not follow attempt {previous['attempt']}")
        best = choose_parent([{"model_version": previous["best_version"], "f1": previous["best_f1"]}, result])
        tried = [*(int(v) for v in previous["versions_tried"]), version]
        first = int(previous["versions_tried"][0])
        champion = {"champion_version": int(previous.get("champion_version", first)),
                    "champion_f1": float(previous.get("champion_f1", previous["best_f1"]))}
    return {**result, "best_version": int(best["model_version"]), "best_f1": float(best["f1"]),
            "versions_tried": tried, **champion}


def last_result(results: Iterable[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
    """The chain result with the most attempts among ``results`` (``None`` for skipped tasks), or ``None``."""
    tried = [r for r in results if r]
    return max(tried, key=lambda r: int(r["attempt"])) if tried else None


def challenger_status(
    f1: float, f1_threshold: float, current: str, *, champion_f1: float | None = None, min_improvement: float = 0.0,
) -> str | None:
    """The registry status a retrained version moves to after its evaluation, or ``None`` to stay.

    A candidate that passes (:func:`approves`: the F1 floor and, when
    ``champion_f1`` is given, the champion by ``min_improvement``) is
    approved; one that does not is rejected, including one that reaches the
    floor but does not beat the champion. A rejected version that a rerun
    passes is approved. Approved, deployed and retired versions are never moved here.
    """
    ok = approves(f1, f1_threshold, champion_f1=champion_f1, min_improvement=min_improvement)
    if ok and current in ("candidate", "rejected"):
        return "approved"
    if not ok and current == "candidate":
        return "rejected"
    return None


def choose_approved_version(
    evaluations: Sequence[Mapping[str, Any]], f1_threshold: float, statuses: Mapping[int, str]
) -> Mapping[str, Any] | None:
    """The evaluation of a day whose version is deployed: the latest attempt that passed and is deployable.

    An evaluation passes when its F1 reaches ``f1_threshold`` and, when it
    records a champion comparison (``champion.passed``, retrained versions:
    :func:`compare_challenger`), that comparison passed.

    Parameters
    ----------
    evaluations : sequence of mapping
        ``performance_metrics`` documents of one DAG run (``f1``, ``attempt``, ``model_version``,
        optionally ``champion``).
    statuses : mapping of int to str
        Registry status per model version.

    Returns
    -------
    mapping or None
        ``None`` when no evaluation passed.
    """
    passing = [e for e in sorted(evaluations, key=lambda e: e["attempt"])
               if passes(e["f1"], f1_threshold) and (e.get("champion") or {}).get("passed", True)
               and statuses.get(int(e["model_version"])) in DEPLOYABLE]
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
