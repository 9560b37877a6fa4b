"""Deployment under faults: a deployer SIGKILLed mid-write, two deployers at once, a full disk, paths, modes.

One test per failure measured on the flat, three-``os.replace`` deployment:

1. killed between two steps: the directory was torn and ``predict`` refused it;
2. two deploys at once: the directory was torn and the registry named the loser;
3. temporary files of killed or failed deploys were never removed (on ENOSPC the
   leftover ate the space, so every retry failed);
4. an empty or relative ``MLOPS_DEPLOYMENT_DIR`` wrote into the worker's current directory;
5. deployed files were 0600: a serving process under another uid could not read them.

Processes that die are real: each deployer is ``sys.executable`` running
:data:`CHILD`, a harness script this module writes. It patches ``os.<call>``
*inside the child only* so that the Nth call SIGKILLs the process, or pauses
it, then calls :func:`daily_mlops.loop.deployment.deploy_version`. No hook lives
in the deployment code. The registry (GridFS) runs on the session's SecantusDB.
"""

from __future__ import annotations

import datetime as dt
import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from daily_mlops.errors import ConfigError
from daily_mlops.loop.deployment import deploy_model, deploy_version, load_deployed
from daily_mlops.ml.schema import read_csv
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, load_settings
from daily_mlops.storage import deployment_dir
from daily_mlops.storage.deployment_dir import CONFIG_FILE, VERSION_FILE, WEIGHTS_FILE, deployed_version
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = pytest.mark.integration

_HELPERS = Path(__file__).resolve().parents[1] / "integration" / "test_deployment.py"
_spec = importlib.util.spec_from_file_location("deployment_test_helpers", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # make_preprocessor, tiny_network, build_registry

SRC = Path(__file__).resolve().parents[2] / "src"
DAY = dt.date(2026, 11, 20)
SEED_FILES = (WEIGHTS_FILE, CONFIG_FILE, VERSION_FILE)

#: The deployer harness. argv: uri db directory version day, then options (see ``--help``).
CHILD = r'''
import argparse, fcntl, json, os, signal, sys, time, datetime as dt
from pathlib import Path
from pymongo import MongoClient
import daily_mlops.ml.bundle, daily_mlops.storage.events  # noqa: F401 (before patching)
import daily_mlops.storage.deployment_dir  # noqa: F401 (before patching)
from daily_mlops.loop.deployment import deploy_version
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

p = argparse.ArgumentParser()
p.add_argument("uri"); p.add_argument("db"); p.add_argument("directory"); p.add_argument("version", type=int)
p.add_argument("day")
p.add_argument("--kill", help="CALL:N: SIGKILL this process just before its Nth os.CALL")
p.add_argument("--pause-after",
               help="CALL:N: after the Nth os.CALL returns, create --mid-file and wait for --resume-on")
p.add_argument("--mid-file"); p.add_argument("--resume-on", action="append", default=[])
p.add_argument("--start-after", help="wait for this file before deploying")
p.add_argument("--announce-flock", help="create this file just before calling fcntl.flock")
p.add_argument("--done-file")
a = p.parse_args()

def wait_for(paths, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not any(os.path.exists(x) for x in paths):
        time.sleep(0.01)

def patch(spec, before=None, after=None):
    name, nth = spec.split(":")
    real, count = getattr(os, name), {"n": 0}
    def wrapper(*args, **kwargs):
        count["n"] += 1
        if count["n"] == int(nth) and before:
            before()
        result = real(*args, **kwargs)
        if count["n"] == int(nth) and after:
            after()
        return result
    setattr(os, name, wrapper)

def pause():
    Path(a.mid_file).touch()
    wait_for(a.resume_on)

if a.announce_flock:
    real_flock = fcntl.flock
    def flock(fd, op):
        Path(a.announce_flock).touch()
        return real_flock(fd, op)
    fcntl.flock = flock

registry = ModelRegistry(MongoClient(a.uri, tz_aware=True)[a.db])
if a.start_after:
    wait_for([a.start_after])
if a.kill:
    patch(a.kill, before=lambda: os.kill(os.getpid(), signal.SIGKILL))
if a.pause_after:
    patch(a.pause_after, after=pause)
event = deploy_version(registry, MODEL_NAME, a.version, directory=Path(a.directory),
                       logical_date=dt.date.fromisoformat(a.day))
if a.done_file:
    Path(a.done_file).touch()
print(json.dumps({k: event.get(k) for k in ("model_version", "status", "version_in_place")}))
'''


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def preprocessor():
    return helpers.make_preprocessor(read_csv(BUNDLED_REFERENCE_DATA).head(200).reset_index(drop=True))


@pytest.fixture(scope="module")
def networks(preprocessor):
    """Three differently initialised tiny networks: tabtransformer versions 1, 2 and 3."""
    return {v: helpers.tiny_network(preprocessor, v) for v in (1, 2, 3)}


@pytest.fixture
def registry(real_db, preprocessor, networks) -> ModelRegistry:
    """Preprocessor v1 and tabtransformer v1, v2, v3, all approved, on the real server."""
    return helpers.build_registry(real_db, preprocessor, networks)


@pytest.fixture
def child(tmp_path: Path, mongo_uri: str, registry: ModelRegistry):
    """Start the deployer harness: ``child(directory, version, day, *options) -> Popen``."""
    script = tmp_path / "deploy_child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}

    def start(directory: Path, version: int, day: dt.date, *options: str) -> subprocess.Popen:
        cmd = [sys.executable, str(script), mongo_uri, registry.db.name, str(directory), str(version),
               day.isoformat(), *options]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    return start


def _finish(proc: subprocess.Popen, timeout: float = 90.0) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def _temporaries(directory: Path) -> list[str]:
    """Every leftover temporary entry anywhere under ``directory``, as sorted paths relative to it.

    Both this layout's and the earlier flat layout's writer's count (hidden names ``.tmp-*`` or ``.*.tmp``).
    """
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".*")
                  if p.name.startswith(".tmp-") or p.name.endswith(".tmp"))


