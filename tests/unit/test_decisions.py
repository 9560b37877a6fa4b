"""Unit tests for the pure decisions in daily_mlops.decisions, each as a table."""

from __future__ import annotations

import math

import pytest

from daily_mlops.decisions import (
    approves, auto_f1_threshold, beats_champion, carry_best, challenger_status, check_task_id,
    choose_approved_version, choose_parent, compare_challenger, day_as_designed, describe_f1_threshold, last_result,
    next_step, parse_f1_threshold, resolve_f1_threshold, result_task_id, retrain_task_id, step_after, task_for_step,
    validate_f1_threshold,
)
from daily_mlops.thresholds import validate_min_improvement
from daily_mlops.errors import ConfigError

CASES = [
    # f1,   threshold, attempt, max_attempts, expected
    (0.80, 0.75, 0, 3, "pass"),  # champion passes
    (0.75, 0.75, 0, 3, "pass"),  # boundary: f1 == threshold passes
    (0.7499, 0.75, 0, 3, "retrain"),  # just below: first retraining
    (0.10, 0.75, 1, 3, "retrain"),
    (0.10, 0.75, 2, 3, "retrain"),  # last allowed attempt still ahead
    (0.10, 0.75, 3, 3, "alert"),  # attempt == max_attempts: exhausted
    (0.10, 0.75, 4, 3, "alert"),  # beyond max (defensive)
    (0.90, 0.75, 3, 3, "pass"),  # passing on the last attempt is a pass, not an alert
    (0.10, 0.75, 0, 0, "alert"),  # max_attempts 0: alert immediately
    (0.10, 0.75, 0, 1, "retrain"),
    (0.10, 0.75, 1, 1, "alert"),
    (0.0, 0.0, 0, 3, "pass"),  # threshold 0: anything passes
    (1.0, 1.0, 0, 3, "pass"),  # perfect F1 meets threshold 1
    (1.0, 1.01, 0, 3, "retrain"),  # threshold > 1 never passes
    (1.0, 1.5, 3, 3, "alert"),  # ... and ends in the alert
    (1.0, 2.0, 0, 0, "alert"),
]


@pytest.mark.parametrize(("f1", "threshold", "attempt", "max_attempts", "expected"), CASES)
def test_next_step_table(f1: float, threshold: float, attempt: int, max_attempts: int, expected: str) -> None:
    """next_step returns pass when f1 >= threshold, else retrain while attempt < max_attempts, else alert."""
    assert next_step(f1, threshold, attempt, max_attempts) == expected


@pytest.mark.parametrize("attempt", range(0, 4))
@pytest.mark.parametrize("max_attempts", range(0, 4))
def test_threshold_above_one_never_passes(attempt: int, max_attempts: int) -> None:
    """With a threshold above 1 (the DAG param's forced-alert setting) no F1 in [0, 1] passes."""
    for f1 in (0.0, 0.5, 0.99, 1.0):
        assert next_step(f1, 1.2, attempt, max_attempts) != "pass"


def test_full_loop_with_three_attempts_ends_in_alert() -> None:
    """Walking the unrolled DAG: champion + 3 failing attempts gives retrain x3 then alert."""
    steps = [next_step(0.5, 0.75, attempt, 3) for attempt in range(4)]
    assert steps == ["retrain", "retrain", "retrain", "alert"]


def test_returns_only_known_step_names() -> None:
    """Every output is one of the three step names the DAG's branch maps to task ids."""
    outputs = {
        next_step(f1 / 10, t / 10, a, m)
        for f1 in range(11) for t in range(13) for a in range(4) for m in range(4)
    }
    assert outputs == {"pass", "retrain", "alert"}


@pytest.mark.parametrize(("step", "attempt", "expected"), [
    ("pass", 0, "send_evaluation_results"),
    ("pass", 3, "send_evaluation_results"),
    ("retrain", 0, "attempt_1.retrain_model"),
    ("retrain", 2, "attempt_3.retrain_model"),
    ("retrain", 3, "send_alert"),  # past the unrolled attempts
    ("alert", 0, "send_alert"),
    ("alert", 3, "send_alert"),
])
def test_task_for_step_table(step: str, attempt: int, expected: str) -> None:
    """Each step after the evaluation of ``attempt`` maps to one task id of the evaluation DAG (3 unrolled)."""
    assert task_for_step(step, attempt, 3) == expected


