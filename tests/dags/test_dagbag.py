"""DagBag integrity of the three DAG files, and proof that parsing them imports nothing heavy."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daily_mlops.decisions import RETRAIN_TASK

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_IDS = {"data_pipeline_dag", "model_evaluation_pipeline", "model_deployment_pipeline"}
SEVEN_DAYS = dt.timedelta(days=7).total_seconds()
HEAVY = ("torch", "sdv", "pandas", "sklearn", "pymongo")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    """The DagBag of dags/, parsed with default settings (no MLOPS_* variables, no .env)."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("MLOPS_"):
                mp.delenv(name)
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        return DagBag(str(DAGS))


@pytest.fixture(scope="module")
def evaluation(dagbag):
    return dagbag.dags["model_evaluation_pipeline"]


@pytest.fixture(scope="module")
def deployment(dagbag):
    return dagbag.dags["model_deployment_pipeline"]


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


# --------------------------------------------------------------------------- all DAGs
def test_no_import_errors(dagbag) -> None:
    """Every DAG file parses without an import error."""
    assert dagbag.import_errors == {}


def test_dag_ids(dagbag) -> None:
    """The bag holds exactly the three project DAGs."""
    assert set(dagbag.dag_ids) == DAG_IDS


def test_only_the_data_dag_is_scheduled(dagbag) -> None:
    """data_pipeline_dag runs @daily; the other two have no schedule (it triggers them), one start date, no catch-up.

    A scheduled day then gets exactly one run of each DAG: the schedule creates the data run, whose
    trigger tasks create the other two for the same logical date.
    """
    dags = [dagbag.dags[d] for d in sorted(DAG_IDS)]
    for dag in dags:
        assert dag.catchup is False, dag.dag_id
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
    assert len({dag.start_date for dag in dags}) == 1
    assert dagbag.dags["data_pipeline_dag"].schedule == "@daily"
    assert dagbag.dags["model_evaluation_pipeline"].schedule is None
    assert dagbag.dags["model_deployment_pipeline"].schedule is None


def test_retries_tags_and_docs(dagbag) -> None:
    """Each DAG sets retries with backoff in default_args, carries the project tag and a doc_md."""
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        args = dag.default_args
        assert isinstance(args.get("retries"), int) and args["retries"] >= 1, dag_id
        assert args.get("retry_delay"), dag_id
        assert args.get("retry_exponential_backoff") is True, dag_id
        assert "daily-mlops" in dag.tags, dag_id
        assert len(dag.tags) >= 2, dag_id  # the shared tag plus the DAG's own
        assert isinstance(dag.doc_md, str) and dag_id in dag.doc_md, dag_id
        for task in dag.tasks:
            never_retried = ("send_alert", "approve_deployment", "check_data_quality", "validate_infra")
            if task.task_id not in never_retried:
                assert task.retries == args["retries"], (dag_id, task.task_id)


def test_ui_guidance_description_task_docs_and_owner(dagbag) -> None:
    """Every DAG has a one-line description; every task a doc_md saying what it reads/writes and its XCom;
    the owner is MLOPS_OWNER's default."""
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert isinstance(dag.description, str) and 20 < len(dag.description) <= 120, dag_id
        assert "\n" not in dag.description, dag_id
        for task in dag.tasks:
            assert isinstance(task.doc_md, str), (dag_id, task.task_id)
            assert "XCom" in task.doc_md, (dag_id, task.task_id)
            assert task.owner == "ml-platform", (dag_id, task.task_id)


def test_owner_follows_mlops_owner(tmp_path: Path) -> None:
    """MLOPS_OWNER sets the owner of every task (read when the DAG file is parsed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False", MLOPS_OWNER="data-team")
    probe = ("import sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
             "dag = DagBag(sys.argv[1]).dags['data_pipeline_dag']\n"
             "print('OWNERS=' + ','.join(sorted({t.owner for t in dag.tasks})))")
    done = subprocess.run([sys.executable, "-c", probe, str(DAGS / "data_pipeline_dag.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OWNERS=data-team" in done.stdout


@pytest.mark.parametrize(("dag_id", "names"), [
    ("data_pipeline_dag", {"f1_threshold", "max_retrain_attempts", "min_improvement", "require_approval", "drift"}),
    ("model_evaluation_pipeline", {"f1_threshold", "max_retrain_attempts", "min_improvement"}),
    ("model_deployment_pipeline", {"require_approval"}),
])
def test_params_describe_their_resolved_defaults(dagbag, dag_id: str, names: set[str]) -> None:
    """Each DAG's params have a description ending with the default in effect and its MLOPS_* variable."""
    params = dagbag.dags[dag_id].params
    assert set(params.keys()) == names
    for name in names - {"drift"}:  # drift has no setting: its default is always none
        param = params.get_param(name)
        assert f"Default here: {param.value!r} (MLOPS_{name.upper()})." in param.description, name


