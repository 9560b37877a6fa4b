"""Postgres and Redis from Debian's packages, as unprivileged processes on private ports and directories.

``daily-mlops stack`` (:mod:`daily_mlops.orchestration.stack`) runs the
docker-compose topology without Docker; these are its two backing services:

* **Postgres** (Debian ``postgresql``, version 15 on bookworm): a new cluster
  made by ``initdb`` with password authentication (``scram-sha-256``) in a
  private directory, started and stopped with ``pg_ctl``, listening on
  127.0.0.1 and a socket in that directory only; then ``createdb``. The
  database superuser is ``POSTGRES_USER``, as in the ``postgres`` image.
* **Redis** (Debian ``redis-server``, 7.x): ``redis-server`` with a
  ``requirepass`` in a mode-0600 config file (not on the command line), bound
  to 127.0.0.1, no persistence.

Both run as the invoking user, or, when that is root (Postgres refuses to run
as root), as the packages' own system users ``postgres`` and ``redis``. Their
directories are new temporary ones (``mkdtemp``), removed on exit: the stack
generates its secrets at each start, so a kept cluster could not be reopened
with them. :func:`ensure_packages` installs the packages with ``apt-get`` when
they are missing and this process is root, as ``.ci/run`` does for
``docker-compose``, with a ``policy-rc.d`` that keeps the packages from starting
their system services.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daily_mlops.errors import ConfigError, MLOpsError
from daily_mlops.orchestration.readiness import log_tail

__all__ = ["DEBIAN_PACKAGES", "ServiceAddress", "ensure_packages", "postgres_server", "redis_server"]

#: Debian packages that provide the two services (``apt-get install``).
DEBIAN_PACKAGES = ("postgresql", "redis-server")


@dataclass(frozen=True)
class ServiceAddress:
    """Where a backing service listens: ``host``, TCP ``port``, its private ``directory`` and ``log_path``."""

    host: str
    port: int
    directory: Path
    log_path: Path


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl`` (Debian layout), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def ensure_packages(say=lambda message: None) -> None:
    """Install :data:`DEBIAN_PACKAGES` with ``apt-get`` when Postgres or Redis is missing.

    Raises
    ------
    ConfigError
        When a package is missing and this process is not root (the message
        names the ``apt-get`` command to run), or ``apt-get`` fails.
    """
    missing = []
    if postgres_bindir() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not missing:
        return
    command = f"apt-get install -y {' '.join(missing)}"
    if os.geteuid() != 0:
        raise ConfigError(f"{', '.join(missing)} not installed; run `sudo apt-get update && sudo {command}`")
    say(f"installing {', '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The packages' maintainer scripts would start system services (a `main` cluster on 5432, redis on 6379);
    # a policy-rc.d that answers 101 ("action forbidden", invoke-rc.d's interface) keeps them stopped.
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\n# written by daily-mlops stack during apt-get install\nexit 101\n")
        policy.chmod(0o755)
    try:
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            done = subprocess.run(step, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise ConfigError(f"`{' '.join(step)}` failed ({done.returncode}):\n{done.stderr[-2000:]}")
    finally:
        if created:
            policy.unlink(missing_ok=True)


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The system user to run as when we are root (``postgres`` / ``redis``); None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"running as root, but the system user {name!r} of the Debian package does not exist; "
                          f"reinstall it (`apt-get install --reinstall {name}`) or run as an unprivileged user"
                          ) from None


def _private_dir(prefix: str, owner: pwd.struct_passwd | None) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))  # mode 0700
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    return directory


def _run_as(owner: pwd.struct_passwd | None) -> dict:
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def postgres_server(*, user: str, password: str, database: str, port: int,
                    startup_timeout: float = 60.0) -> Iterator[ServiceAddress]:
    """Run a new Postgres cluster on ``127.0.0.1:port`` with ``database`` owned by ``user``; remove it on exit.

    Parameters
    ----------
    user, password : str
        Superuser of the cluster (``initdb -U``), password-authenticated (scram-sha-256).
    database : str
        Created with ``createdb`` once the server accepts connections.
    port : int
        TCP port on 127.0.0.1.
    startup_timeout : float
        Seconds ``pg_ctl start -w`` may wait.

    Yields
    ------
    ServiceAddress

    Raises
    ------
    ConfigError
        When Postgres is not installed (see :func:`ensure_packages`).
    MLOpsError
        When ``initdb``, ``pg_ctl start`` or ``createdb`` fails (output included).
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise ConfigError("Postgres is not installed; run `apt-get install -y postgresql`")
    owner = _service_user("postgres")
    root = _private_dir("daily-mlops-postgres-", owner)
    data, log_path, pwfile = root / "data", root / "postgres.log", root / "pwfile"
    as_owner = _run_as(owner)
    env = {**os.environ, "PGPASSWORD": password, "LC_ALL": "C.UTF-8"}
    try:
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions", "--no-sync"], env, as_owner, "initdb")
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log_path), "-o", options, "-w",
              "-t", str(int(startup_timeout)), "start"], env, as_owner, "pg_ctl start", log_path)
        try:
            _run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
                 env, as_owner, "createdb", log_path)
            yield ServiceAddress("127.0.0.1", port, root, log_path)
        finally:
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], env=env,
                           capture_output=True, **as_owner)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server(*, password: str, port: int, startup_timeout: float = 30.0) -> Iterator[ServiceAddress]:
    """Run ``redis-server`` on ``127.0.0.1:port`` requiring ``password``, without persistence; stop it on exit.

    Raises
    ------
    ConfigError
        When ``redis-server`` is not installed.
    MLOpsError
        When it exits or does not answer ``PING`` within ``startup_timeout`` seconds (its log is included).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError("redis-server is not installed; run `apt-get install -y redis-server`")
    owner = _service_user("redis")
    root = _private_dir("daily-mlops-redis-", owner)
    config, log_path = root / "redis.conf", root / "redis.log"
    try:
        config.write_text("\n".join([
            "bind 127.0.0.1", f"port {port}", f"requirepass {password}", f"dir {root}", f"logfile {log_path}",
            'save ""', "appendonly no", "daemonize no", "protected-mode yes", "",
        ]))
        os.chmod(config, 0o600)
        if owner is not None:
            os.chown(config, owner.pw_uid, owner.pw_gid)
        process = subprocess.Popen([binary, str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, **_run_as(owner))
        try:
            _wait_redis(process, port, password, startup_timeout, log_path)
            yield ServiceAddress("127.0.0.1", port, root, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_redis(process: subprocess.Popen, port: int, password: str, timeout: float, log_path: Path) -> None:
    import redis  # redis-py, a dependency of celery[redis]

    deadline = time.monotonic() + timeout
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)
    while True:
        if process.poll() is not None:
            raise MLOpsError(f"redis-server exited with {process.returncode}; see {log_path}:\n{log_tail(log_path)}")
        try:
            if client.ping():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise MLOpsError(
                f"redis-server did not answer PING on port {port} in {timeout:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.2)


def _run(command: list[str], env: dict, as_owner: dict, what: str, log_path: Path | None = None) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, **as_owner)
    if done.returncode != 0:
        log = f"\n{log_path}:\n{log_tail(log_path)}" if log_path is not None else ""
        raise MLOpsError(f"{what} failed ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}{log}")