def test_task_for_step_refuses_unknown_steps() -> None:
    """An unknown step name is a programming error, not a silent alert."""
    with pytest.raises(ValueError, match="unknown step"):
        task_for_step("deploy", 0, 3)


@pytest.mark.parametrize(("attempt", "check", "result"), [
    (0, "check_model_performance", "evaluate_model"),
    (1, "attempt_1.check_model_performance", "attempt_1.retrain_model"),
    (3, "attempt_3.check_model_performance", "attempt_3.retrain_model"),
])
def test_task_ids_of_an_attempt(attempt: int, check: str, result: str) -> None:
    """Attempt n's tasks live in task group attempt_<n>; the champion's are outside any group."""
    assert check_task_id(attempt) == check
    assert result_task_id(attempt) == result
    if attempt:
        assert retrain_task_id(attempt) == result


def test_attempts_count_from_one() -> None:
    """There is no retraining attempt 0 (that is the champion's evaluation)."""
    with pytest.raises(ValueError, match="count from 1"):
        retrain_task_id(0)


def _e(version: int, f1: float, attempt: int) -> dict:
    return {"model_version": version, "f1": f1, "attempt": attempt}


def test_carry_best_walks_a_day() -> None:
    """The chain result carries the best version (highest F1, ties to the newer), versions tried and attempts."""
    champion = carry_best(_e(1, 0.40, 0))
    assert (champion["best_version"], champion["best_f1"], champion["versions_tried"]) == (1, 0.40, [1])
    worse = carry_best(_e(2, 0.35, 1), champion)
    assert (worse["best_version"], worse["best_f1"], worse["versions_tried"]) == (1, 0.40, [1, 2])
    tie = carry_best(_e(3, 0.40, 2), worse)
    assert (tie["best_version"], tie["versions_tried"], tie["attempt"]) == (3, [1, 2, 3], 2)
    better = carry_best(_e(4, 0.45, 3), tie)
    assert (better["best_version"], better["best_f1"], better["f1"]) == (4, 0.45, 0.45)
    assert champion["versions_tried"] == [1]  # earlier results are not changed
    # the champion of the day is attempt 0's evaluation, carried unchanged to the last attempt
    assert [(r["champion_version"], r["champion_f1"]) for r in (champion, worse, tie, better)] == [(1, 0.40)] * 4


def test_carry_best_refuses_a_gap_in_the_chain() -> None:
    """A result must follow the attempt just before it (a skipped link would lose versions)."""
    with pytest.raises(ValueError, match="does not follow"):
        carry_best(_e(3, 0.4, 2), carry_best(_e(1, 0.4, 0)))


@pytest.mark.parametrize(("results", "expected"), [
    ([None, None, None, None], None),
    ([_e(1, 0.4, 0), None, None, None], 0),  # max_retrain_attempts 0
    ([_e(1, 0.4, 0), _e(2, 0.3, 1), None, None], 1),
    ([_e(1, 0.4, 0), _e(2, 0.3, 1), _e(3, 0.3, 2), _e(4, 0.3, 3)], 3),
])
def test_last_result_is_the_latest_attempt(results: list, expected: int | None) -> None:
    """send_alert reads the last result: the one with the most attempts; skipped tasks (None) are ignored."""
    last = last_result(results)
    assert (last["attempt"] if last else None) == expected


def _r(version: int, f1: float) -> dict:
    return {"model_version": version, "f1": f1, "attempt": version - 1}


@pytest.mark.parametrize(("results", "expected"), [
    ([_r(1, 0.40)], 1),
    ([_r(1, 0.40), _r(2, 0.45)], 2),  # the better challenger
    ([_r(1, 0.40), _r(2, 0.35)], 1),  # the champion stays the better start
    ([_r(1, 0.40), _r(2, 0.40)], 2),  # tie: the newer version
    ([_r(1, 0.40), None, _r(3, 0.41)], 3),  # skipped attempts (None) are ignored
])
def test_choose_parent_table(results: list, expected: int) -> None:
    """A retraining attempt starts from the highest F1 so far, ties to the newer version."""
    assert choose_parent(results)["model_version"] == expected


