"""Unit tests for daily_mlops.settings: defaults, MLOPS_* variables, .env files, ConfigError, CLI exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings, load_settings


def test_defaults_are_the_documented_values(clean_env: Path) -> None:
    """Without variables or .env, Settings has the documented defaults."""
    s = Settings()
    assert s.mongo_db == "mlops"
    assert s.daily_rows == 10_000
    assert s.f1_threshold == "auto"  # the bootstrap model's held-out F1 minus f1_tolerance
    assert (s.f1_tolerance, s.min_improvement) == (0.05, 0.0)
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
        ("MLOPS_F1_THRESHOLD", "2.5"),  # 0..2: above 1 forces the alert path, above 2 is refused
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
    monkeypatch.setenv("MLOPS_F1_THRESHOLD", "2.5")
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


# --- the YAML file of settings (config/daily-mlops.yaml, MLOPS_CONFIG) -----


def _write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_file_named_by_mlops_config_is_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_CONFIG names a YAML file; its `daily_rows: 1234` is used and reported as source yaml (<path>)."""
    from daily_mlops.settings.sources import settings_sources

    config = _write_config(clean_env / "mine.yaml", "daily_rows: 1234\n")
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    settings = load_settings()
    assert settings.daily_rows == 1234
    sources = settings_sources(settings)
    assert sources["daily_rows"] == f"yaml ({config.resolve()})"
    assert sources["f1_threshold"] == "default"  # not in that file, and the bundled one is not read
    assert settings.f1_threshold == "auto"


