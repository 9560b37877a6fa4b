"""The host name an Airflow worker records on its task instances (``[core] hostname_callable``).

``daily-mlops stack`` runs two Celery workers on one machine; Airflow records
``socket.getfqdn()`` on each task instance by default, the same for both. The
stack points ``AIRFLOW__CORE__HOSTNAME_CALLABLE`` of each worker at
:func:`worker_hostname` and sets ``MLOPS_WORKER_HOSTNAME`` (``worker-a``,
``worker-b``), so the UI, the REST API and the task log show which worker ran
a task. Kept tiny: every task process imports it.
"""

from __future__ import annotations

import os
import socket

__all__ = ["worker_hostname"]


def worker_hostname() -> str:
    """``MLOPS_WORKER_HOSTNAME`` when set, else the machine's fully qualified name (Airflow's default)."""
    return os.environ.get("MLOPS_WORKER_HOSTNAME") or socket.getfqdn()
