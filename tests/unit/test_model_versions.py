"""Model families' registry names, the bootstrap date shown by `status`, and the model file's checks (pure)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.loop.model_versions import FILE_FORMAT, bootstrap_overrides, read_model_file, version_date
from daily_mlops.settings import Settings
from daily_mlops.storage.registry import is_model_family, preprocessor_name, synthesizer_name

ARCH = {"cardinalities": [3, 4], "n_numeric": 2, "d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32,
        "dropout": 0.1, "n_classes": 2, "projection_dim": 16}


def _file(tmp_path: Path, **changes) -> Path:
    doc = {"format": FILE_FORMAT, "format_version": 1, "model_name": "credit", "architecture": dict(ARCH),
           "hyperparameters": {"num_layers": 6, "batch_size": 64, "learning_rate": 0.01, "seed": 7, "epochs": 3},
           "preprocessing_schema": {
               "target": {"column": "defaulted", "positive_label": "yes", "labels": ["no", "yes"]}}}
    doc.update(changes)
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_default_family_keeps_the_old_names_and_others_are_prefixed() -> None:
    """tabtransformer -> synthesizer/preprocessor (existing data); credit -> credit:synthesizer/credit:preprocessor."""
    assert (synthesizer_name(), preprocessor_name("tabtransformer")) == ("synthesizer", "preprocessor")
    assert (synthesizer_name("credit"), preprocessor_name("credit")) == ("credit:synthesizer", "credit:preprocessor")
    assert is_model_family("credit")
    assert not is_model_family("credit:preprocessor") and not is_model_family("synthesizer")
    with pytest.raises(MLOpsError, match="'preprocessor' cannot name a model family"):
        synthesizer_name("preprocessor")


def test_model_name_setting_defaults_to_tabtransformer_and_refuses_a_colon(tmp_path: Path) -> None:
    """MLOPS_MODEL_NAME defaults to tabtransformer; 'a:b' fails validation."""
    assert Settings(home=tmp_path, _env_file=None).model_name == "tabtransformer"
    with pytest.raises(ValueError, match="model_name"):
        Settings(home=tmp_path, model_name="a:b", _env_file=None)


def test_bootstrap_version_shows_when_it_ran_instead_of_1970() -> None:
    """A bootstrap version's date is 'bootstrap <created_at>'; a retrained one keeps its logical date."""
    created = dt.datetime(2026, 11, 29, 20, 10, 42, tzinfo=dt.UTC)
    assert version_date({"run_key": "bootstrap", "logical_date": "1970-01-01", "created_at": created}) == \
        "bootstrap 2026-11-29 20:10"
    assert version_date({"run_key": "retrain:2026-11-05:attempt-1", "logical_date": "2026-11-05"}) == "2026-11-05"


def test_overrides_take_the_architecture_over_hyperparameters_and_the_target(tmp_path: Path) -> None:
    """num_layers comes from the architecture (1), not hyperparameters (6); unknown keys (epochs) are ignored."""
    overrides = bootstrap_overrides(read_model_file(_file(tmp_path)))
    assert overrides == {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32, "dropout": 0.1,
                         "batch_size": 64, "learning_rate": 0.01, "seed": 7, "target_column": "defaulted",
                         "positive_label": "yes"}


@pytest.mark.parametrize(("changes", "key"), [
    ({"architecture": {k: v for k, v in ARCH.items() if k != "nhead"}}, "'architecture.nhead'"),
    ({"architecture": {**ARCH, "d_model": "wide"}}, "'architecture.d_model' must be int"),
    ({"hyperparameters": {"batch_size": 1.5}}, "'hyperparameters.batch_size' must be int"),
    ({"hyperparameters": ["not", "a", "mapping"]}, "'hyperparameters' must be dict"),
    ({"format": "something-else"}, "'format' must be 'daily-mlops-model'"),
    ({"preprocessing_schema": {"target": {"column": "y"}}}, "'preprocessing_schema.target.positive_label'"),
])
def test_a_bad_model_file_names_the_file_and_the_key(tmp_path: Path, changes: dict, key: str) -> None:
    """Each malformed file raises ConfigError naming the file and the key at fault."""
    path = _file(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        read_model_file(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    """Broken YAML raises ConfigError naming the file, not a yaml exception."""
    path = tmp_path / "broken.yaml"
    path.write_text("architecture: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        read_model_file(path)
