"""A short run of ``scripts/deploy_soak.py``: deploys in SIGKILLed child processes beside a reader process.

The full soak (50 deploys) prints figures; this quick version (10 deploys, 3 of
them SIGKILLed at a random moment and re-run, ``keep_versions=1`` so every
deploy rewrites a version directory and prunes the previous one) asserts them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deploy_soak", ROOT / "scripts" / "deploy_soak.py")
deploy_soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy_soak)


def test_soak_has_no_torn_reads_and_ends_consistent(mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """10 deploys, 3 SIGKILLs: the reader never sees a torn or missing model; directory, registry and events agree."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    figures = deploy_soak.run_soak(mongo_uri, deploys=10, kills=3, keep_versions=1, seed=7, workdir=tmp_path)

    assert figures["deploys"] == 10
    assert figures["kills"] == 3
    assert figures["runs"] == 13
    assert figures["reads"] > 0
    assert figures["torn_reads"] == 0, figures["torn_examples"]
    expected = figures["expected_version"]
    assert figures["final_directory_version"] == expected
    assert figures["final_registry_deployed"] == [expected]
    assert figures["final_event_version_in_place"] == expected
    assert figures["leftover_temporaries"] == []
    assert figures["version_directories"] == [str(expected)]
