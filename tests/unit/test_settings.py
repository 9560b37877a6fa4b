"""Unit tests for daily_mlops.settings: defaults, MLOPS_* variables, .env files, ConfigError, CLI exit code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MLOPS_* variable set and a working directory without a ``.env`` file."""
    for name in list(os.environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_the_seed_projects_values(clean_env: Path) -> None:
    """Without variables or .env, Settings has the documented defaults."""
    s = Settings()
    assert s.mongo_db == "mlops"
    assert s.daily_rows == 10_000
    assert s.f1_threshold == 0.75
    assert s.max_retrain_attempts == 3
    assert (s.d_model, s.nhead, s.num_layers, s.dim_feedforward) == (32, 4, 6, 64)
    assert s.dropout == 0.3
    assert s.mongo_uri is None
    assert s.reference_data == BUNDLED_REFERENCE_DATA.resolve()
    assert s.reference_data.is_file()


def test_env_prefix_mlops_is_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_<FIELD> variables override defaults and are coerced to the field type."""
    monkeypatch.setenv("MLOPS_DAILY_ROWS", "2500")
    monkeypatch.setenv("MLOPS_F1_THRESHOLD", "0.4")
    monkeypatch.setenv("MLOPS_MONGO_DB", "other_db")
    monkeypatch.setenv("MLOPS_HOME", str(clean_env / "state"))
    monkeypatch.setenv("DAILY_ROWS", "999")  # no prefix: ignored
    s = load_settings()
    assert s.daily_rows == 2500
    assert s.f1_threshold == pytest.approx(0.4)
    assert s.mongo_db == "other_db"
    assert s.home == (clean_env / "state").resolve()
    assert s.deployment_path == (clean_env / "state" / "models" / "deployed").resolve()


def test_env_variable_names_are_case_insensitive(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings matches MLOPS_* names case-insensitively by default."""
    monkeypatch.setenv("mlops_nhead", "8")
    assert Settings().nhead == 8


def test_dotenv_file_in_working_directory_is_read(clean_env: Path) -> None:
    """A ``.env`` file in the working directory supplies MLOPS_* values."""
    (clean_env / ".env").write_text("MLOPS_DAILY_ROWS=321\nMLOPS_MONGO_DB=from_dotenv\nUNRELATED=1\n", encoding="utf-8")
    s = load_settings()
    assert s.daily_rows == 321
    assert s.mongo_db == "from_dotenv"


def test_environment_beats_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment variable takes precedence over the same key in ``.env``."""
    (clean_env / ".env").write_text("MLOPS_DAILY_ROWS=321\n", encoding="utf-8")
    monkeypatch.setenv("MLOPS_DAILY_ROWS", "654")
    assert load_settings().daily_rows == 654


def test_explicit_arguments_beat_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword overrides passed to load_settings win over MLOPS_* variables."""
    monkeypatch.setenv("MLOPS_DAILY_ROWS", "654")
    assert load_settings(daily_rows=777).daily_rows == 777


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLOPS_DAILY_ROWS", "abc"),
        ("MLOPS_DAILY_ROWS", "5"),  # below the minimum of 100
        ("MLOPS_F1_THRESHOLD", "1.5"),
        ("MLOPS_F1_THRESHOLD", "-0.1"),
        ("MLOPS_MAX_RETRAIN_ATTEMPTS", "4"),  # the DAG unrolls 3
        ("MLOPS_DROPOUT", "1.0"),
        ("MLOPS_DEPLOYMENT_DIR", ""),  # would deploy into the current directory
        ("MLOPS_DEPLOYMENT_KEEP_VERSIONS", "0"),
        ("MLOPS_DEPLOYMENT_FILE_MODE", "rw-r--r--"),
        ("MLOPS_DEPLOYMENT_FILE_MODE", "0444"),  # the owner could not write the next deployment
        ("MLOPS_DEPLOYMENT_FILE_MODE", "04755"),  # no setuid/sticky bits
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """load_settings turns a pydantic ValidationError into ConfigError whose message names the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert isinstance(info.value, MLOpsError)
    assert variable in str(info.value)
    assert info.value.__suppress_context__  # raised `from None`: the CLI shows one clean message


def test_deployment_path_is_absolute_under_mlops_home(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative MLOPS_DEPLOYMENT_DIR is resolved against MLOPS_HOME, never the current directory."""
    monkeypatch.setenv("MLOPS_HOME", str(clean_env / "state"))
    monkeypatch.setenv("MLOPS_DEPLOYMENT_DIR", "served")
    assert load_settings().deployment_path == (clean_env / "state" / "served").resolve()
    monkeypatch.setenv("MLOPS_DEPLOYMENT_DIR", "/srv/models")
    assert load_settings().deployment_path == Path("/srv/models")


@pytest.mark.parametrize(("value", "bits"), [("0644", 0o644), ("640", 0o640), ("0o600", 0o600)])
def test_deployment_file_mode_is_octal(clean_env: Path, monkeypatch: pytest.MonkeyPatch, value: str, bits: int) -> None:
    """MLOPS_DEPLOYMENT_FILE_MODE is read as octal and normalised to four digits; the default is 0644, keep 5."""
    assert (Settings().deployment_file_permissions, Settings().deployment_keep_versions) == (0o644, 5)
    monkeypatch.setenv("MLOPS_DEPLOYMENT_FILE_MODE", value)
    settings = load_settings()
    assert settings.deployment_file_permissions == bits
    assert settings.deployment_file_mode == f"0{bits:03o}"


def test_missing_reference_file_message_names_the_path(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference CSV that does not exist is reported with its path."""
    monkeypatch.setenv("MLOPS_REFERENCE_DATA", "/nope.csv")
    with pytest.raises(ConfigError, match="MLOPS_REFERENCE_DATA") as info:
        load_settings().require_reference_data()
    assert "/nope.csv" in str(info.value)


def test_d_model_not_divisible_by_nhead(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """d_model must be a multiple of nhead; the error names MLOPS_D_MODEL and MLOPS_NHEAD."""
    monkeypatch.setenv("MLOPS_D_MODEL", "30")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "MLOPS_D_MODEL" in message
    assert "MLOPS_NHEAD" in message
    # the fix: 32 is a multiple of 4
    monkeypatch.setenv("MLOPS_D_MODEL", "32")
    assert load_settings().d_model == 32


def test_every_problem_is_listed(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several invalid variables are all reported in one ConfigError."""
    monkeypatch.setenv("MLOPS_DAILY_ROWS", "abc")
    monkeypatch.setenv("MLOPS_F1_THRESHOLD", "1.5")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "MLOPS_DAILY_ROWS" in str(info.value)
    assert "MLOPS_F1_THRESHOLD" in str(info.value)


def test_direct_construction_raises_validation_error(clean_env: Path) -> None:
    """Settings(...) itself raises pydantic's ValidationError (only load_settings wraps it)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(daily_rows=1, _env_file=None)


def test_cli_exits_2_and_names_the_variable_for_a_bad_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`daily-mlops status` with MLOPS_DAILY_ROWS=abc prints the variable and exits with status 2, no traceback."""
    from typer.testing import CliRunner

    from daily_mlops.cli import app

    result = CliRunner().invoke(app, ["status"], env={"MLOPS_DAILY_ROWS": "abc"})
    assert result.exit_code == 2, result.output
    assert "MLOPS_DAILY_ROWS" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, ConfigError)  # handled, not propagated


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_reference_data_is_checked_where_it_is_read(tmp_path: Path, kind: str) -> None:
    """A bad MLOPS_REFERENCE_DATA builds Settings (DAG files parse) but require_reference_data names it."""
    path = tmp_path / "nope.csv" if kind == "missing" else tmp_path
    settings = Settings(reference_data=path, _env_file=None)
    with pytest.raises(ConfigError) as info:
        settings.require_reference_data()
    assert "MLOPS_REFERENCE_DATA" in str(info.value)
    assert ("is a directory" in str(info.value)) is (kind == "directory")
