"""What a task process imports: the loop's task modules import nothing heavy, and torch stays out of the
tasks that sample, encode or check data (``daily_mlops.ml._without_torch``) without changing a result.

Each check runs in a fresh interpreter: the test process has imported torch long before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sdv", "sdmetrics", "sklearn", "pandas", "scipy", "pyarrow", "skops", "pymongo")


def _run(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_task_modules_import_nothing_heavy() -> None:
    """Importing the modules the DAG tasks call into loads none of torch, SDV, pandas, scikit-learn or pymongo."""
    loaded = _run(
        "import json, sys\n"
        "import daily_mlops.loop.data, daily_mlops.loop.quality, daily_mlops.loop.evaluation\n"
        "import daily_mlops.loop.deployment, daily_mlops.loop.infra_validation, daily_mlops.settings\n"
        "import daily_mlops.decisions, daily_mlops.storage.mongo\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    assert loaded == []


_DATA_PATH = """
import hashlib, json, sys
if sys.argv[1] == "torch-first":
    import torch
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
from daily_mlops.ml.synthesis import Synthesizer
from daily_mlops.ml.quality import drift_figures
from daily_mlops.ml.schema import schema_parts

reference = read_csv(sys.argv[2])
schema = infer_schema(reference, target_column="creditability", positive_label="bad")
reference = validate_batch(reference, schema)
synth = Synthesizer(seed=3).fit(reference.head(400))
batch = validate_batch(synth.generate(300, seed=5, logical_date="2026-11-01"), schema)
pre = TabularPreprocessor(schema).fit(reference)
data = pre.to_bytes()
restored = TabularPreprocessor.from_bytes(data, sha256=hashlib.sha256(data).hexdigest())
encoded = restored.transform(batch)
features, target = schema_parts(schema)
kinds = {f["name"]: f["kind"] for f in features if f["kind"] != "dropped"}
drift = drift_figures(batch, reference, {**kinds, target["column"]: "target"})
torch_before_end = "torch" in sys.modules
import torch  # a later import of torch still gets the real one
digest = hashlib.sha256(batch.to_csv(index=False).encode() + encoded.x_cat.tobytes() + encoded.x_num.tobytes()
                        + json.dumps(drift, sort_keys=True, default=str).encode()).hexdigest()
print(json.dumps({"digest": digest, "torch": torch_before_end, "tensor": float(torch.ones(2).sum())}))
"""


def test_sampling_encoding_and_drift_without_torch_match_with_torch() -> None:
    """Sampling, the preprocessor's skops round trip and the SDMetrics drift figures give the same bytes
    whether torch was hidden while SDV, SDMetrics and skops imported or imported before them."""
    reference = str(REPO / "data" / "reference" / "german_credit.csv")
    hidden = _run(_DATA_PATH, "fresh", reference)
    with_torch = _run(_DATA_PATH, "torch-first", reference)
    assert hidden["torch"] is False, "torch was imported on the data path"
    assert with_torch["torch"] is True
    assert hidden["digest"] == with_torch["digest"]
    assert hidden["tensor"] == 2.0


_ALERT_TASK = """
import json, sys
import mongomock
from daily_mlops.settings import Settings
from daily_mlops.storage.mongo import COLLECTIONS, INDEXES

db = mongomock.MongoClient()["mlops_test"]
for name in COLLECTIONS:
    db.create_collection(name)
for name, keys, options in INDEXES:
    db[name].create_index(keys, **options)
db["processing_metadata"].insert_one({"batch_id": "batch-2026-11-01", "logical_date": "2026-11-01",
                                      "drift": {"score": 0.5, "worst": [{"column": "age", "score": 0.2}]}})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
from daily_mlops.loop.evaluation import send_alert
alert = send_alert(Settings(_env_file=None, home=sys.argv[1]), logical_date="2026-11-01", f1_threshold=0.9,
                   last={"attempt": 1, "best_f1": 0.5, "versions_tried": [2]}, dag_id="d", run_id="r", db=db)
heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY} - {m.split(".")[0] for m in loaded})
print(json.dumps({"heavy": heavy, "message": alert["message"]}))
"""


def test_send_alert_imports_no_pandas_torch_or_sdv(tmp_path: Path) -> None:
    """send_alert, a task that only reads and writes MongoDB, runs without importing torch, SDV, SDMetrics,
    pandas, scikit-learn or pyarrow (the drift line it prints comes from the pandas-free ``ml.drift_scenarios``)."""
    heavy = ("torch", "sdv", "sdmetrics", "sklearn", "pandas", "scipy", "pyarrow", "skops")
    out = _run(f"HEAVY = {heavy!r}\n" + _ALERT_TASK, str(tmp_path))
    assert out["heavy"] == []
    assert "age 0.20" in out["message"]
