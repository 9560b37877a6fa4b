"""Unit tests for the pure decisions in daily_mlops.decisions, each as a table."""

from __future__ import annotations

import math

import pytest

from daily_mlops.decisions import (
    DAY_OUTCOMES,
    carry_best,
    chain_position,
    challenger_status,
    check_task_id,
    choose_approved_version,
    choose_parent,
    day_as_designed,
    day_outcome,
    day_outcome_text,
    last_result,
    next_step,
    previous_day_deadlock,
    previous_day_pending,
    result_task_id,
    result_task_ids,
    retrain_task_id,
    step_after,
    task_for_step,
)
from daily_mlops.errors import ConfigError
from daily_mlops.settings.thresholds import (
    auto_f1_threshold,
    describe_f1_threshold,
    parse_f1_threshold,
    resolve_f1_threshold,
    validate_f1_threshold,
    validate_min_improvement,
)

CASES = [
    # passed, attempt, max_attempts, expected
    (True, 0, 3, "pass"),  # champion passes
    (False, 0, 3, "retrain"),  # below: recalibrate, then fine-tune
    (False, 1, 3, "retrain"),
    (False, 2, 3, "retrain"),  # last allowed attempt still ahead
    (False, 3, 3, "alert"),  # attempt == max_attempts: exhausted
    (False, 4, 3, "alert"),  # beyond max (defensive)
    (True, 3, 3, "pass"),  # passing on the last attempt is a pass, not an alert
    (False, 0, 0, "alert"),  # max_attempts 0: alert immediately
    (False, 0, 1, "retrain"),
    (False, 1, 1, "alert"),
]


@pytest.mark.parametrize(("passed", "attempt", "max_attempts", "expected"), CASES)
def test_next_step_table(passed: bool, attempt: int, max_attempts: int, expected: str) -> None:
    """next_step returns pass when the evaluation passed, else retrain while attempt < max_attempts, else alert."""
    assert next_step(passed, attempt, max_attempts) == expected


def test_full_loop_with_three_attempts_ends_in_alert() -> None:
    """Walking the unrolled DAG: champion + 3 failing attempts gives retrain x3 then alert."""
    steps = [next_step(False, attempt, 3) for attempt in range(4)]
    assert steps == ["retrain", "retrain", "retrain", "alert"]


def test_step_after_reads_what_the_evaluation_recorded() -> None:
    """The branch follows the recorded ``passed`` (floor, interval and real guard decided in the task), never an F1
    compared again: a challenger above the floor whose interval did not clear its baseline retrains."""
    above_floor_within_noise = {"model_version": 3, "attempt": 1, "f1": 0.70, "f1_threshold": 0.65, "passed": False}
    assert step_after(above_floor_within_noise, 3) == "retrain"
    assert step_after({**above_floor_within_noise, "attempt": 3}, 3) == "alert"
    assert step_after({**above_floor_within_noise, "passed": True}, 3) == "pass"
    assert step_after({"model_version": 1, "attempt": 0, "f1": 1.0, "f1_threshold": 1.5, "passed": False}, 0) == "alert"


@pytest.mark.parametrize(("step", "attempt", "recalibrated", "expected"), [
    ("pass", 0, False, "send_evaluation_results"),
    ("pass", 3, True, "send_evaluation_results"),
    ("retrain", 0, False, "recalibration.recalibrate_champion"),  # the cheapest fix comes first
    ("retrain", 0, True, "attempt_1.retrain_model"),  # after the recalibration: fine-tune
    ("retrain", 2, True, "attempt_3.retrain_model"),
    ("retrain", 3, True, "send_alert"),  # past the unrolled attempts
    ("alert", 0, False, "send_alert"),
    ("alert", 3, True, "send_alert"),
])
def test_task_for_step_table(step: str, attempt: int, recalibrated: bool, expected: str) -> None:
    """Each step after an evaluation maps to one task id of the evaluation DAG (3 unrolled attempts)."""
    assert task_for_step(step, attempt, 3, recalibrated=recalibrated) == expected


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


