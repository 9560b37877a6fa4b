"""One Airflow task in a fresh interpreter, started the way a task process starts; run by ``benchmarks/tasks.py``.

``python [-X importtime] benchmarks/task_probe.py DAG_FILE TASK_ID REQUEST_JSON`` (or ``baseline [MODULE]``:
``import airflow.sdk`` alone, then MODULE timed on its own, e.g. torch):

1. ``import airflow.sdk`` (what every task process has imported before it parses a DAG file);
2. the DAG file, loaded as Airflow's DagBag loads it (a module registered in ``sys.modules`` with
   ``DagContext.current_autoregister_module_name`` set, so the DAG registers itself);
3. the task's callable (the ``@task`` function under ``logs_logical_date``) called with the XCom
   arguments and the context keys its signature asks for (``params``, ``logical_date``, ``run_id``,
   ``ti`` with ``xcom_pull`` answered from REQUEST_JSON's ``xcom``, ``dag``); ``task.branch`` and
   ``task.sensor`` functions the same way. Operators without a Python callable (sensors, triggers,
   the approval step) run nothing: their work needs the Airflow API server.

The imports made during the call (the task body's and the libraries' lazy ones) are timed by wrapping
``builtins.__import__`` (wall and CPU seconds of the outermost import statements), so the caller can
tell them from the call's work. Phase markers go to stderr, between ``-X importtime``'s lines when the
caller asks for those (to see which module costs what). The last stdout line is ``RESULT {json}``: wall
and CPU seconds of ``sdk``, ``parse`` and the call's imports, the call's wall seconds and the task's
return value. Only the standard library is imported here before phase 1.

``python benchmarks/task_probe.py worker`` is the production start instead (CeleryExecutor): one process
that starts as a Celery worker does, with the Celery config named by ``[celery] celery_config_options``
(``daily_mlops.orchestration.celery_config``), then forks each task from itself (phases 2 and 3 in the
child, ``import airflow.sdk`` already done); see :func:`_worker`.
"""

from __future__ import annotations

import builtins
import importlib.util
import inspect
import json
import os
import sys
import threading
import time
import traceback


class _ImportClock:
    """Wall and CPU seconds of the outermost ``import`` statements run on the main thread while installed.

    Wraps ``builtins.__import__`` (what ``import`` and ``from ... import`` statements call); nested imports
    are inside their importer's time. CPU time (``time.process_time``) is what the shared machine's load
    inflates least.
    """

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._depth = 0
        self._real = builtins.__import__
        self._main = threading.main_thread()

    def _import(self, *args, **kwargs):
        if self._depth or threading.current_thread() is not self._main:
            return self._real(*args, **kwargs)
        self._depth += 1
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self._real(*args, **kwargs)
        finally:
            self._depth -= 1
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu

    def __enter__(self) -> _ImportClock:
        builtins.__import__ = self._import
        return self

    def __exit__(self, *exc) -> None:
        builtins.__import__ = self._real


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


def _rss_mb() -> float:
    """This process's resident set size in MB (``VmRSS`` of ``/proc/self/status``; Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _run_task(dag_file: str, task_id: str, request: dict) -> dict:
    """Phases 2 and 3 in this process: ``parse`` / ``parse_cpu`` (the DAG file), ``call`` (wall s),
    ``call_imports`` / ``call_imports_cpu`` (the imports made during the call), ``ran`` and ``value``."""
    _mark("parse")
    start, cpu = time.perf_counter(), time.process_time()
    dags = _load_dag_file(dag_file)
    dag = next(d for d in dags if task_id in d.task_dict)
    task = dag.task_dict[task_id]
    out = {"parse": time.perf_counter() - start, "parse_cpu": time.process_time() - cpu}
    _mark("call")
    start = time.perf_counter()
    with _ImportClock() as clock:
        value, ran = _call(task, dag, request)
    out.update(call=time.perf_counter() - start, call_imports=clock.wall, call_imports_cpu=clock.cpu, ran=ran,
               value=value)
    _mark("end")
    return out


def _worker() -> None:
    """``worker``: stand in for a Celery worker and fork one task process per request, as production does.

    Does what ``airflow celery worker`` does before its pool forks a task: builds the provider's Celery app
    (``celery_executor_utils.app``, from ``[celery] celery_config_options`` in the environment) and calls
    ``app.loader.init_worker()``, which runs the provider's ``import_modules`` hook and imports the config's
    ``imports`` (``WorkController.__init__`` makes the same call), sends ``worker_init`` (the main process)
    and ``worker_process_init`` (a pool process) as Celery does; then imports the supervisor module the
    pool process forks from. Prints ``READY {json}`` (``sdk`` / ``sdk_cpu``: its ``import airflow.sdk``;
    ``preload`` / ``preload_cpu``: ``init_worker``'s wall / CPU s; ``rss_before`` / ``rss_after``: MB
    around it; ``imports``: the config's ``imports``). Then, per stdin line ``[DAG_FILE, TASK_ID,
    REQUEST]``: ``os.fork()``; the child runs :func:`_run_task` and the parent prints its
    ``RESULT {json}`` (plus ``fork``: seconds from the fork call to the child's first statement), or
    ``FAILED {json}`` with the child's exit status (its traceback goes to stderr).
    """
    start, cpu = time.perf_counter(), time.process_time()
    import airflow.sdk  # noqa: F401

    ready = {"sdk": time.perf_counter() - start, "sdk_cpu": time.process_time() - cpu}
    from airflow.providers.celery.executors.celery_executor_utils import app
    from celery.signals import worker_init, worker_process_init

    rss, start, cpu = _rss_mb(), time.perf_counter(), time.process_time()
    app.loader.init_worker()
    worker_init.send(sender=None)  # the main worker process, before it forks its pool
    worker_process_init.send(sender=None)  # each pool process, which forks the tasks
    ready.update(preload=time.perf_counter() - start, preload_cpu=time.process_time() - cpu, rss_before=rss,
                 rss_after=_rss_mb(), imports=list(app.conf.imports))
    import airflow.sdk.execution_time.supervisor  # noqa: F401

    print("READY " + json.dumps(ready), flush=True)
    for line in sys.stdin:
        dag_file, task_id, request = json.loads(line)
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        forked = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read)
                out = {"fork": time.perf_counter() - forked, "sdk": 0.0, "sdk_cpu": 0.0,
                       **_run_task(dag_file, task_id, request)}
                with os.fdopen(write, "w") as pipe:
                    pipe.write(json.dumps(out, default=str))
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status == 0 and payload:
            print("RESULT " + payload, flush=True)
        else:
            print("FAILED " + json.dumps({"task_id": task_id, "status": status}), flush=True)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    if sys.argv[1] == "worker":
        _worker()
        return
    start, cpu = time.perf_counter(), time.process_time()
    _mark("sdk")
    import airflow.sdk  # noqa: F401

    out = {"sdk": time.perf_counter() - start, "sdk_cpu": time.process_time() - cpu, "parse": 0.0, "parse_cpu": 0.0,
           "call": 0.0, "call_imports": 0.0, "call_imports_cpu": 0.0, "ran": False, "value": None}
    if sys.argv[1] == "baseline":  # optionally with more modules, timed after airflow.sdk: e.g. torch
        start, cpu = time.perf_counter(), time.process_time()
        for name in sys.argv[2:]:
            importlib.import_module(name)
        out.update(extra=time.perf_counter() - start, extra_cpu=time.process_time() - cpu)
        _mark("end")
        print("RESULT " + json.dumps(out))
        return
    out.update(_run_task(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
    print("RESULT " + json.dumps(out, default=str))


if __name__ == "__main__":
    main()
