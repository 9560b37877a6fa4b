"""The Celery workers' config (``orchestration/celery_config.py``): the provider's default plus preloaded modules.

The import checks run in a fresh interpreter: the test process has imported the heavy libraries long before.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from daily_mlops.orchestration.celery_config import CELERY_CONFIG, PRELOAD_MODULES
from daily_mlops.orchestration.stack import compose_environment

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_config_is_the_providers_default_with_the_preload_modules_appended_to_imports() -> None:
    """Every setting of ``DEFAULT_CELERY_CONFIG`` is kept as it is; only ``imports`` gains :data:`PRELOAD_MODULES`."""
    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == \
        {k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"}
    assert tuple(CELERY_CONFIG["imports"]) == (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOAD_MODULES)
    assert len(set(PRELOAD_MODULES)) == len(PRELOAD_MODULES)


def test_the_compose_workers_load_this_config() -> None:
    """``x-airflow-common`` names the dict in ``[celery] celery_config_options`` form (module path, attribute)."""
    option = compose_environment(REPO / "docker-compose.yml")["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
    module, _, attribute = option.rpartition(".")
    assert getattr(importlib.import_module(module), attribute) is CELERY_CONFIG


def test_the_config_module_imports_nothing_it_preloads_and_freezes_the_gc_at_worker_start() -> None:
    """The scheduler imports the config too: building it loads none of the heavy preload modules. Celery's
    ``worker_init`` and ``worker_process_init`` signals freeze the collector (the objects so far are never walked)."""
    result = _run(
        "import gc, json, sys\n"
        "from celery.signals import worker_init, worker_process_init\n"
        "from daily_mlops.orchestration.celery_config import CELERY_CONFIG\n"
        "loaded = [m for m in ('torch', 'sdv', 'sklearn', 'pandas', 'scipy', 'skops', 'daily_mlops.ml')"
        " if m in sys.modules]\n"
        "before = gc.get_freeze_count()\n"
        "worker_init.send(sender=None)\n"
        "after_init = gc.get_freeze_count()\n"
        "gc.unfreeze()\n"
        "worker_process_init.send(sender=None)\n"
        "print(json.dumps({'loaded': loaded, 'before': before, 'init': after_init > 0,"
        " 'process_init': gc.get_freeze_count() > 0}))\n"
    )
    assert result == {"loaded": [], "before": 0, "init": True, "process_init": True}


def test_the_preload_modules_import_and_a_forked_child_still_runs_torch() -> None:
    """Every module imports in a fresh interpreter, as the worker imports them; a child forked afterwards (as
    Airflow's supervisor forks a task) then computes with two intra-op threads and exits normally within
    two minutes (a parent that had started torch's OpenMP pool before the fork can hang such a child)."""
    result = _run(
        "import importlib, json, os, signal, sys, time\n"
        "from daily_mlops.orchestration.celery_config import PRELOAD_MODULES\n"
        "for name in PRELOAD_MODULES:\n"
        "    importlib.import_module(name)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import torch\n"
        "    torch.set_num_threads(2)\n"
        "    x = torch.ones(512, 512)\n"
        "    os._exit(0 if float((x @ x).sum()) == 512.0 ** 3 else 3)\n"
        "deadline = time.monotonic() + 120\n"
        "while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
        "if done[0] == 0:\n"
        "    os.kill(pid, signal.SIGKILL)\n"
        "    os.waitpid(pid, 0)\n"
        "print(json.dumps({'missing': [m for m in PRELOAD_MODULES if m not in sys.modules],\n"
        "                  'child': 'hung' if done[0] == 0 else done[1]}))\n"
    )
    assert result == {"missing": [], "child": 0}