def _assert_whole(directory: Path, networks) -> int:
    """The directory serves one complete version, through load_deployed and through the three flat paths; return it."""
    bundle = load_deployed(directory)
    version = bundle.model_version
    assert version in networks
    assert deployed_version(directory) == version
    expected = networks[version].state_dict()
    for key, tensor in bundle.model.state_dict().items():  # the weights are that version's weights
        assert torch.equal(tensor, expected[key]), key
    config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    assert int((directory / VERSION_FILE).read_text()) == config["model_version"] == version
    return version


def _deployed_in_registry(registry: ModelRegistry) -> list[int]:
    return [d["model_version"] for d in registry.list(MODEL_NAME) if d["status"] == "deployed"]


def _latest_event(registry: ModelRegistry) -> dict:
    return registry.db["deployment_events"].find_one({}, {"_id": 0}, sort=[("timestamp", -1)])


# --------------------------------------------------------------------------- 1. killed mid-deploy
@pytest.mark.parametrize("kill_at", ["fsync:3", "rename:1", "symlink:1", "replace:1", "replace:2", "fsync:7"])
def test_deployer_killed_at_any_step_leaves_one_whole_version(
    registry: ModelRegistry, networks, child, tmp_path: Path, kill_at: str
):
    """A deployer SIGKILLed before its Nth os.<call> leaves v1 or v2 whole for load_deployed; the retry completes v2.

    The points cover the middle of the version directory's writes, its rename,
    the temporary symlink, the switch of ``current``, the fsync right after it
    (directory ahead of the registry), and the migration of a flat seed layout
    between two replaces. The three flat paths agree too.
    """
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    if kill_at == "replace:2":  # between two replaces of the earlier flat layout (here: while migrating it)
        source, target = target, tmp_path / "flat"
        target.mkdir()
        for name in SEED_FILES:
            (target / name).write_bytes((source / name).read_bytes())
    code, _, err = _finish(child(target, 2, DAY + dt.timedelta(days=1), "--kill", kill_at))
    assert code == -signal.SIGKILL, err

    assert _assert_whole(target, networks) in (1, 2)

    retry = deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=DAY + dt.timedelta(days=1))
    assert retry["status"] == "deployed"
    assert _assert_whole(target, networks) == 2
    assert _temporaries(target) == []
    assert _deployed_in_registry(registry) == [2]
    assert registry.get(MODEL_NAME, 1)["status"] == "retired"
    assert _latest_event(registry)["version_in_place"] == 2