def test_result_task_ids_are_the_chain_in_order() -> None:
    """send_alert pulls the XCom of every evaluation: champion, recalibration, then the attempts."""
    assert result_task_ids(2) == ["evaluate_model", "recalibration.recalibrate_champion",
                                  "attempt_1.retrain_model", "attempt_2.retrain_model"]


def test_attempts_count_from_one() -> None:
    """There is no retraining attempt 0 (that is the champion's evaluation)."""
    with pytest.raises(ValueError, match="count from 1"):
        retrain_task_id(0)


def _e(version: int, f1: float, attempt: int, stage: str | None = None) -> dict:
    return {"model_version": version, "f1": f1, "attempt": attempt, **({"stage": stage} if stage else {})}


def test_carry_best_walks_a_day() -> None:
    """The chain result carries the best version (highest validation F1, ties to the newer), versions tried,
    attempts, the champion and the baseline: the recalibrated champion once there is one."""
    champion = carry_best(_e(1, 0.40, 0, "champion"))
    assert (champion["best_version"], champion["best_f1"], champion["versions_tried"]) == (1, 0.40, [1])
    assert champion["baseline_version"] == 1
    recal = carry_best(_e(2, 0.42, 0, "recalibrated"), champion)
    assert (recal["best_version"], recal["baseline_version"], recal["versions_tried"]) == (2, 2, [1, 2])
    worse = carry_best(_e(3, 0.35, 1), recal)
    assert (worse["best_version"], worse["best_f1"], worse["versions_tried"]) == (2, 0.42, [1, 2, 3])
    tie = carry_best(_e(4, 0.42, 2), worse)
    assert (tie["best_version"], tie["versions_tried"], tie["attempt"]) == (4, [1, 2, 3, 4], 2)
    better = carry_best(_e(5, 0.45, 3), tie)
    assert (better["best_version"], better["best_f1"], better["f1"]) == (5, 0.45, 0.45)
    assert champion["versions_tried"] == [1]  # earlier results are not changed
    chain = (champion, recal, worse, tie, better)
    # the champion of the day is attempt 0's evaluation, carried unchanged to the last attempt
    assert [(r["champion_version"], r["champion_f1"]) for r in chain] == [(1, 0.40)] * 5
    assert [r["baseline_version"] for r in chain] == [1, 2, 2, 2, 2]
    assert [chain_position(r) for r in chain] == [0, 1, 2, 3, 4]


def test_carry_best_refuses_a_gap_in_the_chain() -> None:
    """A result must follow the step just before it (a skipped link would lose versions or the baseline)."""
    champion = carry_best(_e(1, 0.4, 0))
    with pytest.raises(ValueError, match="does not follow"):
        carry_best(_e(3, 0.4, 2), champion)
    with pytest.raises(ValueError, match="does not follow"):
        carry_best(_e(2, 0.4, 1), champion)  # attempt 1 comes after the recalibration


@pytest.mark.parametrize(("results", "expected"), [
    ([None, None, None, None, None], None),
    ([_e(1, 0.4, 0), None, None, None, None], 0),  # max_retrain_attempts 0
    ([_e(1, 0.4, 0), _e(2, 0.4, 0, "recalibrated"), None, None, None], 1),
    ([_e(1, 0.4, 0), _e(2, 0.4, 0, "recalibrated"), _e(3, 0.3, 1), None, None], 2),
    ([_e(1, 0.4, 0), _e(2, 0.4, 0, "recalibrated"), _e(3, 0.3, 1), _e(4, 0.3, 2), _e(5, 0.3, 3)], 4),
])
def test_last_result_is_the_furthest_in_the_chain(results: list, expected: int | None) -> None:
    """send_alert reads the last result: the one furthest down the chain; skipped tasks (None) are ignored."""
    last = last_result(results)
    assert (chain_position(last) if last else None) == expected


def _r(version: int, f1: float, passed: bool = True) -> dict:
    return {"model_version": version, "f1": f1, "attempt": version - 1, "passed": passed}


