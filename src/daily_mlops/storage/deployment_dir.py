"""The deployment directory: where approved model versions are written for serving.

Layout of ``MLOPS_DEPLOYMENT_DIR`` (default ``MLOPS_HOME/models/deployed``)::

    versions/<n>/current_model.pth    state_dict (torch.save), loaded with weights_only=True
    versions/<n>/current_model.json   architecture, decision threshold, sha256s, preprocessor (skops, base64)
    versions/<n>/VERSION              the version number n
    versions/<n>/deployment.json      the logical date that last deployed n (read by deployers only)
    current -> versions/<n>           the one switch: the deployed version
    current_model.pth  -> current/current_model.pth    the earlier flat paths, still readable
    current_model.json -> current/current_model.json
    VERSION            -> current/VERSION
    .deploy.lock                      flock(2)ed by the one deployer at a time

Atomicity. A version is written under ``versions/.tmp-<n>-<random>``, each file
fsynced, then the directory fsynced, renamed to ``versions/<n>`` (``rename(2)``
is atomic) and ``versions/`` fsynced: a ``versions/<n>`` is complete or absent.
The switch is one ``os.replace`` of a temporary symlink over ``current``
(atomic on POSIX), then the deployment directory is fsynced. A reader reads the
link once (``os.readlink``) and every file from that one directory, so it sees
one whole version, the old or the new, at every instant; a process killed at any
point leaves ``current`` at the old or the new version. Leftover ``.tmp-*``
entries are removed on failure (``try/finally``) or, after a SIGKILL, by the
next deployment under the lock. Old version directories are pruned beyond
``keep_versions`` (the current one never); a reader whose directory was pruned
under it re-reads the link and reads the new version instead.

A directory in the earlier flat layout (real files at the three paths) is still
read; the next deployment migrates it: the intact flat version is first copied
to ``versions/<n>`` behind ``current`` and each flat path replaced by a symlink
to the same bytes, so those paths never mix two versions; the new version then
arrives through the one switch of ``current``.

Modes: files ``file_mode`` (default 0644) and directories the same with the
matching execute bits (0755), set explicitly, whatever the process umask.
The lock is ``flock(2)``: local filesystems, and NFSv4 on Linux (emulated there with
POSIX locks). Standard library only: this module moves bytes, it does not build models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daily_mlops.checksums import sha256_hex
from daily_mlops.errors import IntegrityError, NotFoundError

__all__ = [
    "CONFIG_FILE", "CURRENT_LINK", "DEFAULT_FILE_MODE", "LOCK_FILE", "RECORD_FILE", "TMP_PREFIX", "VERSIONS_DIR",
    "VERSION_FILE", "WEIGHTS_FILE", "current_directory", "deployed_version", "deployment_lock", "deployment_record",
    "directory_mode", "read_deployment", "write_deployment", "write_record",
]

WEIGHTS_FILE = "current_model.pth"
CONFIG_FILE = "current_model.json"
VERSION_FILE = "VERSION"
RECORD_FILE = "deployment.json"
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
LOCK_FILE = ".deploy.lock"
TMP_PREFIX = ".tmp-"
DEFAULT_FILE_MODE = 0o644
MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE, VERSION_FILE)
#: Attempts of a read whose version directory was pruned under it (each re-reads ``current``).
_READ_ATTEMPTS = 5


def directory_mode(file_mode: int) -> int:
    """The directory mode matching ``file_mode``: each read bit gains its execute bit (0644 -> 0755)."""
    return file_mode | ((file_mode & 0o444) >> 2)


# --------------------------------------------------------------------------- reading
def current_directory(directory: Path) -> Path | None:
    """The directory holding the deployed files: ``current`` read once, the flat seed layout, or ``None``."""
    try:
        return directory / os.readlink(directory / CURRENT_LINK)
    except FileNotFoundError:
        pass
    except OSError:  # ``current`` exists but is no symlink: not a deployment this module wrote
        return None
    flat = directory / WEIGHTS_FILE
    return directory if flat.is_file() and not flat.is_symlink() else None


def _read(directory: Path, names: tuple[str, ...]) -> tuple[Path, dict[str, bytes]]:
    """Bytes of ``names``, all from one resolved version directory (retried when it was pruned meanwhile)."""
    for _ in range(_READ_ATTEMPTS):
        source = current_directory(directory)
        if source is None:
            break
        try:
            return source, {name: (source / name).read_bytes() for name in names}
        except FileNotFoundError:  # pruned after the link was read: read the link again
            continue
    raise NotFoundError(
        f"no deployed model in {directory} ({WEIGHTS_FILE} and {CONFIG_FILE} expected); "
        "run model_deployment_pipeline or `daily-mlops demo` first, or set MLOPS_DEPLOYMENT_DIR"
    )


def deployed_version(directory: Path) -> int | None:
    """The deployed version when its ``VERSION``, JSON record and weights agree, else ``None``."""
    try:
        _, files = _read(directory, MODEL_FILES)
        version = int(files[VERSION_FILE].decode().strip())
        config = json.loads(files[CONFIG_FILE])
    except (NotFoundError, OSError, ValueError):
        return None
    if config.get("model_version") != version:
        return None
    if sha256_hex(files[WEIGHTS_FILE]) != config.get("sha256", {}).get("weights"):
        return None
    return version


def deployment_record(directory: Path) -> dict[str, Any] | None:
    """``model_version`` and ``logical_date`` (ISO) of the current deployment; ``None`` when not recorded.

    The flat seed layout records no logical date: ``None`` there too.
    """
    source = current_directory(directory)
    if source is None or source == directory:
        return None
    try:
        record = json.loads((source / RECORD_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "logical_date" in record else None


def read_deployment(directory: Path) -> tuple[dict[str, Any], bytes, Path]:
    """The deployed model's JSON config, its verified weights bytes and the weights path.

    Both files come from the one version directory ``current`` pointed to when
    it was read.

    Raises
    ------
    NotFoundError
        When no model is deployed there (run the deployment DAG, or ``daily-mlops demo``).
    IntegrityError
        When ``current_model.pth`` does not hash to the sha256 recorded in the JSON.
    """
    source, files = _read(directory, (CONFIG_FILE, WEIGHTS_FILE))
    weights_path, config_path = source / WEIGHTS_FILE, source / CONFIG_FILE
    config = json.loads(files[CONFIG_FILE])
    weights = files[WEIGHTS_FILE]
    if sha256_hex(weights) != config["sha256"]["weights"]:
        raise IntegrityError(
            f"{weights_path} has sha256 {sha256_hex(weights)}, but {config_path} records "
            f"{config['sha256']['weights']}; refusing to load it. Redeploy the model."
        )
    return config, weights, weights_path


# --------------------------------------------------------------------------- writing primitives
def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (must not exist) with ``mode`` whatever the umask, write ``data``, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def _make_dirs(directory: Path, mode: int) -> None:
    """``mkdir -p`` giving each directory it creates ``mode`` (existing ones are left alone)."""
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent deployer made it first
            path.mkdir()
            os.chmod(path, mode)


def _replace_symlink(target: str, link: Path) -> None:
    """Point ``link`` at ``target`` in one ``os.replace`` of a temporary symlink (atomic)."""
    tmp = link.with_name(f"{TMP_PREFIX}{link.name}-{secrets.token_hex(4)}")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _is_temporary(name: str) -> bool:
    # ``.tmp-*`` from this module; ``.<file>.<random>.tmp`` from the earlier flat layout's writer
    return name.startswith(TMP_PREFIX) or (name.startswith(".") and name.endswith(".tmp"))


def _remove_stale_temporaries(directory: Path) -> list[str]:
    """Remove ``.tmp-*`` leftovers of killed deployments (call under the lock); return their names."""
    removed = []
    parents = [directory, directory / VERSIONS_DIR]
    if parents[1].is_dir():
        parents += [p for p in parents[1].iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit()]
    for parent in parents:
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if _is_temporary(entry.name):
                _remove(entry)
                removed.append(str(entry.relative_to(directory)))
    return removed


# --------------------------------------------------------------------------- the deployment
@contextlib.contextmanager
def deployment_lock(directory: Path, *, file_mode: int = DEFAULT_FILE_MODE) -> Iterator[list[str]]:
    """Hold the exclusive ``flock`` on ``directory/.deploy.lock`` for the block; yield the stale temporaries removed.

    Creates ``directory`` (mode :func:`directory_mode`) when missing. Blocks
    while another process deploys; the kernel releases the lock when its holder
    exits, even by SIGKILL.
    """
    _make_dirs(directory, directory_mode(file_mode))
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, file_mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield _remove_stale_temporaries(directory)
    finally:
        os.close(fd)  # releases the lock


def _record_bytes(model_version: int, logical_date: str | None) -> bytes:
    record = {"model_version": int(model_version), "logical_date": logical_date,
              "deployed_at": dt.datetime.now(dt.UTC).isoformat()}
    return json.dumps(record, indent=2).encode("utf-8")


def write_record(directory: Path, model_version: int, logical_date: str | None, *,
                 file_mode: int = DEFAULT_FILE_MODE) -> None:
    """Replace ``versions/<n>/deployment.json`` atomically (temporary file, fsync, ``os.replace``). Under the lock."""
    final = directory / VERSIONS_DIR / str(model_version)
    tmp = final / f"{TMP_PREFIX}{RECORD_FILE}-{secrets.token_hex(4)}"
    try:
        _write_file(tmp, _record_bytes(model_version, logical_date), file_mode)
        os.replace(tmp, final / RECORD_FILE)
        _fsync_dir(final)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _holds(final: Path, files: dict[str, bytes]) -> bool:
    try:
        if not final.is_dir() or final.is_symlink():
            return False
        return all((final / n).read_bytes() == b for n, b in files.items())
    except OSError:
        return False


def _stage_version(versions: Path, model_version: int, files: dict[str, bytes], record: bytes, file_mode: int) -> None:
    """Write ``versions/.tmp-<n>-<random>``, fsync it, rename it to ``versions/<n>``; remove it on failure."""
    final = versions / str(model_version)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{model_version}-", dir=versions))
    aside = versions / f"{TMP_PREFIX}old-{model_version}-{secrets.token_hex(4)}"
    try:
        os.chmod(tmp, directory_mode(file_mode))
        for name, data in {**files, RECORD_FILE: record}.items():
            _write_file(tmp / name, data, file_mode)
        _fsync_dir(tmp)
        if os.path.lexists(final):  # a damaged or partial copy (never the intact current one): set it aside
            os.rename(final, aside)
        os.rename(tmp, final)
        _fsync_dir(versions)
    finally:
        _remove(tmp)
        _remove(aside)


def _prune(directory: Path, keep_versions: int) -> list[int]:
    """Remove version directories beyond the ``keep_versions`` most recently deployed; never the current one."""
    versions = directory / VERSIONS_DIR
    source = current_directory(directory)
    current = source.name if source is not None and source.parent == versions else None
    others = [p for p in versions.iterdir() if p.name.isdigit() and p.name != current and not p.is_symlink()]

    def last_deployed(path: Path) -> int:
        try:
            return (path / RECORD_FILE).stat().st_mtime_ns
        except OSError:
            return 0

    others.sort(key=last_deployed, reverse=True)
    pruned = []
    for old in others[max(keep_versions - 1, 0):]:
        aside = versions / f"{TMP_PREFIX}prune-{old.name}-{secrets.token_hex(4)}"
        os.rename(old, aside)  # atomic: versions/<n> is whole or gone, never half-deleted
        _remove(aside)
        pruned.append(int(old.name))
    return pruned


def write_deployment(
    directory: Path, *, weights: bytes, config: dict[str, Any], model_version: int, logical_date: str,
    file_mode: int = DEFAULT_FILE_MODE, keep_versions: int = 5,
) -> list[int]:
    """Deploy one version: write ``versions/<n>``, switch ``current`` to it, prune; return the pruned versions.

    Call it inside :func:`deployment_lock`. An intact ``versions/<n>`` holding
    the same bytes is reused (only its ``deployment.json`` is rewritten).

    Parameters
    ----------
    weights : bytes
        ``state_dict`` bytes (torch.save) whose sha256 ``config["sha256"]["weights"]`` records.
    logical_date : str
        ISO date of the DAG run, recorded in ``deployment.json``.
    file_mode : int
        Mode of every file written (directories get the matching execute bits).
    keep_versions : int
        Version directories kept for rollback, the current one included (>= 1).

    Raises
    ------
    OSError
        When a write fails (e.g. ENOSPC); the temporary files are removed and
        ``current`` still names the previous version.
    """
    _make_dirs(directory / VERSIONS_DIR, directory_mode(file_mode))
    _migrate_flat_layout(directory, file_mode)
    files = {
        WEIGHTS_FILE: weights,
        CONFIG_FILE: json.dumps(config, indent=2).encode("utf-8"),
        VERSION_FILE: f"{model_version}\n".encode(),
    }
    _install(directory, model_version, files, logical_date, file_mode)
    return _prune(directory, keep_versions)


def _install(directory: Path, model_version: int, files: dict[str, bytes], logical_date: str | None,
             file_mode: int) -> None:
    """Make ``versions/<n>`` hold ``files``, switch ``current`` to it, make the three flat paths symlinks into it."""
    versions = directory / VERSIONS_DIR
    final = versions / str(model_version)
    if _holds(final, files):
        for path in (final, *(final / name for name in files)):
            os.chmod(path, directory_mode(file_mode) if path == final else file_mode)
        write_record(directory, model_version, logical_date, file_mode=file_mode)
    else:
        _stage_version(versions, model_version, files, _record_bytes(model_version, logical_date), file_mode)

    target = f"{VERSIONS_DIR}/{model_version}"
    link = directory / CURRENT_LINK
    if not (link.is_symlink() and os.readlink(link) == target):
        _replace_symlink(target, link)
    for name in MODEL_FILES:  # the three flat paths: created once (or replacing the real files of a flat layout)
        path = directory / name
        if not (path.is_symlink() and os.readlink(path) == f"{CURRENT_LINK}/{name}"):
            _replace_symlink(f"{CURRENT_LINK}/{name}", path)
    _fsync_dir(directory)


def _migrate_flat_layout(directory: Path, file_mode: int) -> None:
    """Move an intact flat deployment into ``versions/<n>`` behind ``current`` before anything else changes.

    Its flat paths then turn into symlinks to the same bytes one at a time, so
    a reader of those paths never sees two versions mixed; the new version
    then arrives through the single switch of ``current``. A torn flat
    directory has nothing worth keeping and is simply replaced.
    """
    if os.path.lexists(directory / CURRENT_LINK) or current_directory(directory) != directory:
        return
    version = deployed_version(directory)
    if version is not None:
        files = {name: (directory / name).read_bytes() for name in MODEL_FILES}
        _install(directory, version, files, None, file_mode)
