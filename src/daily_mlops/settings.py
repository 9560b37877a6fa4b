"""Typed configuration: one :class:`Settings`, read from ``MLOPS_*`` variables and ``.env``.

Source: pydantic-settings (https://docs.pydantic.dev/latest/concepts/pydantic_settings/).
Only the CLI and the DAG tasks build a ``Settings``; library functions take it
(or the few values they need) as an argument. Tests build ``Settings(...)``
directly instead of patching globals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from daily_mlops.errors import ConfigError

__all__ = ["Settings", "load_settings", "BUNDLED_REFERENCE_DATA"]

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The bundled Statlog (German Credit Data) copy; see data/reference/README.md.
BUNDLED_REFERENCE_DATA = _PROJECT_ROOT / "data" / "reference" / "german_credit.csv"
#: The project's DAG files (used by ``daily-mlops run`` and ``daily-mlops airflow``).
BUNDLED_DAGS_FOLDER = _PROJECT_ROOT / "dags"


class Settings(BaseSettings):
    """Everything the loop can be configured with.

    Every field is read from the environment variable ``MLOPS_<FIELD>`` (upper
    case) or from a ``.env`` file in the working directory. Defaults are the
    seed project's values.

    Raises
    ------
    pydantic.ValidationError
        When built directly with an invalid value. :func:`load_settings` turns
        it into a :class:`~daily_mlops.errors.ConfigError` that names the
        ``MLOPS_*`` variable.
    """

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -----------------------------------------------------------
    mongo_uri: str | None = Field(
        default=None,
        description="MongoDB URI. Unset: the CLI starts the embedded SecantusDB server under MLOPS_HOME.",
    )
    mongo_db: str = Field(default="mlops", min_length=1, description="Database name.")
    mongo_conn_id: str = Field(
        default="mongo_default", description="Airflow connection used by the DAG tasks (MongoHook)."
    )
    home: Path = Field(default=Path("."), description="Root of local state: models/, data/, the embedded server's files, the local Airflow home.")

    # --- data --------------------------------------------------------------
    reference_data: Path = Field(default=BUNDLED_REFERENCE_DATA, description="CSV of real rows the synthesizer is fit on.")
    target_column: str = Field(default="creditability", min_length=1)
    positive_label: str = Field(default="bad", min_length=1, description="Target value counted as the positive class for F1.")
    daily_rows: int = Field(default=10_000, ge=100, le=5_000_000, description="Rows sampled per logical date.")

    # --- evaluation loop ---------------------------------------------------
    f1_threshold: float = Field(default=0.75, ge=0.0, le=1.0, description="F1 (positive class) a model must reach to pass.")
    max_retrain_attempts: int = Field(default=3, ge=0, le=3, description="Fine-tuning attempts before an alert (the DAG unrolls 3).")

    # --- model hyperparameters (the seed's TabTransformer) -----------------
    d_model: int = Field(default=32, ge=4)
    nhead: int = Field(default=4, ge=1)
    num_layers: int = Field(default=6, ge=1)
    dim_feedforward: int = Field(default=64, ge=4)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)

    # --- training ----------------------------------------------------------
    batch_size: int = Field(default=256, ge=8)
    learning_rate: float = Field(default=1e-3, gt=0.0, lt=1.0)
    pretrain_epochs: int = Field(default=5, ge=0, description="Contrastive (NT-Xent) pretraining epochs.")
    finetune_epochs: int = Field(default=15, ge=1, description="Supervised fine-tuning epochs.")
    retrain_epochs: int = Field(default=8, ge=1, description="Fine-tuning epochs of one retraining attempt.")
    temperature: float = Field(default=0.5, gt=0.0, description="NT-Xent temperature (SimCLR, Chen et al. 2020).")
    mask_probability: float = Field(default=0.15, ge=0.0, lt=1.0, description="Fraction of features masked per augmented view.")
    seed: int = Field(default=42, ge=0)

    task_retries: int = Field(default=2, ge=0, le=10, description="Airflow retries per task (exponential backoff from 1 min).")

    # --- alerting ----------------------------------------------------------
    alert_notifier: str | None = Field(
        default=None,
        description="Extra Airflow notifier for alerts, as 'module:Class' (e.g. "
        "'airflow.providers.smtp.notifications.smtp:SmtpNotifier'); built with MLOPS_ALERT_NOTIFIER_KWARGS.",
    )
    alert_notifier_kwargs: dict[str, Any] = Field(default_factory=dict, description="JSON keyword arguments of MLOPS_ALERT_NOTIFIER.")

    dags_folder: Path = Field(default=BUNDLED_DAGS_FOLDER, description="DAG files used by `daily-mlops run` / `airflow`.")

    # --- deployment --------------------------------------------------------
    deployment_dir: Path | None = Field(
        default=None,
        description="Where the approved model is copied. Unset: MLOPS_HOME/models/deployed; relative: under MLOPS_HOME.",
    )
    deployment_keep_versions: int = Field(
        default=5, ge=1, description="Version directories kept in MLOPS_DEPLOYMENT_DIR/versions for rollback (the current one included).",
    )
    deployment_file_mode: str = Field(
        default="0644", description="Octal mode of deployed files, e.g. '0644'; directories get the matching execute bits.",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("reference_data", mode="after")
    @classmethod
    def _reference_path(cls, value: Path) -> Path:
        # Checked where it is read (require_reference_data), not here: DAG files build
        # Settings at parse time and must not fail on a file only bootstrap needs.
        return value.expanduser().resolve()

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
    def _heads_divide_width(self) -> "Settings":
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


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, ``.env`` and ``overrides``.

    Raises
    ------
    ConfigError
        When a value is invalid; the message names each ``MLOPS_*`` variable
        and what it must be.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            variable = f"MLOPS_{field.upper()}" if err["loc"] else "settings"
            problems.append(f"{variable}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