@pytest.mark.parametrize(("results", "expected"), [
    ([_r(1, 0.40)], 1),
    ([_r(1, 0.40), _r(2, 0.45)], 2),  # the better challenger
    ([_r(1, 0.40), _r(2, 0.35)], 1),  # the champion stays the better start
    ([_r(1, 0.40), _r(2, 0.40)], 2),  # tie: the newer version
    ([_r(1, 0.40), None, _r(3, 0.41)], 3),  # skipped attempts (None) are ignored
])
def test_choose_parent_table(results: list, expected: int) -> None:
    """A retraining attempt starts from the highest validation F1 so far, ties to the newer version."""
    assert choose_parent(results)["model_version"] == expected


def test_choose_parent_without_results_raises() -> None:
    """With nothing evaluated there is no parent."""
    with pytest.raises(ValueError):
        choose_parent([None, None])


@pytest.mark.parametrize(("passed", "current", "expected"), [
    (True, "candidate", "approved"),
    (False, "candidate", "rejected"),
    (True, "rejected", "approved"),  # a rerun that passes
    (False, "rejected", None),
    (False, "approved", None),  # never demoted here
    (True, "deployed", None),
    (False, "retired", None),
])
def test_challenger_status_table(passed: bool, current: str, expected: str | None) -> None:
    """The approve/reject rule of a candidate version after its evaluation."""
    assert challenger_status(passed, current) == expected


@pytest.mark.parametrize(("evaluations", "statuses", "expected"), [
    ([_r(1, 0.50)], {1: "approved"}, 1),
    ([_r(1, 0.40, False), _r(2, 0.50)], {1: "approved", 2: "approved"}, 2),
    ([_r(1, 0.50), _r(2, 0.60)], {1: "deployed", 2: "approved"}, 2),  # the latest passing attempt
    ([_r(1, 0.40, False), _r(2, 0.50)], {1: "deployed", 2: "rejected"}, None),  # passing but not deployable
    ([_r(1, 0.40, False)], {1: "deployed"}, None),
    ([_r(2, 0.50), _r(1, 0.50)], {1: "deployed", 2: "approved"}, 2),  # order by the chain, not input order
    ([_r(1, 0.40, False), _r(2, 0.60, False)], {1: "deployed", 2: "approved"}, None),  # above the floor, lost
])
def test_choose_approved_version_table(evaluations: list, statuses: dict, expected: int | None) -> None:
    """The deployed version of a day is the last evaluation in the chain that passed and is approved or deployed."""
    chosen = choose_approved_version(evaluations, statuses)
    assert (chosen["model_version"] if chosen else None) == expected


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


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        # the gate wins over everything recorded after it
        ({"quality_status": "failed", "alert": True, "deployment_status": "deployed"}, "gate_failed"),
        ({"quality_status": "passed", "alert": True, "deployment_status": None}, "alert"),
        ({"quality_status": "passed", "alert": False, "deployment_status": "deployed"}, "deployed"),
        ({"quality_status": "passed", "deployment_status": "already_deployed"}, "already_deployed"),
        ({"quality_status": "passed", "deployment_status": "superseded"}, "superseded"),
        ({"quality_status": "passed", "deployment_status": "rejected_by_reviewer"}, "none"),
        ({"quality_status": "passed", "deployment_status": "refused_by_infra_validation"}, "none"),
        ({}, "none"),
    ],
)
def test_day_outcome_table(summary: dict, expected: str) -> None:
    assert day_outcome(summary) == expected
    assert day_outcome(summary) in DAY_OUTCOMES


_DAY = {"logical_date": "2026-11-06", "quality_status": "passed", "quality_reason": "3 columns unseen",
        "alert_type": "MODEL_PERFORMANCE_FAILURE", "best_f1": 0.5, "f1_threshold": 0.6, "retrain_attempts": 3,
        "versions_tried": [5, 6], "deployed_version": 6, "evidence": "finetuned from v5"}
_LIVE = "the deployed model stays v5"


