"""daily-mlops: a daily MLOps loop on Apache Airflow 3 and MongoDB."""

from daily_mlops.errors import ConfigError, IntegrityError, MLOpsError, NotFoundError, SchemaError, UnsafeArtifactError
from daily_mlops.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "IntegrityError",
    "MLOpsError",
    "NotFoundError",
    "SchemaError",
    "Settings",
    "UnsafeArtifactError",
    "load_settings",
]
__version__ = "0.1.0"
