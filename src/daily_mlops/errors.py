"""The one exception type a user can cause, and its specialisations.

Every error that bad configuration, bad input data, a missing model or a
tampered artifact can cause is a :class:`MLOpsError`. Its message names the
thing that is wrong (a column, a file, a variable, a model version) and the
fix. The CLI prints it without a traceback and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "MLOpsError",
    "ConfigError",
    "SchemaError",
    "IntegrityError",
    "NotFoundError",
    "UnsafeArtifactError",
]


class MLOpsError(Exception):
    """Base class: an error the user can fix, with a message that says how."""


class ConfigError(MLOpsError):
    """A setting (``MLOPS_*`` variable, ``.env`` entry or DAG param) is invalid."""


class SchemaError(MLOpsError):
    """A data batch does not match the stored schema (names the column)."""


class IntegrityError(MLOpsError):
    """A stored artifact is missing or its sha256 does not match the record."""


class NotFoundError(MLOpsError):
    """A model version, batch or artifact that was asked for does not exist."""


class UnsafeArtifactError(MLOpsError):
    """A file holds a pickled object (or other code) and was refused."""
