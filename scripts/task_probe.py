"""One Airflow task in a fresh interpreter, started the way a task process starts; run by ``benchmark_tasks.py``.

``python -X importtime scripts/task_probe.py DAG_FILE TASK_ID REQUEST_JSON`` (or ``baseline [MODULE]``:
``import airflow.sdk`` alone, then MODULE timed on its own, e.g. torch):

1. ``import airflow.sdk`` (what every task process has imported before it parses a DAG file);
2. the DAG file, loaded as Airflow's DagBag loads it (a module registered in ``sys.modules`` with
   ``DagContext.current_autoregister_module_name`` set, so the DAG registers itself);
3. the task's callable (the ``@task`` function under ``logs_logical_date``) called with the XCom
   arguments and the context keys its signature asks for (``params``, ``logical_date``, ``run_id``,
   ``ti`` with ``xcom_pull`` answered from REQUEST_JSON's ``xcom``, ``dag``); ``task.branch`` and
   ``task.sensor`` functions the same way. Operators without a Python callable (sensors, triggers,
   the approval step) run nothing: their work needs the Airflow API server.

Phase markers go to stderr between ``-X importtime``'s lines, so the caller can tell the imports made
during the call (lazy, inside the task) from the call's work. The last stdout line is
``RESULT {json}``: ``sdk``, ``parse``, ``call`` (wall seconds of each phase) and the task's return value.
Only the standard library is imported here before phase 1.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import time


def _mark(phase: str) -> None:
    sys.stderr.write(f"@@phase {phase}\n")
    sys.stderr.flush()


class _TaskInstance:
    """The one ``ti`` method the loop's task bodies call: ``xcom_pull(task_ids=...)`` from the request's XComs."""

    def __init__(self, xcom: dict, dag_id: str, task_id: str, run_id: str) -> None:
        self._xcom, self.dag_id, self.task_id, self.run_id, self.try_number = xcom, dag_id, task_id, run_id, 1

    def xcom_pull(self, task_ids=None, **_kwargs):
        if isinstance(task_ids, (list, tuple)):
            return [self._xcom.get(t) for t in task_ids]
        return self._xcom.get(task_ids)


def _load_dag_file(path: str):
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    name = "unusual_prefix_probe_" + path.replace("/", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    DagContext.current_autoregister_module_name = name
    try:
        spec.loader.exec_module(module)
    finally:
        DagContext.current_autoregister_module_name = None
    return [dag for dag, mod in DagContext.autoregistered_dags if mod is module]


def _call(task, dag, request: dict):
    import pendulum

    fn = getattr(task, "python_callable", None)
    if fn is None:
        return None, False
    fn = inspect.unwrap(fn)  # below logs_logical_date, which needs a live task context
    logical_date = pendulum.parse(request["logical_date"])
    context = {"params": request.get("params", {}), "logical_date": logical_date, "run_id": request["run_id"],
               "ti": _TaskInstance(request.get("xcom", {}), dag.dag_id, task.task_id, request["run_id"]),
               "dag": dag}
    signature = inspect.signature(fn)
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        context = {k: v for k, v in context.items() if k in signature.parameters}
    try:
        value = fn(*request.get("args", []), **context)
    except Exception as exc:  # AirflowFailException of send_alert / a failed gate: the task's designed end
        if type(exc).__name__ != "AirflowFailException":
            raise
        return {"failed": str(exc)[:200]}, True
    value = getattr(value, "xcom_value", value)  # a sensor's PokeReturnValue
    return value, True


def main() -> None:
    start = time.perf_counter()
    _mark("sdk")
    import airflow.sdk  # noqa: F401

    sdk = time.perf_counter() - start
    if sys.argv[1] == "baseline":  # optionally with one more module, timed after airflow.sdk: baseline torch
        start = time.perf_counter()
        for name in sys.argv[2:]:
            importlib.import_module(name)
        extra = time.perf_counter() - start
        _mark("end")
        print("RESULT " + json.dumps({"sdk": sdk, "parse": 0.0, "call": 0.0, "extra": extra, "ran": False,
                                      "value": None}))
        return
    dag_file, task_id, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    _mark("parse")
    start = time.perf_counter()
    dags = _load_dag_file(dag_file)
    dag = next(d for d in dags if task_id in d.task_dict)
    task = dag.task_dict[task_id]
    parse = time.perf_counter() - start
    _mark("call")
    start = time.perf_counter()
    value, ran = _call(task, dag, request)
    call = time.perf_counter() - start
    _mark("end")
    print("RESULT " + json.dumps({"sdk": sdk, "parse": parse, "call": call, "ran": ran, "value": value},
                                 default=str))


if __name__ == "__main__":
    main()