def test_environment_beats_yaml(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_DAILY_ROWS=999 overrides the YAML's daily_rows, and the source says environment."""
    from daily_mlops.settings.sources import settings_sources

    monkeypatch.setenv("MLOPS_CONFIG", str(_write_config(clean_env / "mine.yaml", "daily_rows: 1234\n")))
    monkeypatch.setenv("MLOPS_DAILY_ROWS", "999")
    settings = load_settings()
    assert settings.daily_rows == 999
    assert settings_sources(settings)["daily_rows"] == "environment"


def test_priority_argument_environment_dotenv_yaml_default(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each source wins over the ones below it: argument > environment > .env > yaml > default."""
    from daily_mlops.settings.sources import settings_sources

    config = _write_config(clean_env / "mine.yaml", "daily_rows: 1001\nseed: 7\nnum_layers: 3\nbatch_size: 64\n")
    (clean_env / ".env").write_text("MLOPS_SEED=8\nMLOPS_NUM_LAYERS=4\nMLOPS_BATCH_SIZE=32\n", encoding="utf-8")
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    monkeypatch.setenv("MLOPS_NUM_LAYERS", "5")
    monkeypatch.setenv("MLOPS_BATCH_SIZE", "16")
    settings = load_settings(batch_size=128)
    assert (settings.daily_rows, settings.seed, settings.num_layers, settings.batch_size) == (1001, 8, 5, 128)
    sources = settings_sources(settings)
    assert sources["daily_rows"].startswith("yaml (")
    assert (sources["seed"], sources["num_layers"], sources["batch_size"]) == (".env", "environment", "argument")
    assert sources["dropout"] == "default"


def test_yaml_nulls_mean_the_default_and_relative_paths_use_the_project_root(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`null` keeps the built-in default; a relative YAML path is joined to the project root, not the cwd."""
    from daily_mlops.settings import BUNDLED_DAGS_FOLDER
    from daily_mlops.settings.sources import settings_sources

    config = _write_config(
        clean_env / "mine.yaml", "home: null\nreference_data: data/reference/german_credit.csv\ndags_folder: dags\n"
    )
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    settings = load_settings()
    assert settings.home == clean_env.resolve()  # the working directory, as without the file
    assert settings.reference_data == BUNDLED_REFERENCE_DATA.resolve()
    assert settings.dags_folder == BUNDLED_DAGS_FOLDER
    assert settings_sources(settings)["home"] == "default"


def test_unknown_yaml_key_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key that is not a Settings field raises ConfigError naming the key and the file (no silent typo)."""
    config = _write_config(clean_env / "typo.yaml", "daily_rows: 1234\ndaily_row: 5\n")
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "'daily_row'" in message
    assert str(config) in message
    assert "did you mean 'daily_rows'" in message


@pytest.mark.parametrize("text", ["- daily_rows\n", "daily_rows: [1\n"])
def test_yaml_that_is_not_a_mapping_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """A list or broken YAML raises ConfigError naming the file, not a raw yaml/pydantic error."""
    config = _write_config(clean_env / "bad.yaml", text)
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_settings()


def test_missing_mlops_config_file_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_CONFIG naming a file that does not exist raises ConfigError naming MLOPS_CONFIG and the fix."""
    monkeypatch.setenv("MLOPS_CONFIG", str(clean_env / "nope.yaml"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"MLOPS_CONFIG={clean_env / 'nope.yaml'}" in message
    assert "does not exist" in message
    assert "unset it" in message


def test_invalid_yaml_value_names_the_key_and_the_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A YAML value pydantic refuses is reported with its MLOPS_* variable, the YAML key and the file."""
    config = _write_config(clean_env / "mine.yaml", "daily_rows: 5\n")
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"MLOPS_DAILY_ROWS (daily_rows in {config.resolve()})" in str(info.value)


def test_direct_construction_without_mlops_config_reads_only_the_bundled_defaults(clean_env: Path) -> None:
    """Settings(..., _env_file=None) in tests (no MLOPS_CONFIG) gets the defaults: the bundled YAML holds them."""
    from daily_mlops.settings import BUNDLED_CONFIG, config_file
    from daily_mlops.settings.sources import settings_sources

    assert config_file() == BUNDLED_CONFIG
    settings = Settings(daily_rows=1200, _env_file=None)
    assert settings.daily_rows == 1200
    assert settings.f1_threshold == "auto"
    sources = settings_sources(settings)
    assert sources["daily_rows"] == "argument"
    assert sources["f1_threshold"] == f"yaml ({BUNDLED_CONFIG})"


def test_bundled_yaml_lists_every_field_with_its_default(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config/daily-mlops.yaml has exactly the Settings fields, and reading it gives the same values as no file.

    `null` is only used where the default is None or computed from the working
    directory (home), so the file states every other default explicitly.
    """
    import yaml

    from daily_mlops.settings import BUNDLED_CONFIG
    from daily_mlops.settings.sources import settings_sources

    raw = yaml.safe_load(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    assert list(raw) == list(Settings.model_fields)  # every field, no extra key, in field order
    nulls = {key for key, value in raw.items() if value is None}
    assert nulls == {name for name, f in Settings.model_fields.items() if f.default is None} | {"home"}

    from_yaml = Settings(_env_file=None)
    sources = settings_sources(from_yaml)
    assert {key for key, source in sources.items() if source.startswith("yaml")} == set(raw) - nulls
    monkeypatch.setenv("MLOPS_CONFIG", str(_write_config(clean_env / "empty.yaml", "")))
    defaults = Settings(_env_file=None)
    assert set(settings_sources(defaults).values()) == {"default"}
    for name in Settings.model_fields:
        assert getattr(from_yaml, name) == getattr(defaults, name), name


def test_configuration_reference_lists_every_variable() -> None:
    """docs/configuration.md's table names every field's MLOPS_* variable and MLOPS_CONFIG (first column)."""
    import re

    from daily_mlops.settings.sources import REFERENCE_PAGE

    page = (Path(__file__).resolve().parents[2] / REFERENCE_PAGE).read_text(encoding="utf-8")
    first_cells = [line.split("|")[1] for line in page.splitlines() if line.startswith("|")]
    table_variables = set(re.findall(r"`(MLOPS_[A-Z0-9_]+)`", "\n".join(first_cells)))
    expected = {f"MLOPS_{name.upper()}" for name in Settings.model_fields} | {"MLOPS_CONFIG"}
    assert expected <= table_variables, sorted(expected - table_variables)


def test_committed_configuration_reference_is_the_generated_one(clean_env: Path) -> None:
    """docs/configuration.md is exactly what `daily-mlops config --reference` prints, so it cannot go stale.

    Regenerate with ``daily-mlops config --reference > docs/configuration.md``. The page shows defaults, not the
    environment: a variable set here does not change it.
    """
    from typer.testing import CliRunner

    from daily_mlops.cli import app
    from daily_mlops.settings.sources import REFERENCE_PAGE, configuration_reference

    committed = (Path(__file__).resolve().parents[2] / REFERENCE_PAGE).read_text(encoding="utf-8")
    assert committed == configuration_reference(), (
        f"{REFERENCE_PAGE} is stale: run `daily-mlops config --reference > {REFERENCE_PAGE}`")
    result = CliRunner().invoke(app, ["config", "--reference"], env={"MLOPS_DAILY_ROWS": "999"})
    assert result.exit_code == 0, result.output
    assert result.output == committed
    assert "| `MLOPS_DAILY_ROWS` | `10000` | int, >= 100, <= 5000000 | Rows sampled per logical date. |" in committed
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not missing, f"Settings fields without Field(description=...): {missing}"


@pytest.mark.parametrize(
    ("name", "value", "shown", "hidden"),
    [
        ("mongo_uri", "mongodb://root:s3cret@mongo:27017/?authSource=admin",
         "mongodb://root:****@mongo:27017", "s3cret"),
        ("mongo_uri", "mongodb://h1,h2/?tlsCertificateKeyFilePassword=pw1",
         "tlsCertificateKeyFilePassword=****", "pw1"),
        ("alert_notifier_kwargs", {"smtp_conn_id": "smtp", "api_token": "tok9"}, '"smtp_conn_id": "smtp"', "tok9"),
    ],
)
def test_display_value_redacts_secrets(name: str, value: object, shown: str, hidden: str) -> None:
    """Passwords in URIs and secret-named kwargs are shown as ****; the rest of the value stays readable."""
    from daily_mlops.settings.sources import display_value

    text = display_value(name, value)
    assert shown in text
    assert hidden not in text


def test_cli_config_shows_value_and_source(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`daily-mlops config` prints daily_rows with its variable, the YAML value and `yaml (<file>)`, then
    `environment`."""
    import re

    from typer.testing import CliRunner

    from daily_mlops.cli import app

    config = _write_config(clean_env / "mine.yaml", "daily_rows: 1234\nmongo_uri: mongodb://u:hunter2@db:27017/\n")
    result = CliRunner().invoke(app, ["config"], env={"MLOPS_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    flat = re.sub(r"[\s│]", "", result.output)  # table cells may fold over several lines
    assert f"daily_rowsMLOPS_DAILY_ROWS1234yaml({config.resolve()})" in flat
    assert "hunter2" not in result.output
    assert "mongodb://u:****@db:27017/" in flat

    result = CliRunner().invoke(app, ["config"], env={"MLOPS_CONFIG": str(config), "MLOPS_DAILY_ROWS": "999"})
    assert result.exit_code == 0, result.output
    assert "daily_rowsMLOPS_DAILY_ROWS999environment" in re.sub(r"[\s│]", "", result.output)


def test_cli_config_exits_2_for_a_missing_mlops_config(clean_env: Path) -> None:
    """`daily-mlops config` with a missing MLOPS_CONFIG file prints the variable and exits 2 without a traceback."""
    from typer.testing import CliRunner

    from daily_mlops.cli import app

    result = CliRunner().invoke(app, ["config"], env={"MLOPS_CONFIG": str(clean_env / "nope.yaml")})
    assert result.exit_code == 2, result.output
    assert "MLOPS_CONFIG" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("env", [
    {},
    {"MLOPS_F1_THRESHOLD": "0.4", "MLOPS_TASK_RETRIES": "0", "MLOPS_REQUIRE_APPROVAL": "true"},
    {"MLOPS_MAX_RETRAIN_ATTEMPTS": "1", "MLOPS_OWNER": "team-a", "MLOPS_APPROVAL_TIMEOUT_HOURS": "2.5"},
])
def test_parse_time_settings_agree_with_settings(clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    """The DAG files' cheap parse-time reader gives the same values as the full Settings for every field it reads."""
    from daily_mlops.settings.parse_time import PARSE_TIME_FIELDS, parse_time_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cheap, full = parse_time_settings(), load_settings()
    assert {f: getattr(cheap, f) for f in PARSE_TIME_FIELDS} == {f: getattr(full, f) for f in PARSE_TIME_FIELDS}


@pytest.mark.parametrize(("variable", "value"), [("MLOPS_F1_THRESHOLD", "nan"), ("MLOPS_TASK_RETRIES", "two"),
                                                 ("MLOPS_REQUIRE_APPROVAL", "maybe")])
def test_parse_time_settings_refuse_what_settings_refuse(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                         variable: str, value: str) -> None:
    """A value the full Settings refuses is refused at parse time too, naming the variable."""
    from daily_mlops.settings.parse_time import parse_time_settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        parse_time_settings()
    with pytest.raises(ConfigError, match=variable):
        load_settings()
