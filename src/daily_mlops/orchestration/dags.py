"""What the three DAG files share: DAG ids, schedules, default args, params, run ids and the task factories.

Imported at DAG parse time (and by ``daily-mlops run`` before Airflow is
configured), so it imports nothing heavy (no torch, sdv, pandas, scikit-learn
or the MongoDB driver) and no ``airflow`` module at import time: the factories
import Airflow and :mod:`daily_mlops.orchestration.operators` when called. A
``tests/dags`` test proves it and ``python -m benchmarks`` prints what each DAG
file adds to a parse.

How a day runs: only ``data_pipeline_dag`` is scheduled (``@daily``). Its last
two tasks trigger ``model_evaluation_pipeline`` and
``model_deployment_pipeline`` for its own logical date (run id
:func:`day_run_id`), forwarding the day's params, so one trigger (UI, REST or
the schedule) runs the whole day and the ExternalTaskSensors find their
upstream run at the same logical date.

Days run in date order across the three DAGs: ``data_pipeline_dag``'s first
task (:func:`previous_day_sensor`, ``depends_on_past``) waits until the
previous logical date's data, evaluation and deployment runs have finished,
because a day's champion is what the day before deployed. ``max_active_runs=1``
alone orders the runs of one DAG, and an Airflow backfill ignores it (its own
``max_active_runs`` applies).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum

from daily_mlops.orchestration.naming import (
    APPROVAL_TASK_ID,
    DAG_IDS,
    DATA_DAG_ID,
    DEPLOYMENT_DAG_ID,
    EVALUATION_DAG_ID,
    PREVIOUS_DAY_TASK,
    announce_logical_date,
    day_run_id,
    logs_logical_date,
    missing_upstream_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from airflow.sdk import Param

    from daily_mlops.orchestration.approval import DeploymentApproval
    from daily_mlops.orchestration.operators import PreviousDaySensor, UpstreamRunSensor
    from daily_mlops.orchestration.triggers import DayRunTrigger
    from daily_mlops.settings import Settings
    from daily_mlops.settings.parse_time import DagSettings

__all__ = [
    "APPROVAL_TASK_ID",
    "DAG_IDS",
    "DATA_DAG_ID",
    "DATA_SCHEDULE",
    "DAY_PARAMS",
    "DEPLOYMENT_DAG_ID",
    "EVALUATION_DAG_ID",
    "MAX_ATTEMPTS",
    "PREVIOUS_DAY_POKE_INTERVAL",
    "PREVIOUS_DAY_TASK",
    "SENSOR_TIMEOUT",
    "START_DATE",
    "TAGS",
    "TRIGGERED_SCHEDULE",
    "announce_logical_date",
    "approval_step",
    "day_params",
    "day_run_id",
    "default_args",
    "logs_logical_date",
    "missing_upstream_message",
    "previous_day_sensor",
    "trigger_day_run",
    "upstream_sensor",
]


#: The data DAG's schedule: the scheduler starts each day there.
DATA_SCHEDULE = "@daily"
#: The evaluation and deployment DAGs have no schedule of their own: ``data_pipeline_dag`` triggers
#: them for its logical date, so a scheduled day still gets exactly one run of each DAG.
TRIGGERED_SCHEDULE = None
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
TAGS = ["daily-mlops"]
#: How long a sensor waits for the upstream DAG before failing (seconds).
SENSOR_TIMEOUT = 6 * 60 * 60
#: Seconds between two pokes of the ExternalTaskSensors (reschedule mode frees the slot in between).
SENSOR_POKE_INTERVAL = 30
#: Seconds between two pokes of ``wait_for_previous_day``, which pokes in one process (``poke`` mode): the next
#: day starts within seconds of the previous one's end, and ``depends_on_past`` lets at most one such wait run.
PREVIOUS_DAY_POKE_INTERVAL = 5
#: Retraining attempts unrolled as distinct tasks (Airflow DAGs cannot loop); the param can lower, not raise, it.
MAX_ATTEMPTS = 3
#: The params of a day and the DAG that reads each; ``data_pipeline_dag`` offers them all and forwards them.
DAY_PARAMS = {
    "f1_threshold": EVALUATION_DAG_ID,
    "max_retrain_attempts": EVALUATION_DAG_ID,
    "min_improvement": EVALUATION_DAG_ID,
    "require_approval": DEPLOYMENT_DAG_ID,
    "drift": DATA_DAG_ID,
}


def default_args(settings: DagSettings | Settings) -> dict[str, Any]:
    """Task defaults: owner ``MLOPS_OWNER``; ``MLOPS_TASK_RETRIES`` retries, exponential backoff from 1 to 10 min."""
    return {
        "owner": settings.owner,
        "retries": settings.task_retries,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


def day_params(settings: DagSettings | Settings, names: tuple[str, ...]) -> dict[str, Param]:
    """The trigger-form params ``names`` (keys of :data:`DAY_PARAMS`), defaults and bounds from ``settings``.

    Each description ends with the default in effect and the setting it came
    from, so the trigger form tells where a value comes from.
    """
    from airflow.sdk import Param

    from daily_mlops.ml.drift_scenarios import DRIFT_MODES
    from daily_mlops.settings.thresholds import AUTO, F1_THRESHOLD_MAX, auto_f1_threshold

    def resolved(field: str) -> str:
        return f" Default here: {getattr(settings, field)!r} (MLOPS_{field.upper()})."

    def floor() -> str:
        tolerance = settings.f1_tolerance
        if settings.f1_threshold != AUTO:
            return (resolved("f1_threshold") + " 'auto' would be the bootstrap model's held-out F1 minus "
                    f"f1_tolerance {tolerance:g}.")
        record = getattr(settings, "bootstrap_floor", None)
        if record:
            value = auto_f1_threshold(record["bootstrap_f1"], tolerance)
            return (resolved("f1_threshold") + f" It resolves to {value:.4f}: {record.get('model_name', 'the model')} "
                    f"v{record.get('model_version', 1)}'s held-out F1 {record['bootstrap_f1']:.4f} minus "
                    f"f1_tolerance {tolerance:g} (MLOPS_F1_TOLERANCE), as `daily-mlops bootstrap` recorded it; "
                    "the tasks read it from the registry.")
        return (resolved("f1_threshold") + " It resolves to the bootstrap model's held-out F1 minus f1_tolerance "
                f"{tolerance:g} (MLOPS_F1_TOLERANCE), read from the registry when the run starts; "
                "`daily-mlops status` prints it.")

    known = {
        "f1_threshold": lambda: Param(
            settings.f1_threshold, type=["number", "string"], minimum=0, maximum=F1_THRESHOLD_MAX,
            pattern=f"^{AUTO}$", title="F1 threshold",
            description="F1 of the positive class a model must reach to be deployed: 'auto' or a number 0 to "
                        f"{F1_THRESHOLD_MAX:g}; above 1 forces the retrain-and-alert path." + floor()),
        "min_improvement": lambda: Param(
            settings.min_improvement, type="number", minimum=0, maximum=1, title="Minimum improvement",
            description="F1 a retrained version must gain over the champion on the same day's test split, "
                        "besides reaching the F1 threshold, to be approved." + resolved("min_improvement")),
        "max_retrain_attempts": lambda: Param(
            settings.max_retrain_attempts, type="integer", minimum=0, maximum=MAX_ATTEMPTS,
            title="Retraining attempts",
            description=f"Fine-tuning attempts (0 to {MAX_ATTEMPTS}) before the alert." + resolved(
                "max_retrain_attempts")),
        "require_approval": lambda: Param(
            settings.require_approval, type="boolean", title="Require approval",
            description="A reviewer approves the model version (Required actions in the UI) before "
                        f"deploy_model; no answer within {settings.approval_timeout_hours:g} h "
                        "(MLOPS_APPROVAL_TIMEOUT_HOURS) fails the step." + resolved("require_approval")),
            "drift": lambda: Param(
            DRIFT_MODES[0], type="string", enum=list(DRIFT_MODES), title="Drift of the day's batch",
            description="Alters the sampled batch (daily_mlops.ml.drift_scenarios; docs/demo.md): none; "
                        "shift (numeric columns moved 30% of the way to their reference maximum: the champion "
                        "falls, fine-tuning recovers); label_noise (part of the positive labels flipped: "
                        "no attempt reaches the floor); "
                        "broken (unseen categories and nulls: the data-quality gate stops the day)."),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown day params {unknown}; known: {sorted(known)}")
    return {name: known[name]() for name in names}


def upstream_sensor(task_id: str, *, external_dag_id: str, external_task_id: str,
                    doc_md: str | None = None, **kwargs: Any) -> UpstreamRunSensor:
    """The ExternalTaskSensor both downstream DAGs use to wait for the same logical date upstream.

    First checks that a run of ``external_dag_id`` exists for the logical
    date and fails at once (no retry) naming the DAG to trigger when it does
    not (:class:`~daily_mlops.orchestration.operators.UpstreamRunSensor`).
    Then: succeeds on ``success``; is skipped when the upstream task was
    skipped; fails on ``failed`` / ``upstream_failed`` instead of poking on
    (Airflow 3 keeps poking a failed upstream unless ``failed_states`` says so); times
    out after :data:`SENSOR_TIMEOUT` seconds; ``reschedule`` mode frees the
    worker slot between pokes. ``kwargs`` (e.g. ``on_skipped_callback``) go to the operator.
    """
    from daily_mlops.orchestration.operators import UpstreamRunSensor

    return UpstreamRunSensor(
        task_id=task_id, external_dag_id=external_dag_id, external_task_id=external_task_id,
        allowed_states=["success"], failed_states=["failed", "upstream_failed"], skipped_states=["skipped"],
        timeout=SENSOR_TIMEOUT, poke_interval=SENSOR_POKE_INTERVAL, mode="reschedule", doc_md=doc_md, **kwargs,
    )


def previous_day_sensor(settings: DagSettings | Settings, *, doc_md: str | None = None) -> PreviousDaySensor:
    """``data_pipeline_dag``'s first task: wait until the previous logical date's three DAG runs have finished.

    A :class:`~daily_mlops.orchestration.operators.PreviousDaySensor` with
    ``depends_on_past=True`` (Airflow then also requires the previous run's
    own wait to have succeeded, and refuses a backfill run backwards), poking
    every :data:`PREVIOUS_DAY_POKE_INTERVAL` seconds in ``poke`` mode (one
    worker slot, held by at most one such wait thanks to ``depends_on_past``;
    ``reschedule`` mode would start a task process per poke), timing out after
    :data:`SENSOR_TIMEOUT` plus ``MLOPS_APPROVAL_TIMEOUT_HOURS`` (the previous
    day may wait that long for a reviewer). Day d+1's data work reads
    nothing day d writes (the synthesizer and preprocessor are bootstrap's),
    but its evaluation reads the champion day d deployed, so the whole day waits:
    one gate for the three DAGs, where a backfill starts the runs.
    """
    from daily_mlops.orchestration.operators import PreviousDaySensor

    return PreviousDaySensor(
        task_id=PREVIOUS_DAY_TASK, downstream_dag_ids=(EVALUATION_DAG_ID, DEPLOYMENT_DAG_ID), depends_on_past=True,
        timeout=SENSOR_TIMEOUT + settings.approval_timeout_hours * 3600, poke_interval=PREVIOUS_DAY_POKE_INTERVAL,
        mode="poke", doc_md=doc_md,
    )


def trigger_day_run(task_id: str, *, trigger_dag_id: str, doc_md: str | None = None, **kwargs: Any) -> DayRunTrigger:
    """A TriggerDagRunOperator that creates ``trigger_dag_id``'s run of this logical date, once.

    Run id :func:`day_run_id` (templated from ``logical_date``), the
    :data:`DAY_PARAMS` that DAG reads forwarded as its conf,
    ``wait_for_completion=False`` (the downstream sensors order the day), and
    ``skip_when_already_exists=True``; a run of that DAG at the same logical
    date under another run id (the UI, REST) also skips it
    (:class:`~daily_mlops.orchestration.triggers.DayRunTrigger`).
    """
    from daily_mlops.orchestration.triggers import DayRunTrigger

    return DayRunTrigger(
        task_id=task_id, trigger_dag_id=trigger_dag_id,
        trigger_run_id="{{ day_run_id(logical_date) }}", logical_date="{{ logical_date.isoformat() }}",
        forward_params=tuple(name for name, dag_id in DAY_PARAMS.items() if dag_id == trigger_dag_id),
        wait_for_completion=False, skip_when_already_exists=True, doc_md=doc_md, **kwargs,
    )


def approval_step(
    settings: DagSettings | Settings, *, ready_task_id: str, doc_md: str | None = None
) -> DeploymentApproval:
    """The deployment DAG's human approval step (HITL ``ApprovalOperator``), skipped unless ``require_approval``.

    Waits at most ``MLOPS_APPROVAL_TIMEOUT_HOURS``; never retried (a retry
    would ask the reviewer again). See
    :class:`~daily_mlops.orchestration.approval.DeploymentApproval`.
    """
    from daily_mlops.orchestration.approval import DeploymentApproval

    version = f"{{{{ (ti.xcom_pull(task_ids='{ready_task_id}') or {{}}).get('model_version') }}}}"
    f1 = f"{{{{ '%.4f' | format((ti.xcom_pull(task_ids='{ready_task_id}') or {{}}).get('f1') or 0) }}}}"
    threshold = f"{{{{ (ti.xcom_pull(task_ids='{ready_task_id}') or {{}}).get('f1_threshold') }}}}"
    return DeploymentApproval(
        task_id=APPROVAL_TASK_ID, ready_task_id=ready_task_id,
        subject=f"Deploy tabtransformer version {version} for {{{{ ds }}}}?",
        body=(f"Model version **{version}** passed evaluation on {{{{ ds }}}} with F1 **{f1}** "
              f"(threshold {threshold}); its artifacts' sha256 were verified.\n\n"
              "* **Approve**: `deploy_model` copies it to the deployment directory.\n"
              "* **Reject**: nothing is deployed; a `deployment_events` document with status "
              "`rejected_by_reviewer` records your decision.\n\n"
              f"No answer within {settings.approval_timeout_hours:g} h fails this step and deploys nothing."),
        response_timeout=dt.timedelta(hours=settings.approval_timeout_hours), retries=0, doc_md=doc_md,
    )