# --------------------------------------------------------------------------- 2. two deployers at once
@pytest.mark.parametrize("first", [2, 3])
def test_concurrent_deploys_agree_on_the_newer_version(
    registry: ModelRegistry, networks, child, tmp_path: Path, first: int
):
    """Two processes deploy v2 (day+1) and v3 (day+2) at once; directory, registry and latest event all name v3.

    The race is forced: ``first`` pauses right after its first ``os.replace``
    (in the flat layout, its new weights are in place) until the other deployer
    has finished or is blocked on the lock; the other starts at that moment.
    Both exit 0. Whoever runs first, the later logical date wins and the older
    one is recorded as ``superseded`` or ``deployed`` then retired, never half-applied.
    """
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    days = {2: DAY + dt.timedelta(days=1), 3: DAY + dt.timedelta(days=2)}
    second = 5 - first
    mid, done, blocked = tmp_path / "mid", tmp_path / "second-done", tmp_path / "second-blocked"
    a = child(target, first, days[first], "--pause-after", "replace:1", "--mid-file", str(mid),
              "--resume-on", str(done), "--resume-on", str(blocked))
    b = child(target, second, days[second], "--start-after", str(mid), "--announce-flock", str(blocked),
              "--done-file", str(done))
    (code_a, out_a, err_a), (code_b, out_b, err_b) = _finish(a), _finish(b)
    assert (code_a, code_b) == (0, 0), err_a + err_b
    assert mid.exists()  # the pause really happened

    assert _assert_whole(target, networks) == 3
    assert _deployed_in_registry(registry) == [3]
    assert registry.get(MODEL_NAME, 2)["status"] in ("approved", "retired")
    latest = _latest_event(registry)
    assert latest["version_in_place"] == 3
    outcome_v2 = json.loads(out_a if first == 2 else out_b)
    assert outcome_v2["status"] == ("deployed" if first == 2 else "superseded")
    assert outcome_v2["version_in_place"] == (2 if first == 2 else 3)
    if first == 3:
        assert latest["status"] == "superseded" and latest["model_version"] == 2
    assert _temporaries(target) == []


# --------------------------------------------------------------------------- 3. leftovers
def test_leftovers_of_a_killed_deploy_are_removed_by_the_next_one(
    registry: ModelRegistry, networks, child, tmp_path: Path
):
    """A deployer killed in the middle of writing leaves temporaries; v1 stays served; the next deploy removes them."""
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    code, _, err = _finish(child(target, 2, DAY + dt.timedelta(days=1), "--kill", "fsync:2"))
    assert code == -signal.SIGKILL, err
    assert _temporaries(target)  # the kill really left something behind
    assert _assert_whole(target, networks) == 1

    deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=DAY + dt.timedelta(days=1))
    assert _temporaries(target) == []
    assert _assert_whole(target, networks) == 2


