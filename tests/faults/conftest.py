"""Fault tests: processes killed at a chosen line, failing writes, two writers at once, a hostile writer.

Every test here is marked ``faults`` and runs in ``make test``. Where a case is
about a process dying, the test starts a real subprocess and kills it with
SIGKILL at a point the test controls (an environment variable read only by the
test harness), not a mock.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
