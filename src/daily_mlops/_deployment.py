"""Deployment: copy an approved model version to the deployment directory, atomically.

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
weights beside the old JSON, which :func:`daily_mlops._models.load_deployed`
refuses (sha256 mismatch) and the next deployment repairs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops._artifacts import sha256_hex
from daily_mlops._events import utcnow
from daily_mlops._models import CONFIG_FILE, PREPROCESSOR_NAME, VERSION_FILE, WEIGHTS_FILE, deployment_config
from daily_mlops.errors import MLOpsError

if TYPE_CHECKING:  # pragma: no cover
    from daily_mlops._registry import ModelRegistry

__all__ = ["deploy_version", "deployed_version"]


def deployed_version(directory: Path) -> int | None:
    """The version in ``directory/VERSION`` when its weights match the JSON record, else ``None``."""
    try:
        version = int((directory / VERSION_FILE).read_text().strip())
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except (OSError, ValueError):
        return None
    if config.get("version") != version or sha256_hex(weights) != config.get("sha256", {}).get("weights"):
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


def _write_atomically(directory: Path, files: dict[str, bytes]) -> None:
    """Stage every file, then ``os.replace`` them in the given order."""
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


def deploy_version(
    registry: "ModelRegistry", model_name: str, version: int, *, directory: Path, logical_date: dt.date,
) -> dict[str, Any]:
    """Deploy ``version`` to ``directory`` and record a ``deployment_events`` document; return it.

    Deploying the version already deployed there is a no-op, recorded with
    ``status: "already_deployed"``. The previously deployed version is retired.

    Raises
    ------
    MLOpsError
        When the version is neither approved nor deployed (e.g. candidate, rejected, retired).
    IntegrityError
        When an artifact is missing or its sha256 does not match; nothing is written.
    """
    doc = registry.get(model_name, version)
    current = deployed_version(directory)
    event: dict[str, Any] = {
        "event_type": "model_deployed",
        "model_id": f"{model_name}:v{version}",
        "model_name": model_name,
        "version": int(version),
        "deployment_path": str(directory / WEIGHTS_FILE),
        "sha256": doc["sha256"]["weights"],
        "logical_date": logical_date.isoformat(),
        "previous_version": current,
    }
    if current == version and doc["status"] == "deployed":
        event.update(status="already_deployed", event_type="model_deployment_skipped", timestamp=utcnow())
    else:
        if doc["status"] not in ("approved", "deployed"):
            raise MLOpsError(
                f"{model_name} version {version} is {doc['status']!r}; only an approved version can be deployed"
            )
        directory.mkdir(parents=True, exist_ok=True)
        weights = registry.load_artifact(doc, "weights")
        pre_doc = registry.get(PREPROCESSOR_NAME, doc["preprocessor_version"])
        preprocessor = registry.load_artifact(pre_doc, "preprocessor")
        config = deployment_config(doc, pre_doc, preprocessor)
        _write_atomically(directory, {
            WEIGHTS_FILE: weights,
            CONFIG_FILE: json.dumps(config, indent=2).encode("utf-8"),
            VERSION_FILE: f"{version}\n".encode(),
        })
        for old in registry.list(model_name):
            if old["status"] == "deployed" and old["version"] != version:
                registry.set_status(model_name, old["version"], "retired", reason=f"replaced by version {version}",
                                    logical_date=logical_date.isoformat())
        registry.set_status(model_name, version, "deployed", reason="deployed", logical_date=logical_date.isoformat())
        event.update(status="deployed", timestamp=utcnow())
    registry.db["deployment_events"].replace_one(
        {"logical_date": event["logical_date"], "version": event["version"], "status": event["status"]}, event,
        upsert=True,
    )
    event.pop("_id", None)
    return event