def test_enospc_during_a_write_leaves_no_temporary_file_and_the_retry_succeeds(
    registry: ModelRegistry, networks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The first write (or, for a buffered writer, its fsync) into the deployment directory fails with ENOSPC.

    The deploy raises, v1 is still served, nothing temporary is left to eat
    the space, the registry still names v1, and the retry deploys v2.
    """
    target = tmp_path / "deployed"
    deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
    failed = {"n": 0}

    def full_disk(real):
        def call(fd, *args):
            if not failed["n"] and os.readlink(f"/proc/self/fd/{fd}").startswith(str(target)):
                failed["n"] += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, *args)
        return call

    for name in ("write", "fsync"):
        monkeypatch.setattr(deployment_dir.os, name, full_disk(getattr(os, name)))
    with pytest.raises(OSError) as info:
        deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=DAY + dt.timedelta(days=1))
    monkeypatch.undo()

    assert info.value.errno == errno.ENOSPC
    assert _temporaries(target) == []
    assert _assert_whole(target, networks) == 1
    assert _deployed_in_registry(registry) == [1]

    assert deploy_version(registry, MODEL_NAME, 2, directory=target,
                          logical_date=DAY + dt.timedelta(days=1))["status"] == "deployed"
    assert _assert_whole(target, networks) == 2


# --------------------------------------------------------------------------- 4. paths
def test_empty_deployment_dir_is_refused_and_a_relative_one_is_under_mlops_home(
    registry: ModelRegistry, networks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """MLOPS_DEPLOYMENT_DIR="" raises ConfigError naming it; "served/models" deploys under MLOPS_HOME, not the cwd."""
    home, cwd = tmp_path / "home", tmp_path / "worker-cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_DEPLOYMENT_DIR", "")
    with pytest.raises(ConfigError, match="MLOPS_DEPLOYMENT_DIR"):
        load_settings(_env_file=None)

    monkeypatch.setenv("MLOPS_DEPLOYMENT_DIR", "served/models")
    settings = load_settings(_env_file=None)
    assert settings.deployment_path == (home / "served" / "models").resolve()
    result = deploy_model(settings, logical_date=DAY, model_version=1, db=registry.db)
    assert result["deployment_path"] == str(home.resolve() / "served" / "models" / WEIGHTS_FILE)
    assert load_deployed(home / "served" / "models").model_version == 1
    assert list(cwd.iterdir()) == []  # nothing in the worker's current directory


# --------------------------------------------------------------------------- 5. modes
def test_deployed_files_are_world_readable_whatever_the_umask(registry: ModelRegistry, networks, tmp_path: Path):
    """Under umask 077, files are 0644 and directories 0755 (0640/0750 when configured); another uid reads them."""
    base = Path(tempfile.mkdtemp(prefix="mlops-modes-"))  # outside pytest's 0700 tmp tree, like a shared volume
    os.chmod(base, 0o755)
    old_umask = os.umask(0o077)
    try:
        target = base / "served" / "deployed"
        deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)
        os.umask(old_umask)
        _assert_modes(target, 0o644, 0o755)
        assert oct((base / "served").stat().st_mode & 0o7777) == oct(0o755)  # a parent it created
        if os.geteuid() == 0:  # a serving process under another uid reads the flat paths
            for name in SEED_FILES:
                read = subprocess.run(["cat", str(target / name)], user=65534, group=65534, capture_output=True)
                assert read.returncode == 0, read.stderr
                assert read.stdout == (target / name).read_bytes()

        os.umask(0o077)
        restricted = base / "restricted"
        deploy_version(registry, MODEL_NAME, 2, directory=restricted, logical_date=DAY, file_mode=0o640)
        os.umask(old_umask)
        _assert_modes(restricted, 0o640, 0o750)
        if os.geteuid() == 0:
            denied = subprocess.run(["cat", str(restricted / WEIGHTS_FILE)], user=65534, group=65534,
                                    capture_output=True)
            assert denied.returncode != 0  # 0640: others may not
    finally:
        os.umask(old_umask)
        shutil.rmtree(base)


def _assert_modes(root: Path, file_mode: int, dir_mode: int) -> None:
    """Every file behind the flat paths (and its siblings) has ``file_mode``; each directory on the way ``dir_mode``."""
    holders = {(root / name).resolve().parent for name in SEED_FILES}
    files = [p for holder in holders for p in holder.iterdir() if p.is_file() and not p.is_symlink()]
    assert len(files) >= 3
    assert {oct(p.stat().st_mode & 0o7777) for p in files} == {oct(file_mode)}
    dirs = {root, *holders, *(parent for holder in holders for parent in holder.parents if root in parent.parents)}
    assert {oct(p.stat().st_mode & 0o7777) for p in dirs} == {oct(dir_mode)}