def test_data_pipeline_is_a_chain_that_triggers_the_day(dagbag) -> None:
    """wait_for_previous_day -> generate_data -> preprocess_data -> check_data_quality -> store_processing_metadata
    -> trigger_evaluation
    -> trigger_deployment.

    The gate runs before store_processing_metadata, the task the evaluation DAG's sensor waits for, so a
    failed gate leaves it upstream_failed and the sensor fails; the gate is never retried. The triggers run
    last (a failed batch starts nothing downstream), the deployment run is created after the evaluation run
    (its sensor must find it), and still when the evaluation run already existed (none_failed).
    """
    dag = dagbag.dags["data_pipeline_dag"]
    assert set(dag.task_ids) == {"wait_for_previous_day", "generate_data", "preprocess_data", "check_data_quality",
                                 "store_processing_metadata", "trigger_evaluation", "trigger_deployment"}
    assert dag.get_task("wait_for_previous_day").downstream_task_ids == {"generate_data"}
    assert dag.get_task("generate_data").downstream_task_ids == {"preprocess_data"}
    assert dag.get_task("preprocess_data").downstream_task_ids == {"check_data_quality"}
    assert dag.get_task("check_data_quality").downstream_task_ids == {"store_processing_metadata"}
    assert dag.get_task("check_data_quality").retries == 0
    assert dag.get_task("store_processing_metadata").downstream_task_ids == {"trigger_evaluation"}
    assert dag.get_task("trigger_evaluation").downstream_task_ids == {"trigger_deployment"}
    assert dag.get_task("trigger_deployment").trigger_rule == "none_failed"


def test_the_day_waits_for_the_previous_day_across_the_three_dags(dagbag) -> None:
    """data_pipeline_dag starts with a sensor on the previous logical date's runs of the three DAGs, with
    depends_on_past (so Airflow refuses a backfill run backwards and requires the previous wait's success),
    poking in one process (poke mode), timing out after the approval window plus the other sensors' 6 hours."""
    from daily_mlops.orchestration.dags import SENSOR_TIMEOUT
    from daily_mlops.orchestration.operators import PreviousDaySensor

    dag = dagbag.dags["data_pipeline_dag"]
    task = dag.get_task("wait_for_previous_day")
    assert isinstance(task, PreviousDaySensor)
    assert task.upstream_task_ids == set() and [t.task_id for t in dag.roots] == ["wait_for_previous_day"]
    assert task.downstream_dag_ids == ("model_evaluation_pipeline", "model_deployment_pipeline")
    assert task.depends_on_past is True and task.mode == "poke"
    assert task.timeout > SENSOR_TIMEOUT
    assert not any(t.depends_on_past for d in DAG_IDS for t in dagbag.dags[d].tasks if t is not task)