@pytest.mark.parametrize(("changes", "cell", "sentence"), [
    ({"quality_status": "failed"},
     f"[red]STOPPED by the data-quality gate[/]: 3 columns unseen; no model judged, {_LIVE}",
     f"the data-quality gate stopped 2026-11-06: 3 columns unseen; {_LIVE}"),
    ({"alert": "F1 below the floor"},
     "[red]ALERT[/] MODEL_PERFORMANCE_FAILURE: best F1 0.5000 < threshold 0.6000 after 3 retraining attempt(s), "
     f"versions tried 5, 6; nothing deployed, {_LIVE}",
     f"evaluation for 2026-11-06 ended in an alert (MODEL_PERFORMANCE_FAILURE); {_LIVE}"),
    ({"deployment_status": "deployed"}, "[green]deployed v6[/]",
     "2026-11-06: v6 approved and deployed (finetuned from v5)"),
    ({"deployment_status": "already_deployed"}, "[green]v6 already deployed (no-op)[/]",
     "2026-11-06: v6 approved; it was already deployed (finetuned from v5)"),
    ({"deployment_status": "superseded"}, "[yellow]v6 not deployed: a later day's version is in place[/]",
     "2026-11-06: v6 approved; not deployed, a later day's version is in place"),
    ({"deployment_status": None}, f"[yellow]no deployment[/]; {_LIVE}", f"2026-11-06: nothing deployed; {_LIVE}"),
])
def test_day_outcome_text_renders_each_outcome_both_ways(changes: dict, cell: str, sentence: str) -> None:
    """One rule, two renderings: the run summary's cell and the day's sentence read the same day_outcome."""
    summary = {**_DAY, **changes}
    assert day_outcome_text(summary, sentence=False, live=_LIVE) == cell
    assert day_outcome_text(summary, sentence=True, live=_LIVE) == sentence


def test_an_alert_without_its_figures_leaves_the_comparison_out() -> None:
    """Without best F1 or threshold the alert cell says no comparison (and fails on no missing key)."""
    text = day_outcome_text({"alert": "x", "alert_type": "T"}, sentence=False, live=_LIVE)
    assert text.startswith("[red]ALERT[/] T:  after 0 retraining attempt(s), versions tried ; nothing deployed")


@pytest.mark.parametrize(("state", "downstream", "wait", "expected"), [
    (None, {}, None, []),  # the first logical date
    ("success", {"evaluation": (1, 1), "deployment": (1, 1)}, "success", []),
    ("failed", {"evaluation": (0, 0), "deployment": (0, 0)}, "success", []),  # stopped by the gate: nothing triggered
    ("success", {"evaluation": (1, 1), "deployment": (1, 0)}, None, ["deployment: 1 of 1 run(s) not finished"]),
    ("running", {"evaluation": (0, 0), "deployment": (0, 0)}, None, ["its data_pipeline_dag run is running"]),
    ("queued", {}, None, ["its data_pipeline_dag run is queued"]),
    ("failed", {}, "failed", ["its wait_for_previous_day task is failed, so it never started"]),
    ("success", {"evaluation": (2, 1)}, "skipped", ["evaluation: 1 of 2 run(s) not finished"]),
])
def test_previous_day_pending(state, downstream: dict, wait, expected: list) -> None:
    """A day may start when the previous data run and every run at its date have finished (or it had none)."""
    assert previous_day_pending(state, downstream, wait_task_state=wait) == expected


@pytest.mark.parametrize(("state", "previous_type", "run_type", "deadlocked"), [
    ("queued", "manual", "scheduled", True),  # today's scheduled run started, then an older date was triggered
    ("queued", "scheduled", "manual", True),
    ("running", "manual", "scheduled", False),  # it runs: wait for it
    ("success", "manual", "manual", False),
    ("queued", "backfill", "manual", False),  # backfill runs ignore max_active_runs: it will start
    ("queued", "manual", "backfill", False),
])
def test_previous_day_deadlock(state: str, previous_type: str, run_type: str, deadlocked: bool) -> None:
    """Only an earlier run queued behind this one (outside backfills) can never start: the wait fails at once."""
    message = previous_day_deadlock("manual__2026-11-01", state, previous_type, run_type)
    assert (message is not None) is deadlocked
    if deadlocked:
        assert "manual__2026-11-01 is queued behind this run" in message and "clear this run" in message