def test_choose_parent_without_results_raises() -> None:
    """With nothing evaluated there is no parent."""
    with pytest.raises(ValueError):
        choose_parent([None, None])


@pytest.mark.parametrize(("f1", "threshold", "champion_f1", "min_improvement", "current", "expected"), [
    (0.50, 0.45, 0.40, 0.0, "candidate", "approved"),  # floor and champion both passed
    (0.50, 0.45, 0.40, 0.10, "candidate", "approved"),  # gain exactly min_improvement (0.50 - 0.40 in floats)
    (0.50, 0.45, 0.40, 0.11, "candidate", "rejected"),  # reaches the floor, does not beat the champion by enough
    (0.50, 0.45, 0.50, 0.0, "candidate", "rejected"),  # a tie does not beat the champion
    (0.50, 0.45, 0.55, 0.0, "candidate", "rejected"),  # worse than the champion
    (0.40, 0.45, 0.30, 0.0, "candidate", "rejected"),  # beats the champion but misses the floor
    (0.50, 0.45, 0.55, 0.0, "rejected", None),
    (0.50, 0.45, 0.40, 0.0, "rejected", "approved"),  # a rerun that passes both
])
def test_challenger_status_with_the_champion(f1, threshold, champion_f1, min_improvement, current, expected) -> None:
    """A retrained version is approved only when it reaches the floor AND beats the champion by min_improvement."""
    assert challenger_status(f1, threshold, current, champion_f1=champion_f1,
                             min_improvement=min_improvement) == expected


def test_compare_challenger_records_both_comparisons() -> None:
    """The record holds the floor (value, threshold, passed) and the champion (version, F1, delta, min_improvement,
    passed); passed is both."""
    record = compare_challenger(0.47, 0.45, champion_version=3, champion_f1=0.41, min_improvement=0.1)
    assert record["floor"] == {"value": 0.47, "threshold": 0.45, "passed": True}
    assert record["champion"]["champion_version"] == 3 and record["champion"]["champion_f1"] == 0.41
    assert record["champion"]["delta"] == pytest.approx(0.06) and record["champion"]["min_improvement"] == 0.1
    assert record["champion"]["passed"] is False and record["passed"] is False
    assert compare_challenger(0.52, 0.45, champion_version=3, champion_f1=0.41)["passed"] is True


@pytest.mark.parametrize(("f1", "champion_f1", "min_improvement", "expected"), [
    (0.46, 0.36, 0.10, True),  # 0.46 - 0.36 is 0.0999999... in floats: still at least 0.10
    (0.41, 0.40, 0.0, True),
    (0.40, 0.40, 0.0, False),  # beating means a higher F1
    (0.39, 0.40, 0.0, False),
])
def test_beats_champion_table(f1, champion_f1, min_improvement, expected) -> None:
    """The change threshold: strictly higher F1, by at least min_improvement."""
    assert beats_champion(f1, champion_f1, min_improvement) is expected


def test_next_step_for_a_challenger_needs_the_champion_too() -> None:
    """After a retraining attempt, reaching the floor is not enough: the challenger must beat the champion; the
    champion's own evaluation (no champion_f1) checks the floor only. step_after reads the chain result."""
    assert next_step(0.50, 0.45, 1, 3, champion_f1=0.52) == "retrain"
    assert next_step(0.50, 0.45, 3, 3, champion_f1=0.52) == "alert"
    assert next_step(0.50, 0.45, 1, 3, champion_f1=0.40) == "pass"
    assert next_step(0.50, 0.45, 0, 3) == "pass"
    chain = carry_best({"model_version": 2, "attempt": 1, "f1": 0.50, "f1_threshold": 0.45, "min_improvement": 0.2},
                       carry_best({"model_version": 1, "attempt": 0, "f1": 0.40, "f1_threshold": 0.45}))
    assert step_after(chain, 3) == "retrain"  # beats the champion by 0.10 < 0.20
    assert step_after({**chain, "min_improvement": 0.05}, 3) == "pass"
    assert step_after({"model_version": 1, "attempt": 0, "f1": 1.0, "f1_threshold": 1.5}, 0) == "alert"
    assert approves(0.5, 0.45) and not approves(0.5, 0.45, champion_f1=0.5)


