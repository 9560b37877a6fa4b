"""Airflow environment for the DAG tests, set before anything imports ``airflow``.

Airflow reads ``AIRFLOW_HOME`` (and writes ``airflow.cfg`` there) the first
time ``airflow`` is imported in a process, so it is set at conftest import
time, to a throw-away directory, unless the caller already chose one.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

if "AIRFLOW_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="daily-mlops-airflow-")
    os.environ["AIRFLOW_HOME"] = _home
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