@pytest.mark.parametrize(("task_id", "target", "forwarded"), [
    ("trigger_evaluation", "model_evaluation_pipeline", ("f1_threshold", "max_retrain_attempts", "min_improvement")),
    ("trigger_deployment", "model_deployment_pipeline", ("require_approval",)),
])
def test_trigger_tasks(dagbag, task_id: str, target: str, forwarded: tuple) -> None:
    """Each trigger is a TriggerDagRunOperator for the same logical date with a readable run id, fire-and-forget,
    skipping when the run exists, forwarding the params its target declares."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    task = dagbag.dags["data_pipeline_dag"].get_task(task_id)
    assert isinstance(task, TriggerDagRunOperator)
    assert task.trigger_dag_id == target and target in DAG_IDS
    assert task.wait_for_completion is False
    assert task.skip_when_already_exists is True
    assert task.logical_date == "{{ logical_date.isoformat() }}"
    assert task.trigger_run_id == "{{ day_run_id(logical_date) }}"
    assert task.forward_params == forwarded
    assert set(forwarded) <= set(dagbag.dags[target].params.keys())


def test_trigger_templates_render_the_day(dagbag) -> None:
    """The trigger's templates render to the data run's logical date and the run id day__<date>."""
    import pendulum

    dag = dagbag.dags["data_pipeline_dag"]
    env = dag.get_template_env()
    logical_date = pendulum.datetime(2026, 11, 6, tz="UTC")
    task = dag.get_task("trigger_evaluation")
    assert env.from_string(task.trigger_run_id).render(logical_date=logical_date) == "day__2026-11-06"
    assert env.from_string(task.logical_date).render(logical_date=logical_date) == "2026-11-06T00:00:00+00:00"


# --------------------------------------------------------------------------- evaluation DAG
def _edges(dag) -> list[tuple[str, str]]:
    return [(t.task_id, d) for t in dag.tasks for d in sorted(t.downstream_task_ids)]


def _label(dag, upstream: str, downstream: str) -> str | None:
    """The label the Graph view draws on a task edge: Airflow's own ``dag_edges`` (what the UI renders).

    An edge leaving a task group is drawn through the group's ``downstream_join_id`` node, which
    then carries the label.
    """
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.dag_edges import dag_edges

    drawn = {(e["source_id"], e["target_id"]): e.get("label")
             for e in dag_edges(DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)))}
    if (upstream, downstream) in drawn:
        return drawn[(upstream, downstream)]
    join = upstream.rsplit(".", 1)[0] + ".downstream_join_id"
    assert (upstream, join) in drawn and (join, downstream) in drawn, f"{upstream} -> {downstream} is not drawn"
    return drawn[(join, downstream)]


def test_evaluation_has_unrolled_attempt_groups(evaluation) -> None:
    """attempt_1..3 are task groups of retrain_model -> check_model_performance."""
    ids = set(evaluation.task_ids)
    for attempt in (1, 2, 3):
        group = evaluation.task_group_dict[f"attempt_{attempt}"]
        assert {t.task_id for t in group} == {f"attempt_{attempt}.retrain_model",
                                            f"attempt_{attempt}.check_model_performance"}
        retrain = evaluation.get_task(f"attempt_{attempt}.retrain_model")
        assert f"attempt_{attempt}.check_model_performance" in retrain.downstream_task_ids
    assert "attempt_4.retrain_model" not in ids
    assert {"wait_for_data", "load_latest_model", "evaluate_model", "check_model_performance",
            "send_evaluation_results", "send_alert"} <= ids


def test_evaluation_graph_is_legible(evaluation) -> None:
    """At most 26 task-level edges (the champion's recalibration added 4), and no task but the two join tasks has
    more than 2 upstream tasks."""
    edges = _edges(evaluation)
    assert len(edges) <= 26, len(edges)
    crowded = {t.task_id: sorted(t.upstream_task_ids) for t in evaluation.tasks
               if len(t.upstream_task_ids) > 2 and t.task_id not in ("send_evaluation_results", "send_alert")}
    assert crowded == {}


def test_xcom_flows_as_a_chain(evaluation) -> None:
    """The recalibration reads the champion's evaluation, each retrain_model only the evaluation just before it
    (data edge), after its branch."""
    assert evaluation.get_task("recalibration.recalibrate_champion").upstream_task_ids == {
        "evaluate_model", "check_model_performance"}
    assert evaluation.get_task("attempt_1.retrain_model").upstream_task_ids == {
        "recalibration.recalibrate_champion", "recalibration.check_model_performance"}
    for attempt in (2, 3):
        assert evaluation.get_task(f"attempt_{attempt}.retrain_model").upstream_task_ids == {
            f"attempt_{attempt - 1}.retrain_model", f"attempt_{attempt - 1}.check_model_performance"}
    checks = {"check_model_performance", "recalibration.check_model_performance",
              *(f"attempt_{a}.check_model_performance" for a in (1, 2, 3))}
    assert evaluation.get_task("send_alert").upstream_task_ids == checks  # it pulls the last result itself
    assert evaluation.get_task("send_evaluation_results").upstream_task_ids == checks


def test_branch_tasks_are_branch_operators(evaluation) -> None:
    """check_model_performance, recalibration's and attempt_1..3's check_model_performance are branch operators."""
    from airflow.providers.standard.operators.python import BranchPythonOperator
    from airflow.sdk.bases.branch import BaseBranchOperator

    branches = ["check_model_performance", "recalibration.check_model_performance",
                *(f"attempt_{a}.check_model_performance" for a in (1, 2, 3))]
    for task_id in branches:
        task = evaluation.get_task(task_id)
        assert isinstance(task, BaseBranchOperator), task_id
        assert isinstance(task, BranchPythonOperator), task_id
    others = set(evaluation.task_ids) - set(branches)
    assert not any(isinstance(evaluation.get_task(t), BaseBranchOperator) for t in others)


@pytest.mark.parametrize(
    ("branch", "targets"),
    [
        ("check_model_performance", {"recalibration.recalibrate_champion", "send_evaluation_results", "send_alert"}),
        ("recalibration.check_model_performance", {"attempt_1.retrain_model", "send_evaluation_results", "send_alert"}),
        ("attempt_1.check_model_performance", {"attempt_2.retrain_model", "send_evaluation_results", "send_alert"}),
        ("attempt_2.check_model_performance", {"attempt_3.retrain_model", "send_evaluation_results", "send_alert"}),
        ("attempt_3.check_model_performance", {"send_evaluation_results", "send_alert"}),
    ],
)
def test_branch_targets_are_its_direct_downstream_tasks(evaluation, branch: str, targets: set[str]) -> None:
    """Every task id a branch may return is directly downstream of it (Airflow only follows those)."""
    from daily_mlops.decisions import ALERT, PASS, RETRAIN, task_for_step

    assert evaluation.get_task(branch).downstream_task_ids == targets
    attempt = 0 if not branch.startswith("attempt_") else int(branch.split("_")[1].split(".")[0])
    recalibrated = branch != "check_model_performance"
    assert {task_for_step(step, attempt, 3, recalibrated=recalibrated) for step in (PASS, RETRAIN, ALERT)} == targets


def test_branch_edges_carry_distinct_labels(evaluation) -> None:
    """Every branch edge is labelled, no label repeats, and the direct check -> send_alert edge says it is for
    max_retrain_attempts 0; data edges (the XCom chain) carry none."""
    labels = {}
    branches = ["check_model_performance", "recalibration.check_model_performance",
                *(f"attempt_{a}.check_model_performance" for a in (1, 2, 3))]
    for branch in branches:
        for target in evaluation.get_task(branch).downstream_task_ids:
            labels[(branch, target)] = _label(evaluation, branch, target)
    assert all(labels.values()), labels
    assert len(set(labels.values())) == len(labels), labels
    assert "max_retrain_attempts = 0" in labels[("check_model_performance", "send_alert")]
    assert _label(evaluation, "evaluate_model", "recalibration.recalibrate_champion") is None
    assert _label(evaluation, "recalibration.recalibrate_champion", "attempt_1.retrain_model") is None
    assert _label(evaluation, "attempt_1.retrain_model", "attempt_2.retrain_model") is None


def test_join_and_alert_tasks(evaluation) -> None:
    """send_evaluation_results joins the branches; send_alert has notifiers and no retries."""
    from daily_mlops.orchestration.notifiers import MongoNotificationNotifier

    results = evaluation.get_task("send_evaluation_results")
    assert results.trigger_rule == "none_failed_min_one_success"
    alert = evaluation.get_task("send_alert")
    callbacks = alert.on_failure_callback
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    assert callbacks and all(callbacks)
    assert any(isinstance(cb, MongoNotificationNotifier) for cb in callbacks)
    assert alert.retries == 0
    assert alert.downstream_task_ids == set()


def test_send_alert_runs_when_fewer_than_three_attempts_are_allowed(evaluation) -> None:
    """send_alert tolerates skipped upstream checks: with max_retrain_attempts 0..2 it is reached early.

    With the default all_success rule the unused attempt_N checks are skipped, so send_alert would be
    skipped too and no alert raised.
    """
    alert = evaluation.get_task("send_alert")
    skippable = {f"attempt_{a}.check_model_performance" for a in (1, 2, 3)}
    assert skippable <= alert.upstream_task_ids  # the situation exists ...
    assert alert.trigger_rule == "none_failed_min_one_success"  # ... so all_success would skip the alert


def _check_sensor(dagbag, sensor, *, external_dag_id: str, external_task_id: str) -> None:
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    from daily_mlops.orchestration.operators import UpstreamRunSensor

    assert isinstance(sensor, ExternalTaskSensor) and isinstance(sensor, UpstreamRunSensor)
    assert sensor.external_dag_id == external_dag_id
    assert sensor.external_task_id == external_task_id
    assert dagbag.dags[external_dag_id].has_task(sensor.external_task_id)
    assert 0 < _seconds(sensor.timeout) < SEVEN_DAYS
    assert set(sensor.failed_states) >= {"failed"}
    assert set(sensor.skipped_states) >= {"skipped"}
    assert sensor.allowed_states == ["success"]
    assert sensor.mode == "reschedule"


def test_wait_for_data_targets_the_data_pipeline(dagbag, evaluation) -> None:
    """wait_for_data checks a data_pipeline_dag run exists, then waits for store_processing_metadata."""
    sensor = evaluation.get_task("wait_for_data")
    _check_sensor(dagbag, sensor, external_dag_id="data_pipeline_dag", external_task_id="store_processing_metadata")
    assert sensor.downstream_task_ids == {"load_latest_model"}


def test_drift_param_is_the_data_dags_own(dagbag) -> None:
    """drift defaults to none, allows only the four documented modes and is forwarded to neither downstream DAG."""
    param = dagbag.dags["data_pipeline_dag"].params.get_param("drift")
    assert param.value == "none"
    assert param.schema["enum"] == ["none", "shift", "label_noise", "broken"]
    for dag_id in ("model_evaluation_pipeline", "model_deployment_pipeline"):
        assert "drift" not in dagbag.dags[dag_id].params.keys()
    for task_id in ("trigger_evaluation", "trigger_deployment"):
        assert "drift" not in dagbag.dags["data_pipeline_dag"].get_task(task_id).forward_params


def test_evaluation_params(evaluation) -> None:
    """Params f1_threshold (default auto), min_improvement and max_retrain_attempts exist with the settings'
    defaults and bounds."""
    f1 = evaluation.params.get_param("f1_threshold")
    attempts = evaluation.params.get_param("max_retrain_attempts")
    gain = evaluation.params.get_param("min_improvement")
    assert f1.value == "auto"
    assert f1.schema["type"] == ["number", "string"] and f1.schema["pattern"] == "^auto$"
    assert f1.schema["maximum"] > 1  # a threshold above 1 forces the alert path in a demo
    assert "It resolves to" in f1.description and "f1_tolerance 0.05" in f1.description
    assert gain.value == 0.0 and (gain.schema["minimum"], gain.schema["maximum"]) == (0, 1)
    assert attempts.value == 3
    assert attempts.schema["type"] == "integer"
    assert (attempts.schema["minimum"], attempts.schema["maximum"]) == (0, 3)


# --------------------------------------------------------------------------- deployment DAG
def test_wait_for_evaluation_targets_send_evaluation_results(dagbag, deployment) -> None:
    """wait_for_evaluation checks a model_evaluation_pipeline run exists, then waits for send_evaluation_results."""
    sensor = deployment.get_task("wait_for_evaluation")
    _check_sensor(dagbag, sensor, external_dag_id="model_evaluation_pipeline",
                  external_task_id="send_evaluation_results")


def test_deployment_order(deployment) -> None:
    """wait_for_evaluation -> wait_for_model_ready -> validate_infra -> approve_deployment -> deploy_model ->
    notify_deployment_complete.

    deploy_model also reads wait_for_model_ready's XCom and depends on validate_infra directly, and runs when
    the approval step is skipped (require_approval false) but not when it or validate_infra failed
    (none_failed_min_one_success); validate_infra is never retried (a refusal is a verdict).
    """
    assert set(deployment.task_ids) == {"wait_for_evaluation", "wait_for_model_ready", "validate_infra",
                                        "approve_deployment", "deploy_model", "notify_deployment_complete"}
    assert deployment.get_task("wait_for_evaluation").downstream_task_ids == {"wait_for_model_ready"}
    assert deployment.get_task("wait_for_model_ready").downstream_task_ids == {"validate_infra", "deploy_model"}
    assert deployment.get_task("validate_infra").downstream_task_ids == {"approve_deployment", "deploy_model"}
    assert deployment.get_task("validate_infra").retries == 0
    assert deployment.get_task("approve_deployment").downstream_task_ids == {"deploy_model"}
    assert deployment.get_task("deploy_model").downstream_task_ids == {"notify_deployment_complete"}
    assert deployment.get_task("deploy_model").trigger_rule == "none_failed_min_one_success"
    ready = deployment.get_task("wait_for_model_ready")
    assert 0 < _seconds(ready.timeout) < SEVEN_DAYS


def test_approval_step(deployment) -> None:
    """approve_deployment is the standard provider's HITL ApprovalOperator: 24 h timeout, never retried,
    require_approval off by default."""
    import datetime as _dt

    from airflow.providers.standard.operators.hitl import ApprovalOperator

    task = deployment.get_task("approve_deployment")
    assert isinstance(task, ApprovalOperator)
    assert task.response_timeout == _dt.timedelta(hours=24)
    assert task.retries == 0
    assert task.options == ["Approve", "Reject"]
    assert "wait_for_model_ready" in task.subject
    assert deployment.params.get_param("require_approval").value is False


# --------------------------------------------------------------------------- parse-time imports
_PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="dag_file_probe")
print("HEAVY=" + json.dumps([m for m in sys.argv[2].split(",") if m in sys.modules]))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_a_dag_file_imports_nothing_heavy(dag_file: str, tmp_path: Path) -> None:
    """Importing a DAG file in a fresh interpreter loads none of torch, sdv, pandas, sklearn, pymongo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(DAGS / dag_file), ",".join(HEAVY)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("HEAVY="))
    assert json.loads(line.removeprefix("HEAVY=")) == [], f"{dag_file} imports heavy modules at parse time"


