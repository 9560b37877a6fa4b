"""The deployment directory: where the approved model version is copied for serving.

Layout of ``MLOPS_DEPLOYMENT_DIR`` (default ``MLOPS_HOME/models/deployed``)::

    current_model.pth    state_dict (torch.save), loaded with weights_only=True
    current_model.json   architecture, decision threshold, sha256s, preprocessor (skops, base64)
    VERSION              the deployed version number

Atomicity: each file is first written to a temporary file in the same
directory and fsynced; only when all three are staged are they moved into
place with ``os.replace`` (atomic on POSIX within one filesystem), weights
first and ``VERSION`` last, and the directory is fsynced. A crash before the
replaces leaves the previous model untouched and the temporary files are
removed. Each file is always whole; a crash *between* two replaces leaves new
weights beside the old JSON, which :func:`read_deployment` refuses (sha256
mismatch) and the next deployment repairs.

Standard library only: this module moves bytes, it does not build models.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from daily_mlops.checksums import sha256_hex
from daily_mlops.errors import IntegrityError, NotFoundError

__all__ = ["CONFIG_FILE", "VERSION_FILE", "WEIGHTS_FILE", "deployed_version", "read_deployment", "write_deployment"]

WEIGHTS_FILE = "current_model.pth"
CONFIG_FILE = "current_model.json"
VERSION_FILE = "VERSION"


def deployed_version(directory: Path) -> int | None:
    """The version in ``directory/VERSION`` when its weights match the JSON record, else ``None``."""
    try:
        version = int((directory / VERSION_FILE).read_text().strip())
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except (OSError, ValueError):
        return None
    if config.get("model_version") != version or sha256_hex(weights) != config.get("sha256", {}).get("weights"):
        return None
    return version


def _stage(directory: Path, name: str, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_deployment(directory: Path, *, weights: bytes, config: dict[str, Any], model_version: int) -> None:
    """Write the three files of a deployment: stage every file, then ``os.replace`` them in order."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        WEIGHTS_FILE: weights,
        CONFIG_FILE: json.dumps(config, indent=2).encode("utf-8"),
        VERSION_FILE: f"{model_version}\n".encode(),
    }
    staged: dict[str, Path] = {}
    try:
        for name, data in files.items():
            staged[name] = _stage(directory, name, data)
        for name, tmp in staged.items():
            os.replace(tmp, directory / name)
        _fsync_dir(directory)
    finally:
        for tmp in staged.values():
            if tmp.exists():
                tmp.unlink()


def read_deployment(directory: Path) -> tuple[dict[str, Any], bytes, Path]:
    """The deployed model's JSON config, its verified weights bytes and the weights path.

    Raises
    ------
    NotFoundError
        When no model is deployed there (run the deployment DAG, or ``daily-mlops demo``).
    IntegrityError
        When ``current_model.pth`` does not hash to the sha256 recorded in the JSON.
    """
    weights_path, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not weights_path.is_file() or not config_path.is_file():
        raise NotFoundError(
            f"no deployed model in {directory} ({WEIGHTS_FILE} and {CONFIG_FILE} expected); "
            "run model_deployment_pipeline or `daily-mlops demo` first, or set MLOPS_DEPLOYMENT_DIR"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    weights = weights_path.read_bytes()
    if sha256_hex(weights) != config["sha256"]["weights"]:
        raise IntegrityError(
            f"{weights_path} has sha256 {sha256_hex(weights)}, but {config_path} records "
            f"{config['sha256']['weights']}; refusing to load it. Redeploy the model."
        )
    return config, weights, weights_path
