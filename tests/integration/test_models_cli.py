"""``daily-mlops models list|show|export|import`` and ``bootstrap --model-name`` on a real MongoDB-wire server.

Bootstraps run on the bundled reference data with tiny settings (600 rows,
one encoder layer, no pretraining, one fine-tuning epoch, batch 128), through
typer's CliRunner with ``MLOPS_MONGO_URI`` pointing at the test server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from daily_mlops.cli import app
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = pytest.mark.integration

TINY = {"MLOPS_DAILY_ROWS": "600", "MLOPS_NUM_LAYERS": "1", "MLOPS_PRETRAIN_EPOCHS": "0",
        "MLOPS_FINETUNE_EPOCHS": "1", "MLOPS_BATCH_SIZE": "128"}


@pytest.fixture
def cli(real_db, mongo_uri: str, tmp_path: Path):
    """Run a command against ``real_db`` with tiny settings; extra environment variables override them."""
    def run(*args: str, **env: str):
        base = {"MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": real_db.name, "MLOPS_HOME": str(tmp_path), **TINY}
        return CliRunner().invoke(app, list(args), env={**base, **env})
    return run


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_export_then_import_bootstraps_the_same_architecture(cli, real_db, tmp_path: Path):
    """export writes the YAML sections; import bootstraps family `copy` with the file's architecture and
    hyperparameters (not the environment's: MLOPS_NUM_LAYERS=2 is overridden by the file's 1), with its own
    synthesizer and preprocessor; the default family keeps `synthesizer` / `preprocessor`. A second import under
    the same name exits 2; `status` shows the bootstrap time instead of 1970-01-01."""
    boot = cli("bootstrap")
    assert boot.exit_code == 0, boot.output
    out = tmp_path / "model.yaml"
    exported = cli("models", "export", MODEL_NAME, "latest", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    document = yaml.safe_load(out.read_text())
    sections = {"architecture", "hyperparameters", "signature", "preprocessing_schema", "metrics", "lineage"}
    assert sections <= set(document)
    assert document["architecture"]["num_layers"] == 1 and document["hyperparameters"]["finetune_epochs"] == 1
    assert document["preprocessing_schema"]["target"]["column"] == "creditability"
    assert document["lineage"]["run_key"] == "bootstrap"
    assert document["lineage"]["preprocessor"]["name"] == "preprocessor"

    imported = cli("models", "import", str(out), "--model-name", "copy", MLOPS_NUM_LAYERS="2", MLOPS_D_MODEL="64")
    assert imported.exit_code == 0, imported.output
    assert "MLOPS_NUM_LAYERS=1" in imported.output and "registered copy version 1" in _flat(imported.output)
    registry = ModelRegistry(real_db)
    original, copy = registry.get(MODEL_NAME, 1), registry.get("copy", 1)
    assert copy["architecture"] == original["architecture"]
    assert copy["hyperparameters"] == original["hyperparameters"]
    assert copy["n_parameters"] == original["n_parameters"]
    names = sorted(real_db.model_metadata.distinct("model_name"))
    assert names == ["copy", "copy:preprocessor", "copy:synthesizer", "preprocessor", "synthesizer", MODEL_NAME]
    assert copy["preprocessor_version"] == 1 and registry.get("copy:preprocessor", 1)["run_key"] == "bootstrap"

    again = cli("models", "import", str(out), "--model-name", "copy")
    assert again.exit_code == 2 and "already bootstrapped" in _flat(again.output)

    status = cli("status")
    assert status.exit_code == 0 and "bootstrap 20" in status.output and "1970-01-01" not in status.output


def test_list_and_show_latest_and_best(cli, real_db):
    """list shows every family's versions with status and F1 (no synthesizer rows); show latest is the
    highest version, show best the highest F1 (or --metric)."""
    assert cli("bootstrap").exit_code == 0
    registry = ModelRegistry(real_db)
    v1 = registry.get(MODEL_NAME, 1)
    extra = {k: v1[k] for k in ("architecture", "decision_threshold", "preprocessor_version")}
    registry.register(MODEL_NAME, run_key="r2", artifacts={"weights": b"w2"}, status="approved",
                      metrics={"f1": 0.97, "roc_auc": 0.5}, extra=extra)
    registry.register(MODEL_NAME, run_key="r3", artifacts={"weights": b"w3"}, status="rejected",
                      metrics={"f1": 0.11, "roc_auc": 0.99}, extra=extra)
    registry.register("other", run_key="bootstrap", artifacts={"weights": b"o"}, status="approved",
                      metrics={"f1": 0.5}, extra=extra)

    listed = cli("models", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if MODEL_NAME in line or "other" in line]
    assert len(rows) == 4 and "synthesizer" not in listed.output
    assert any("0.9700" in r and "approved" in r for r in rows) and any("rejected" in r for r in rows)

    latest = cli("models", "show", MODEL_NAME, "latest")
    assert latest.exit_code == 0 and f"{MODEL_NAME} version 3" in latest.output and "rejected" in latest.output
    best = cli("models", "show", MODEL_NAME, "best")
    assert best.exit_code == 0 and f"{MODEL_NAME} version 2" in best.output and "0.9700" in best.output
    by_auc = cli("models", "show", MODEL_NAME, "best", "--metric", "roc_auc")
    assert by_auc.exit_code == 0 and f"{MODEL_NAME} version 3" in by_auc.output
    first = cli("models", "show", MODEL_NAME, "1")
    assert first.exit_code == 0 and "bootstrap 20" in first.output and "d_model=32 nhead=4 num_layers=1" in first.output
    missing = cli("models", "show", MODEL_NAME, "9")
    assert missing.exit_code == 2 and "known versions: [1, 2, 3]" in _flat(missing.output)
    bad = cli("models", "show", MODEL_NAME, "newest")
    assert bad.exit_code == 2 and "'latest' or 'best'" in _flat(bad.output)