def test_probe_detects_a_heavy_import(tmp_path: Path) -> None:
    """The probe itself works: a file that imports pandas is reported (so an empty result means something)."""
    probe_file = tmp_path / "heavy_dag.py"
    probe_file.write_text("import pandas\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(probe_file), ",".join(HEAVY)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("HEAVY="))
    assert "pandas" in json.loads(line.removeprefix("HEAVY="))


def _probe_file(tmp_path: Path, source: str, name: str = "probe.py") -> list[str]:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run([sys.executable, "-c", _PROBE, str(path), ",".join(HEAVY)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("HEAVY="))
    return json.loads(line.removeprefix("HEAVY="))


def test_importing_the_package_imports_nothing_heavy(tmp_path: Path) -> None:
    """`import daily_mlops` (and its public names that are not heavy) loads none of the heavy libraries."""
    assert _probe_file(tmp_path, "import daily_mlops\ndaily_mlops.Settings\ndaily_mlops.next_step\n") == []


def test_a_heavy_public_name_loads_on_first_use(tmp_path: Path) -> None:
    """PEP 562: touching daily_mlops.TabTransformer imports torch then, and only then."""
    assert "torch" in _probe_file(tmp_path, "import daily_mlops\ndaily_mlops.TabTransformer\n")


def test_a_dag_file_parses_when_the_reference_data_is_missing(tmp_path: Path) -> None:
    """MLOPS_REFERENCE_DATA pointing at a missing file does not break parsing; only bootstrap needs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               MLOPS_REFERENCE_DATA=str(tmp_path / "missing.csv"),
               MLOPS_ALERT_NOTIFIER="no_such_module:Nope")  # resolved when the callback runs, not at parse time
    for dag_file in sorted(DAGS.glob("*.py")):
        done = subprocess.run([sys.executable, "-c", _PROBE, str(dag_file), ",".join(HEAVY)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{dag_file.name}: {done.stderr[-2000:]}"


def test_retrain_attempts_run_on_the_training_queue(evaluation, tmp_path: Path) -> None:
    """attempt_k.retrain_model carry queue=MLOPS_TRAINING_QUEUE (read when the file is parsed; default `default`);
    every other task keeps Airflow's default queue."""
    def queues(dag) -> dict[str, str]:
        return {task.task_id: task.queue for task in dag.tasks}

    default = queues(evaluation)
    retrain = {name for name in default if name.endswith("." + RETRAIN_TASK)}
    assert len(retrain) == 3
    assert set(default.values()) == {"default"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_TRAINING_QUEUE="gpu", AIRFLOW__CORE__LOAD_EXAMPLES="False")
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(sys.argv[1]).dags['model_evaluation_pipeline']\n"
        "print('QUEUES=' + json.dumps({t.task_id: t.queue for t in dag.tasks}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(DAGS / "model_evaluation_pipeline.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("QUEUES="))
    gpu = json.loads(line.removeprefix("QUEUES="))
    assert {name for name, queue in gpu.items() if queue == "gpu"} == retrain
    assert {queue for name, queue in gpu.items() if name not in retrain} == {"default"}
