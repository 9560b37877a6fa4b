"""The stored synthesizer is rebuilt from its reference rows in a fresh process and samples the same batch.

Bootstrap fits the synthesizer and stores only data (the reference rows as
CSV, the fit seed and the SDV metadata). Two fresh Python processes, with
different hash seeds, load it from the real MongoDB-wire server, refit it and
sample one logical date's batch; both batches must be byte-identical to the
batch of the synthesizer fit in this process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daily_mlops.loop.bootstrap import register_synthesizer
from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
from daily_mlops.storage.registry import ModelRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
N_ROWS, SEED, DAY = 1500, 42, "2026-03-14"

RELOAD = f"""
import sys
from pymongo import MongoClient
from daily_mlops.ml.synthesis import Synthesizer
from daily_mlops.storage.registry import SYNTHESIZER_NAME, ModelRegistry

uri, name, out = sys.argv[1:4]
registry = ModelRegistry(MongoClient(uri, tz_aware=True)[name])
doc = registry.latest(SYNTHESIZER_NAME, statuses=("approved",))
synth = Synthesizer.from_reference(
    registry.load_artifact(doc, "synthesizer"), sha256=doc["sha256"]["synthesizer"], record=doc
)
batch = synth.generate({N_ROWS}, seed={SEED}, logical_date="{DAY}")
open(out, "wb").write(batch.to_csv(index=False).encode("utf-8"))
"""


def test_fresh_processes_sample_the_bootstrap_batch_byte_for_byte(real_db, mongo_uri: str, tmp_path: Path) -> None:
    """Two fresh processes (PYTHONHASHSEED 1 and 2) refit the stored synthesizer and write the same CSV bytes
    for generate(N, seed, logical date) as the synthesizer fit in-process at bootstrap."""
    reference = read_csv(REPO / "data" / "reference" / "german_credit.csv")
    schema = infer_schema(reference, target_column="creditability", positive_label="bad")
    reference = validate_batch(reference, schema)
    original, doc = register_synthesizer(ModelRegistry(real_db), reference, schema, seed=SEED)
    expected = original.generate(N_ROWS, seed=SEED, logical_date=DAY).to_csv(index=False).encode("utf-8")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    batches = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"batch-{hash_seed}.csv"
        done = subprocess.run(
            [sys.executable, "-c", RELOAD, mongo_uri, real_db.name, str(out)],
            env={**env, "PYTHONHASHSEED": hash_seed}, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        batches.append(out.read_bytes())

    digests = [hashlib.sha256(b).hexdigest() for b in (expected, *batches)]
    print(f"batch sha256: in-process {digests[0]}, process 1 {digests[1]}, process 2 {digests[2]}")
    assert batches[0] == batches[1], "the two fresh processes sampled different bytes"
    assert batches[0] == expected, "the reloaded synthesizer samples other rows than the one fit at bootstrap"
    assert len(expected.splitlines()) == N_ROWS + 1
    assert doc["sha256"]["synthesizer"] == hashlib.sha256(original.reference_csv()).hexdigest()
