"""DagBag integrity of the three DAG files, and proof that parsing them imports nothing heavy."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_schedule_start_date_and_catchup_are_shared(dagbag) -> None:
    """All three DAGs run @daily from the same start date without catch-up, so sensor logical dates line up."""
    dags = [dagbag.dags[d] for d in sorted(DAG_IDS)]
    for dag in dags:
        assert dag.schedule == "@daily", dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
    assert len({dag.start_date for dag in dags}) == 1
    assert len({repr(dag.timetable) for dag in dags}) == 1


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
            if task.task_id != "send_alert":
                assert task.retries == args["retries"], (dag_id, task.task_id)


def test_data_pipeline_is_a_chain(dagbag) -> None:
    """data_pipeline_dag runs generate_data -> preprocess_data -> store_processing_metadata."""
    dag = dagbag.dags["data_pipeline_dag"]
    assert set(dag.task_ids) == {"generate_data", "preprocess_data", "store_processing_metadata"}
    assert dag.get_task("generate_data").downstream_task_ids == {"preprocess_data"}
    assert dag.get_task("preprocess_data").downstream_task_ids == {"store_processing_metadata"}
    assert dag.get_task("store_processing_metadata").downstream_task_ids == set()


# --------------------------------------------------------------------------- evaluation DAG
def test_evaluation_has_unrolled_attempts(evaluation) -> None:
    """The evaluation DAG unrolls retrain_attempt_1..3, each followed by its own check."""
    ids = set(evaluation.task_ids)
    for attempt in (1, 2, 3):
        assert f"retrain_attempt_{attempt}" in ids
        assert f"check_attempt_{attempt}" in ids
        assert evaluation.get_task(f"retrain_attempt_{attempt}").downstream_task_ids >= {f"check_attempt_{attempt}"}
    assert "retrain_attempt_4" not in ids
    assert {"wait_for_data", "load_latest_model", "evaluate_model", "check_model_performance",
            "send_evaluation_results", "send_alert"} <= ids


def test_branch_tasks_are_branch_operators(evaluation) -> None:
    """check_model_performance and check_attempt_1..3 are branch operators (they skip the paths not taken)."""
    from airflow.providers.standard.operators.python import BranchPythonOperator
    from airflow.sdk.bases.branch import BaseBranchOperator

    branches = ["check_model_performance", "check_attempt_1", "check_attempt_2", "check_attempt_3"]
    for task_id in branches:
        task = evaluation.get_task(task_id)
        assert isinstance(task, BaseBranchOperator), task_id
        assert isinstance(task, BranchPythonOperator), task_id
    others = set(evaluation.task_ids) - set(branches)
    assert not any(isinstance(evaluation.get_task(t), BaseBranchOperator) for t in others)


@pytest.mark.parametrize(
    ("branch", "targets"),
    [
        ("check_model_performance", {"retrain_attempt_1", "send_evaluation_results", "send_alert"}),
        ("check_attempt_1", {"retrain_attempt_2", "send_evaluation_results", "send_alert"}),
        ("check_attempt_2", {"retrain_attempt_3", "send_evaluation_results", "send_alert"}),
        ("check_attempt_3", {"send_evaluation_results", "send_alert"}),
    ],
)
def test_branch_targets_are_its_direct_downstream_tasks(evaluation, branch: str, targets: set[str]) -> None:
    """Every task id a branch may return is directly downstream of it (Airflow only follows those)."""
    assert evaluation.get_task(branch).downstream_task_ids == targets


def test_branch_edges_are_labelled(evaluation) -> None:
    """Edges out of each branch carry a label (pass / retrain attempt / attempts exhausted)."""
    assert evaluation.get_edge_info("check_model_performance", "retrain_attempt_1")["label"].endswith("attempt 1")
    for branch in ("check_model_performance", "check_attempt_1", "check_attempt_2", "check_attempt_3"):
        assert evaluation.get_edge_info(branch, "send_evaluation_results").get("label")
        assert evaluation.get_edge_info(branch, "send_alert").get("label")


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
    """send_alert tolerates skipped upstream attempts: with max_retrain_attempts 0..2 it is reached early.

    With the default all_success rule the unused retrain_attempt_N / check_attempt_N upstreams are
    skipped, so send_alert would be skipped too and no alert raised (checked with dag.test on a
    DAG of the same shape).
    """
    alert = evaluation.get_task("send_alert")
    skippable = {"retrain_attempt_1", "retrain_attempt_2", "retrain_attempt_3",
                 "check_attempt_1", "check_attempt_2", "check_attempt_3"}
    assert skippable <= alert.upstream_task_ids  # the situation exists ...
    assert alert.trigger_rule == "none_failed_min_one_success"  # ... so all_success would skip the alert


def test_wait_for_data_targets_the_data_pipeline(dagbag, evaluation) -> None:
    """wait_for_data waits for data_pipeline_dag.store_processing_metadata, with a timeout and fail/skip states."""
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    sensor = evaluation.get_task("wait_for_data")
    assert isinstance(sensor, ExternalTaskSensor)
    assert sensor.external_dag_id == "data_pipeline_dag"
    assert sensor.external_task_id == "store_processing_metadata"
    assert dagbag.dags["data_pipeline_dag"].has_task(sensor.external_task_id)
    assert 0 < _seconds(sensor.timeout) < SEVEN_DAYS
    assert "failed" in sensor.failed_states
    assert sensor.skipped_states
    assert sensor.mode == "reschedule"
    assert sensor.downstream_task_ids == {"load_latest_model"}


def test_evaluation_params(evaluation) -> None:
    """Params f1_threshold and max_retrain_attempts exist with the settings' defaults and bounds."""
    f1 = evaluation.params.get_param("f1_threshold")
    attempts = evaluation.params.get_param("max_retrain_attempts")
    assert f1.value == pytest.approx(0.75)
    assert f1.schema["type"] == "number"
    assert f1.schema["maximum"] > 1  # a threshold above 1 forces the alert path in a demo
    assert attempts.value == 3
    assert attempts.schema["type"] == "integer"
    assert (attempts.schema["minimum"], attempts.schema["maximum"]) == (0, 3)


