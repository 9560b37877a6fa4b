"""The skops deprecation flood: silenced around our skops calls, and nowhere else.

skops' ``whichmodule`` looks names up in every loaded module; with Airflow's
deprecated import shims loaded (as inside a task) the first ``import
skops.io`` of a process emits ~1,160 ``DeprecatedImportWarning`` lines. Each
check runs in a fresh interpreter, since that flood happens once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv

REFERENCE_CSV = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"

SCRIPT = """
import hashlib, json, sys, warnings
import airflow.models  # loads Airflow's deprecated import shims, as inside a task
assert "skops.io" not in sys.modules


def skops_warnings(caught):
    return sum(1 for w in caught if "skops" in w.filename.replace("\\\\", "/")
               and issubclass(w.category, (FutureWarning, DeprecationWarning)))


data = open(sys.argv[1], "rb").read()
before = list(warnings.filters)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    TabularPreprocessor.from_bytes(data, sha256=hashlib.sha256(data).hexdigest())
load = {"skops_warnings": skops_warnings(caught), "filters_unchanged": warnings.filters == before}
with warnings.catch_warnings(record=True) as caught:  # control: the same module lookup, without our filter
    warnings.simplefilter("always")
    from skops.io._utils import whichmodule
    whichmodule(object(), "no_such_attribute")
print(json.dumps({"load": load, "control_skops_warnings": skops_warnings(caught)}))
"""


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reference = read_csv(REFERENCE_CSV)
    pre = TabularPreprocessor(infer_schema(reference, target_column="creditability", positive_label="bad"))
    path = tmp_path_factory.mktemp("skops") / "preprocessor.json"
    path.write_bytes(pre.fit(reference).to_bytes())
    return path


@pytest.fixture(scope="module")
def outcome(artifact: Path) -> dict:
    """Load the preprocessor in a fresh interpreter that has imported Airflow, then run the control lookup."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(artifact)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_preprocessor_load_records_no_skops_deprecation_warning(outcome: dict) -> None:
    """A first preprocessor load next to Airflow records no skops warning and leaves the global filters as they were."""
    assert outcome["load"] == {"skops_warnings": 0, "filters_unchanged": True}


def test_without_the_filter_skops_lookups_flood(outcome: dict) -> None:
    """Control: one skops module lookup outside our filter emits skops-attributed deprecation warnings there.

    (One per deprecated Airflow shim module; ``import skops.io`` makes about 230 such lookups.)
    """
    assert outcome["control_skops_warnings"] >= 1