@pytest.mark.parametrize(("f1", "threshold", "current", "expected"), [
    (0.50, 0.45, "candidate", "approved"),
    (0.45, 0.45, "candidate", "approved"),  # boundary passes
    (0.40, 0.45, "candidate", "rejected"),
    (0.50, 0.45, "rejected", "approved"),  # a rerun with a lower bar
    (0.40, 0.45, "rejected", None),
    (0.40, 0.45, "approved", None),  # never demoted here
    (0.50, 0.45, "deployed", None),
    (0.40, 0.45, "retired", None),
])
def test_challenger_status_table(f1: float, threshold: float, current: str, expected: str | None) -> None:
    """The approve/reject rule of a retrained version after its evaluation."""
    assert challenger_status(f1, threshold, current) == expected


@pytest.mark.parametrize(("evaluations", "statuses", "expected"), [
    ([_r(1, 0.50)], {1: "approved"}, 1),
    ([_r(1, 0.40), _r(2, 0.50)], {1: "approved", 2: "approved"}, 2),
    ([_r(1, 0.50), _r(2, 0.60)], {1: "deployed", 2: "approved"}, 2),  # the latest passing attempt
    ([_r(1, 0.40), _r(2, 0.50)], {1: "deployed", 2: "rejected"}, None),  # passing but not deployable
    ([_r(1, 0.40)], {1: "deployed"}, None),
    ([_r(2, 0.50), _r(1, 0.50)], {1: "deployed", 2: "approved"}, 2),  # order by attempt, not input order
])
def test_choose_approved_version_table(evaluations: list, statuses: dict, expected: int | None) -> None:
    """The deployed version of a day is the latest attempt that reached the bar and is approved or deployed."""
    chosen = choose_approved_version(evaluations, 0.45, statuses)
    assert (chosen["model_version"] if chosen else None) == expected


def test_choose_approved_version_skips_a_challenger_that_lost_to_the_champion() -> None:
    """An evaluation whose recorded champion comparison failed is not deployed, even above the floor."""
    lost = {**_r(2, 0.60), "champion": {"passed": False}}
    won = {**_r(3, 0.55), "champion": {"passed": True}}
    statuses = {1: "deployed", 2: "approved", 3: "approved"}
    assert choose_approved_version([_r(1, 0.40), lost], 0.45, statuses) is None
    assert choose_approved_version([_r(1, 0.40), lost, won], 0.45, statuses)["model_version"] == 3


DAGS = ("data", "evaluation", "deployment")


@pytest.mark.parametrize(("runs", "expected"), [
    ({"data": ("success", []), "evaluation": ("success", []), "deployment": ("success", [])}, True),
    ({"data": ("success", []), "evaluation": ("failed", ["send_alert"]), "deployment": ("success", [])}, True),
    ({"data": ("failed", ["generate_data"]), "evaluation": ("failed", []), "deployment": ("failed", [])}, False),
    ({"data": ("success", []), "evaluation": ("failed", ["attempt_1.retrain_model"]), "deployment": ("success", [])},
     False),
    ({"data": ("success", []), "evaluation": ("failed", []), "deployment": ("success", [])}, False),
    ({"data": ("success", []), "evaluation": ("running", []), "deployment": ("success", [])}, False),
    ({"data": ("success", []), "evaluation": ("success", [])}, False),  # a DAG run is missing
    ({"data": ("success", []), "evaluation": ("success", []), "deployment": ("failed", ["send_alert"])}, False),
])
def test_day_as_designed_table(runs: dict, expected: bool) -> None:
    """Only the evaluation DAG's send_alert may fail on a day that ran as designed (CLI exit 0, else 1)."""
    assert day_as_designed(runs, DAGS, "evaluation") is expected


