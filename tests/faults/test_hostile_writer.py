"""A hostile writer with database access cannot make generate_data run code.

The writer replaces the stored synthesizer artifact with a serialized Python
object whose loading would create a marker file, and updates the recorded
sha256 (and the GridFS reference) to match, so the checksum check passes.
generate_data must refuse it with a project error, create no marker file and
write no batch.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest

from daily_mlops.errors import SchemaError, UnsafeArtifactError
from daily_mlops.loop import data
from daily_mlops.loop.bootstrap import register_synthesizer
from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch
from daily_mlops.storage.artifacts import put_artifact
from daily_mlops.storage.mongo import ARTIFACTS_BUCKET, RAW_DATA_BUCKET
from daily_mlops.storage.registry import SYNTHESIZER_NAME, ModelRegistry

REPO = Path(__file__).resolve().parents[2]
GOOD_DAY, HOSTILE_DAY = dt.date(2026, 2, 1), dt.date(2026, 2, 2)


class _CreatesFile:
    """Loading this object calls ``open(path, "w")``: code chosen by whoever wrote the bytes."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def registered(settings, real_db):
    """The synthesizer registered exactly as bootstrap registers it (300 reference rows, for speed)."""
    reference = read_csv(REPO / "data" / "reference" / "german_credit.csv").head(300)
    schema = infer_schema(reference, target_column=settings.target_column, positive_label=settings.positive_label)
    _, doc = register_synthesizer(ModelRegistry(real_db), validate_batch(reference, schema), schema, seed=settings.seed)
    return doc


@pytest.mark.parametrize("protocol, keep_format", [(5, True), (0, True), (5, False)],
                         ids=["binary", "ascii-protocol-0", "binary-and-old-format-record"])
def test_replaced_synthesizer_with_matching_sha_runs_no_code(
    settings, real_db, registered, tmp_path: Path, protocol: int, keep_format: bool
) -> None:
    """generate_data works on the real record, then refuses the hostile payload (matching sha256) with
    UnsafeArtifactError or SchemaError: the marker file is not created and no batch is written."""
    settings = settings.model_copy(update={"daily_rows": 200})
    good = data.generate_data(settings, logical_date=GOOD_DAY, db=real_db)
    assert good["n_rows"] == 200

    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps(_CreatesFile(control), protocol=protocol))
    assert control.exists(), "the payload does not run code when loaded; the test would prove nothing"
    payload = pickle.dumps(_CreatesFile(marker), protocol=protocol)

    ref = put_artifact(real_db, ARTIFACTS_BUCKET, registered["artifacts"]["synthesizer"]["filename"], payload,
                       metadata={"model_name": SYNTHESIZER_NAME, "artifact": "synthesizer"}, replace=True)
    update = {"$set": {"artifacts.synthesizer": ref, "sha256.synthesizer": ref["sha256"]}}
    if not keep_format:
        update["$unset"] = {"reference_format": ""}
    changed = real_db.model_metadata.update_one(
        {"model_name": SYNTHESIZER_NAME, "model_version": registered["model_version"]}, update
    )
    assert changed.modified_count == 1

    with pytest.raises((UnsafeArtifactError, SchemaError)) as excinfo:
        data.generate_data(settings, logical_date=HOSTILE_DAY, db=real_db)
    assert not marker.exists(), "loading the synthesizer ran code from the database"
    assert "synthesizer artifact" in str(excinfo.value)
    assert "bootstrap" in str(excinfo.value)  # the message names the fix
    assert real_db.processing_metadata.count_documents({"batch_id": {"$regex": "2026-02-02"}}) == 0
    assert real_db[f"{RAW_DATA_BUCKET}.files"].count_documents({"filename": {"$regex": "2026-02-02"}}) == 0
    assert real_db[f"{RAW_DATA_BUCKET}.files"].count_documents({"filename": {"$regex": "2026-02-01"}}) == 1