# --------------------------------------------------------------------------- deployment DAG
def test_wait_for_evaluation_targets_send_evaluation_results(dagbag, deployment) -> None:
    """wait_for_evaluation waits for model_evaluation_pipeline.send_evaluation_results with a < 7 day timeout."""
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    sensor = deployment.get_task("wait_for_evaluation")
    assert isinstance(sensor, ExternalTaskSensor)
    assert sensor.external_dag_id == "model_evaluation_pipeline"
    assert sensor.external_task_id == "send_evaluation_results"
    assert dagbag.dags["model_evaluation_pipeline"].has_task(sensor.external_task_id)
    assert 0 < _seconds(sensor.timeout) < SEVEN_DAYS
    assert set(sensor.failed_states) >= {"failed"}
    assert set(sensor.skipped_states) >= {"skipped"}
    assert sensor.allowed_states == ["success"]


def test_deployment_order(deployment) -> None:
    """wait_for_evaluation -> wait_for_model_ready -> deploy_model -> notify_deployment_complete."""
    assert set(deployment.task_ids) == {
        "wait_for_evaluation", "wait_for_model_ready", "deploy_model", "notify_deployment_complete"}
    assert deployment.get_task("wait_for_evaluation").downstream_task_ids == {"wait_for_model_ready"}
    assert deployment.get_task("wait_for_model_ready").downstream_task_ids == {"deploy_model"}
    assert deployment.get_task("deploy_model").downstream_task_ids == {"notify_deployment_complete"}
    ready = deployment.get_task("wait_for_model_ready")
    assert 0 < _seconds(ready.timeout) < SEVEN_DAYS


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
    """retrain_attempt_* carry queue=MLOPS_TRAINING_QUEUE (read when the file is parsed; default `default`);
    every other task keeps Airflow's default queue."""
    def queues(dag) -> dict[str, str]:
        return {task.task_id.rsplit(".", 1)[-1]: task.queue for task in dag.tasks}

    default = queues(evaluation)
    retrain = {name for name in default if name.startswith("retrain_attempt_")}
    assert len(retrain) == 3
    assert set(default.values()) == {"default"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_TRAINING_QUEUE="gpu", AIRFLOW__CORE__LOAD_EXAMPLES="False")
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(sys.argv[1]).dags['model_evaluation_pipeline']\n"
        "print('QUEUES=' + json.dumps({t.task_id.rsplit('.', 1)[-1]: t.queue for t in dag.tasks}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(DAGS / "model_evaluation_pipeline.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("QUEUES="))
    gpu = json.loads(line.removeprefix("QUEUES="))
    assert {name for name, queue in gpu.items() if queue == "gpu"} == retrain
    assert {queue for name, queue in gpu.items() if name not in retrain} == {"default"}