F1_THRESHOLDS = [
    # value,        accepted as (None: refused), why
    (0.75, 0.75, "the default"),
    (0, 0.0, "lower bound; an int is a number"),
    (1.0, 1.0, "perfect F1"),
    (1.5, 1.5, "above 1: the documented way to force the alert path"),
    (2, 2.0, "upper bound, the DAG param's maximum"),
    (math.nan, None, "NaN: every comparison is false, so every evaluation would fail"),
    (math.inf, None, "infinite"),
    (-math.inf, None, "infinite"),
    (-0.01, None, "negative"),
    (2.0001, None, "above 2"),
    (3.0, None, "above 2"),
    (True, None, "a bool is not a threshold"),
    ("0.5", None, "a string (the callers pass numbers; pydantic and typer parse text)"),
    (None, None, "missing"),
]


@pytest.mark.parametrize(("value", "expected", "why"), F1_THRESHOLDS)
@pytest.mark.parametrize("source", ["MLOPS_F1_THRESHOLD", "DAG param f1_threshold", "--f1-threshold"])
def test_validate_f1_threshold_table(value, expected, why: str, source: str) -> None:
    """Finite numbers in [0, 2] come back as floats; anything else raises ConfigError naming the source."""
    if expected is None:
        with pytest.raises(ConfigError) as info:
            validate_f1_threshold(value, source)
        message = str(info.value)
        assert message.startswith(f"{source}=") and "0 to 2" in message, why
    else:
        result = validate_f1_threshold(value, source)
        assert type(result) is float and result == expected, why


@pytest.mark.parametrize(("value", "expected"), [
    ("auto", "auto"), (" AUTO ", "auto"), (0.75, 0.75), ("0.75", 0.75), (1.5, 1.5), ("2", 2.0), (0, 0.0),
])
def test_parse_f1_threshold_accepts_auto_and_numbers(value, expected) -> None:
    """f1_threshold is 'auto' or a number in [0, 2] (text as environment variables and YAML give it)."""
    assert parse_f1_threshold(value, "MLOPS_F1_THRESHOLD") == expected


@pytest.mark.parametrize("value", ["automatic", "", "high", "nan", "3", math.nan, 2.5, -0.1, True, None, [0.5]])
def test_parse_f1_threshold_refuses_the_rest(value) -> None:
    """Anything else raises ConfigError naming the source and both accepted forms."""
    with pytest.raises(ConfigError) as info:
        parse_f1_threshold(value, "DAG param f1_threshold")
    message = str(info.value)
    assert message.startswith("DAG param f1_threshold=") and "'auto'" in message and "0 to 2" in message


def test_resolve_f1_threshold_auto_and_fixed() -> None:
    """auto is the bootstrap F1 minus the tolerance (never below 0); a number stays as it is; auto without a
    bootstrap F1 says to run bootstrap or set a number."""
    auto = resolve_f1_threshold("auto", "X", bootstrap_f1=0.48, f1_tolerance=0.05)
    assert auto["f1_threshold"] == pytest.approx(0.43) and auto["mode"] == "auto"
    assert describe_f1_threshold(auto) == "0.4300 (auto: bootstrap F1 0.4800 - f1_tolerance 0.05)"
    fixed = resolve_f1_threshold(1.5, "X", bootstrap_f1=None, f1_tolerance=0.05)
    assert fixed == {"f1_threshold": 1.5, "mode": "fixed"} and describe_f1_threshold(fixed) == "1.5000 (fixed)"
    assert auto_f1_threshold(0.03, 0.05) == 0.0
    with pytest.raises(ConfigError, match="daily-mlops bootstrap"):
        resolve_f1_threshold("auto", "MLOPS_F1_THRESHOLD", bootstrap_f1=None, f1_tolerance=0.05)


@pytest.mark.parametrize(("value", "ok"), [(0, True), (0.05, True), (1, True), (-0.01, False), (1.5, False),
                                           (math.nan, False), (True, False), ("0.1", False)])
def test_validate_min_improvement(value, ok: bool) -> None:
    """min_improvement is a finite number in [0, 1]; anything else names the param."""
    if ok:
        assert validate_min_improvement(value, "DAG param min_improvement") == float(value)
    else:
        with pytest.raises(ConfigError, match="DAG param min_improvement"):
            validate_min_improvement(value, "DAG param min_improvement")
