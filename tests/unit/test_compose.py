"""Static checks of the Docker deployment: docker-compose.yml, Dockerfile, .env files.

No Docker engine is needed. The compose file is parsed with ``yaml.safe_load``
(which resolves the ``x-airflow-common`` merge keys but keeps ``${...}``
substitutions as written); ``docker-compose config`` validates it when the
``docker-compose`` binary is installed (Debian package ``docker-compose``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
GENERATE_ENV = ROOT / "scripts" / "generate_env.py"

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
}
#: One-shot helpers: they exit, so they have no healthcheck; others wait for
#: them with ``condition: service_completed_successfully``.
ONE_SHOT_SERVICES = {"airflow-init", "mongo-keyfile", "mongo-init", "check-secrets"}
#: `daily-mlops serve`: HTTP serving of the deployed model, from the same image.
MODEL_SERVER = "model-server"
#: The optional GPU Celery worker (compose profile ``gpu``); absent from a plain ``docker compose up``.
GPU_WORKER = "airflow-worker-gpu"
EXPECTED_SERVICES = AIRFLOW_SERVICES | {
    MODEL_SERVER,
    GPU_WORKER,
    "postgres",
    "redis",
    "mongo",
    "mongo-keyfile",
    "mongo-init",
    "check-secrets",
}
#: The only services that may see the MongoDB root credentials.
MONGO_ROOT_SERVICES = {"mongo", "mongo-init", "check-secrets"}

#: Environment keys whose values are treated as secrets.
SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|FERNET|KEY|TOKEN|CONN|URI")
#: Keys that match SECRET_KEY_RE but hold no secret (a connection *id*).
NOT_SECRET_KEYS = {"MLOPS_MONGO_CONN_ID"}
#: A substitution that cannot fall back to a literal: ${NAME}, ${NAME?msg}, ${NAME:?msg}.
STRICT_SUBST = r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}"
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?")

JWT_KEY = "AIRFLOW__API_AUTH__JWT_SECRET"
PLACEHOLDER = "change-me"
#: Secrets added with the least-privilege work (app user of MongoDB, Redis password).
NEW_SECRETS = ("MONGO_APP_PASSWORD", "REDIS_PASSWORD")
SUBST_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@lru_cache(maxsize=1)
def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _env(service: str) -> dict[str, str]:
    env = _services()[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _healthcheck_text(service: str) -> str:
    test = _services()[service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _mount_target(volume: str) -> str:
    """Container path of a short-syntax volume ``source:target[:mode]``."""
    parts = volume.split(":")
    return parts[-2] if parts[-1] in ("ro", "rw") else parts[-1]


def _load_generate_env():
    spec = importlib.util.spec_from_file_location("generate_env", GENERATE_ENV)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _secret_violations(env: dict[str, str]) -> list[str]:
    """Secret-looking keys whose value could carry a literal secret."""
    problems = []
    for key, value in env.items():
        # Hide substitutions (they may contain ':' or '@') before splitting a URL.
        found: list[str] = []
        masked = re.sub(r"\$\{[^}]*\}", lambda m, found=found: found.append(m[0]) or f"<{len(found) - 1}>", value)
        url = URL_RE.match(masked)
        if url and url["password"] is not None:
            password = re.sub(r"<(\d+)>", lambda m, found=found: found[int(m[1])], url["password"])
            if not re.fullmatch(STRICT_SUBST, password):
                problems.append(f"{key}: password in URL is not a ${{...}} substitution")
            continue
        if url or key in NOT_SECRET_KEYS or not SECRET_KEY_RE.search(key):
            continue
        if not re.fullmatch(f"(?:{STRICT_SUBST})+", value):
            problems.append(f"{key}: {value!r} is not built only from ${{...}} substitutions")
    return problems


def _required_variables() -> set[str]:
    """Variables the compose file substitutes without a ``:-`` default."""
    text = COMPOSE_FILE.read_text(encoding="utf-8").replace("$$", "")
    found = set()
    for name, op in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?", text):
        if op not in (":-", "-"):
            found.add(name)
    return found


def _interpolate(text: str, values: dict[str, str]) -> str:
    """Substitute like docker compose: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?msg}``; ``$$`` -> ``$``.

    A variable without a default that ``values`` lacks raises ``KeyError``.
    """

    def one(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = values.get(name)
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        if value is None or (op == ":?" and value == ""):
            raise KeyError(name)
        return value

    return "$".join(SUBST_RE.sub(one, part) for part in text.split("$$"))


def _shell_script(text: str) -> str:
    """A command string as the container's shell receives it; it must use no compose variable."""
    return _interpolate(text, {})


def _env_file(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text, re.M))


def _placeholder_keys() -> set[str]:
    """Variables that .env.example leaves as the ``change-me`` placeholder (the secrets)."""
    return {k for k, v in _env_file(ENV_EXAMPLE.read_text(encoding="utf-8")).items() if v == PLACEHOLDER}


def _referenced(value: str) -> set[str]:
    """Names of the compose variables a value substitutes (``$$`` escapes excluded)."""
    return {m["name"] for part in value.split("$$") for m in SUBST_RE.finditer(part)}


def _url_parts(value: str) -> tuple[str, str]:
    """(user, password) of a URL whose credentials are ${...} substitutions."""
    found: list[str] = []
    masked = re.sub(r"\$\{[^}]*\}", lambda m, found=found: found.append(m[0]) or f"<{len(found) - 1}>", value)
    url = URL_RE.match(masked)
    assert url and url["password"] is not None, value

    def unmask(text: str) -> str:
        return re.sub(r"<(\d+)>", lambda m: found[int(m[1])], text)

    return unmask(url["user"]), unmask(url["password"])


def _run_check_secrets(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the check-secrets service's own script with POSIX ``sh`` and only ``env`` (plus PATH)."""
    svc = _services()["check-secrets"]
    assert svc["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = svc["command"]
    return subprocess.run(
        ["sh", "-c", _shell_script(script)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _check_secrets_env(values: dict[str, str]) -> dict[str, str]:
    """The check-secrets container's environment for the .env ``values``."""
    return {k: _interpolate(v, values) for k, v in _env("check-secrets").items()}


def _clean_environ() -> dict[str, str]:
    """The current environment without anything that could satisfy a substitution."""
    names = _required_variables() | {"COMPOSE_FILE", "COMPOSE_PROJECT_NAME"}
    return {k: v for k, v in os.environ.items() if k not in names}


# --------------------------------------------------------------------------- compose


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_config_validates(tmp_path):
    """`docker-compose config -q` accepts the file with a .env generated from .env.example."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(_load_generate_env().render(ENV_EXAMPLE.read_text(encoding="utf-8")))
    result = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=_clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_config_refuses_missing_secret(tmp_path):
    """Without the JWT secret in .env, `docker-compose config` fails and names the variable."""
    rendered = _load_generate_env().render(ENV_EXAMPLE.read_text(encoding="utf-8"))
    kept = [line for line in rendered.splitlines() if not line.startswith(f"{JWT_KEY}=")]
    env_file = tmp_path / "compose.env"
    env_file.write_text("\n".join(kept) + "\n")
    result = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=_clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert JWT_KEY in result.stderr


def test_service_set_is_exact():
    """The stack has exactly the Airflow components, postgres, redis, mongo and the keyfile helper."""
    assert set(_services()) == EXPECTED_SERVICES


def test_airflow_components_share_the_built_image():
    """Every Airflow component and the model server are built from ./Dockerfile (and nothing else is)."""
    built = {name for name, svc in _services().items() if "build" in svc}
    assert built == AIRFLOW_SERVICES | {MODEL_SERVER, GPU_WORKER}
    for name in built - {GPU_WORKER}:
        assert _services()[name]["build"] in (".", {"context": "."}), name
    # The GPU worker: the same Dockerfile, torch from a CUDA wheel index.
    gpu_build = _services()[GPU_WORKER]["build"]
    assert gpu_build["context"] == "." and set(gpu_build["args"]) == {"TORCH_INDEX_URL"}
    assert _services()[MODEL_SERVER]["image"] == _compose()["x-airflow-common"]["image"]


def test_model_server_serves_the_deployment_read_only():
    """model-server runs `daily-mlops serve --host 0.0.0.0` on the models volume mounted read-only, without secrets."""
    svc = _services()[MODEL_SERVER]
    common = _compose()["x-airflow-common"]
    assert svc["entrypoint"][-1] == "daily-mlops"  # not the image's /entrypoint, which would prefix `airflow`
    assert svc["command"][:3] == ["serve", "--host", "0.0.0.0"]
    port = svc["command"][svc["command"].index("--port") + 1]
    models = next(v for v in common["volumes"] if _mount_target(v) == "/opt/airflow/mlops/models")
    assert svc["volumes"] == [f"{models}:ro"]  # the same volume the deployment task writes, read-only
    env = _env(MODEL_SERVER)
    assert env["MLOPS_DEPLOYMENT_DIR"] == common["environment"]["MLOPS_DEPLOYMENT_DIR"]
    assert env["MLOPS_DEPLOYMENT_DIR"].removeprefix("${MLOPS_DEPLOYMENT_DIR:-").startswith("/opt/airflow/mlops/models/")
    assert not any(SECRET_KEY_RE.search(key) for key in env), env  # no database, no secret
    assert svc["ports"] == [f"127.0.0.1:${{MODEL_SERVER_HOST_PORT:-8000}}:{port}"]
    assert f"localhost:{port}/health" in _healthcheck_text(MODEL_SERVER)
    assert svc["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    assert svc["user"] == common["user"]


def test_airflow_commands():
    """Each component runs its Airflow 3 command (api-server replaced the webserver)."""
    commands = {name: _services()[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }
    assert _services()["airflow-apiserver"]["ports"] == ["${AIRFLOW_API_HOST_PORT:-8080}:8080"]


def test_training_queue_and_optional_gpu_worker(tmp_path):
    """MLOPS_TRAINING_QUEUE (default `default`) reaches every Airflow component; the `gpu` profile adds a
    Celery worker that listens only on that queue, trains on CUDA and reserves NVIDIA GPUs; the file
    validates with and without the profile, and the rendered worker listens on the queue set in the shell."""
    for name in AIRFLOW_SERVICES | {GPU_WORKER}:
        assert _env(name)["MLOPS_TRAINING_QUEUE"] == "${MLOPS_TRAINING_QUEUE:-default}", name
    gpu, worker = _services()[GPU_WORKER], _services()["airflow-worker"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"] == "celery worker --queues ${MLOPS_TRAINING_QUEUE:-default}"
    assert worker["command"] == "celery worker" and "profiles" not in worker
    assert _env(GPU_WORKER)["MLOPS_DEVICE"] == "cuda"
    assert "MLOPS_DEVICE" not in _env("airflow-worker")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert {k: v for k, v in _env(GPU_WORKER).items() if k != "MLOPS_DEVICE"} == _env("airflow-worker")
    assert gpu["depends_on"] == worker["depends_on"]
    assert gpu["image"] != worker["image"]
    for key in ("container_name", "hostname", "ports"):
        assert key not in gpu, key
    if shutil.which("docker-compose") is None:
        return
    env_file = tmp_path / "compose.env"
    env_file.write_text(_load_generate_env().render(ENV_EXAMPLE.read_text(encoding="utf-8")))
    rendered = {}
    for profile in ([], ["--profile", "gpu"]):
        result = subprocess.run(
            ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *profile, "config"],
            cwd=ROOT, env={**_clean_environ(), "MLOPS_TRAINING_QUEUE": "gpu"}, capture_output=True, text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        rendered[bool(profile)] = yaml.safe_load(result.stdout)["services"]
    for services in rendered.values():  # docker-compose 1.29 renders every service; `up` honours profiles
        assert services[GPU_WORKER]["profiles"] == ["gpu"]
        assert services[GPU_WORKER]["command"] in (
            "celery worker --queues gpu", ["celery", "worker", "--queues", "gpu"])
        assert services[GPU_WORKER]["environment"]["MLOPS_DEVICE"] == "cuda"
    assert rendered[True]["airflow-scheduler"]["environment"]["MLOPS_TRAINING_QUEUE"] == "gpu"


def test_mongo_is_authenticated_replica_set():
    """mongo:7 runs mongod with --replSet and --keyFile, and gets root credentials from .env."""
    mongo = _services()["mongo"]
    assert mongo["image"] == "mongo:7"
    command = mongo["command"]
    assert command[0] == "mongod"
    assert command[command.index("--replSet") + 1] == "rs0"
    keyfile = command[command.index("--keyFile") + 1]
    assert "--bind_ip_all" in command
    env = _env("mongo")
    assert env["MONGO_INITDB_ROOT_USERNAME"].startswith("${MONGO_ROOT_USERNAME")
    assert env["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_ROOT_PASSWORD")
    # The keyfile comes from the one-shot helper through a shared volume.
    keyfile_dir = str(Path(keyfile).parent)
    mounts = {m.split(":")[0]: m.split(":")[1] for m in mongo["volumes"]}
    volume = next(src for src, dst in mounts.items() if dst == keyfile_dir)
    helper = _services()["mongo-keyfile"]
    assert any(m.split(":")[:2] == [volume, keyfile_dir] for m in helper["volumes"])
    script = " ".join(helper["command"])
    assert "chmod 400" in script and "chown 999:999" in script
    assert mongo["depends_on"] == {
        "check-secrets": {"condition": "service_completed_successfully"},
        "mongo-keyfile": {"condition": "service_completed_successfully"},
    }


def test_mongo_healthcheck_initiates_and_requires_primary():
    """The mongo healthcheck authenticates, initiates rs0 once and passes only on a PRIMARY."""
    text = _healthcheck_text("mongo")
    assert text.startswith("CMD-SHELL mongosh")
    assert "$${MONGO_INITDB_ROOT_USERNAME}" in text and "$${MONGO_INITDB_ROOT_PASSWORD}" in text
    assert "--authenticationDatabase admin" in text
    assert 'rs.initiate({_id: "rs0"' in text and 'host: "mongo:27017"' in text
    assert "NotYetInitialized" in text  # initiate only when not yet initiated
    assert "myState" in text and "state === 1" in text  # 1 = PRIMARY
    assert "isWritablePrimary" in text


def _run_mongo_init(tmp_path, values: dict[str, str], existing_users: list[str]) -> tuple[int, list, str]:
    """Run mongo-init's mongosh script under Node with a recording stand-in for ``db``.

    The container environment is mongo-init's ``environment`` with ``values``
    substituted. Returns (exit code, recorded calls, stdout).
    """
    svc = _services()["mongo-init"]
    assert svc["image"] == "mongo:7"
    assert svc["entrypoint"][0] == "mongosh" and svc["entrypoint"][-1] == "--eval"
    (script,) = svc["command"]
    harness = textwrap.dedent(
        """
        const __calls = [];
        const __existing = JSON.parse(process.env.__EXISTING_USERS);
        globalThis.print = (...a) => console.log(...a);
        globalThis.quit = (code) => { console.log("CALLS " + JSON.stringify(__calls)); process.exit(code); };
        globalThis.db = { getSiblingDB: (dbName) => ({
          getName: () => dbName,
          auth: (u, p) => { __calls.push(["auth", dbName, u, p]); return { ok: 1 }; },
          getUser: (u) => (__existing.includes(dbName + "." + u) ? { user: u, db: dbName } : null),
          createUser: (doc) => { __calls.push(["createUser", dbName, doc]); },
          updateUser: (u, doc) => { __calls.push(["updateUser", dbName, u, doc]); },
        }) };
        """
    )
    program = tmp_path / "mongo_init.js"
    program.write_text(harness + "{\n" + _shell_script(script) + "\n}\nquit(0);\n")
    env = {k: _interpolate(v, values) for k, v in _env("mongo-init").items()}
    env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "__EXISTING_USERS": json.dumps(existing_users)}
    result = subprocess.run(["node", str(program)], env=env, capture_output=True, text=True, timeout=60)
    calls_line = [line for line in result.stdout.splitlines() if line.startswith("CALLS ")]
    assert calls_line, result.stderr
    return result.returncode, json.loads(calls_line[-1][len("CALLS "):]), result.stdout


MONGO_VALUES = {
    "MONGO_ROOT_USERNAME": "mlops_root",
    "MONGO_ROOT_PASSWORD": "root-pw_1",
    "MONGO_APP_USERNAME": "mlops_app",
    "MONGO_APP_PASSWORD": "app-pw_2",
}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_mongo_init_creates_app_user_with_readwrite_on_project_db_only(tmp_path):
    """mongo-init logs in as root (admin), creates the app user: readWrite on mlops and nothing else."""
    code, calls, out = _run_mongo_init(tmp_path, MONGO_VALUES, existing_users=[])
    assert code == 0, out
    assert calls == [
        ["auth", "admin", "mlops_root", "root-pw_1"],
        [
            "createUser",
            "mlops",
            {"user": "mlops_app", "pwd": "app-pw_2", "roles": [{"role": "readWrite", "db": "mlops"}]},
        ],
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_mongo_init_resets_an_existing_app_user(tmp_path):
    """On a later start (user exists, e.g. MLOPS_MONGO_DB=scoring) the password is updated and roles reset."""
    values = {**MONGO_VALUES, "MLOPS_MONGO_DB": "scoring"}
    code, calls, out = _run_mongo_init(tmp_path, values, existing_users=["scoring.mlops_app"])
    assert code == 0, out
    assert calls[1:] == [
        [
            "updateUser",
            "scoring",
            "mlops_app",
            {"pwd": "app-pw_2", "roles": [{"role": "readWrite", "db": "scoring"}]},
        ]
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_mongo_init_refuses_a_system_database(tmp_path):
    """MLOPS_MONGO_DB=admin (a system database) makes mongo-init exit 1 without creating a user."""
    values = {**MONGO_VALUES, "MLOPS_MONGO_DB": "admin"}
    code, calls, out = _run_mongo_init(tmp_path, values, existing_users=[])
    assert code == 1
    assert [c[0] for c in calls] == ["auth"]
    assert "MLOPS_MONGO_DB" in out


def test_mongo_init_is_wired_like_the_airflow_connection():
    """mongo-init runs as non-root after mongo is healthy and creates the user/DB the Airflow URIs name."""
    svc = _services()["mongo-init"]
    assert svc["user"] != "0:0" and svc.get("restart") == "no"
    assert svc["entrypoint"][svc["entrypoint"].index("--host") + 1] == "mongo"
    env = _env("mongo-init")
    assert env["MLOPS_MONGO_DB"] == _env("airflow-worker")["MLOPS_MONGO_DB"] == "${MLOPS_MONGO_DB:-mlops}"
    for key in ("MONGO_ROOT_USERNAME", "MONGO_ROOT_PASSWORD", "MONGO_APP_USERNAME", "MONGO_APP_PASSWORD"):
        assert env[key].startswith("${" + key + ":?"), key
    user, password = _url_parts(_env("airflow-worker")["AIRFLOW_CONN_MONGO_DEFAULT"])
    assert (user, password) == ("${MONGO_APP_USERNAME}", "${MONGO_APP_PASSWORD}")


def test_airflow_components_connect_as_app_user_without_root_credentials():
    """Each Airflow component's Mongo URIs use the app user, authSource = project DB; no root variable."""
    from pymongo.uri_parser import parse_uri

    values = {**MONGO_VALUES, "MLOPS_MONGO_DB": "scoring"}
    for name in AIRFLOW_SERVICES:
        env = _env(name)
        for key in ("AIRFLOW_CONN_MONGO_DEFAULT", "MLOPS_MONGO_URI"):
            assert _url_parts(env[key]) == ("${MONGO_APP_USERNAME}", "${MONGO_APP_PASSWORD}"), (name, key)
            uri = _interpolate(env[key], values).replace("mongo://", "mongodb://", 1)
            parsed = parse_uri(uri)
            assert parsed["username"] == "mlops_app", (name, key)
            assert parsed["options"]["authSource"] == "scoring", (name, key)
            assert parsed["options"]["replicaSet"] == "rs0", (name, key)
        assert _interpolate(env["MLOPS_MONGO_DB"], values) == "scoring"
        referenced = set().union(*(_referenced(v) for v in env.values()))
        assert not {v for v in referenced if v.startswith("MONGO_ROOT")}, name
        assert not [k for k in env if "MONGO_ROOT" in k or "MONGO_INITDB" in k], name
        command = _services()[name].get("command")
        assert "MONGO_ROOT" not in str(command), name
    # Only mongo itself, its init step and the secrets check may see root.
    with_root = {
        name
        for name in _services()
        if any(v.startswith("MONGO_ROOT") for value in _env(name).values() for v in _referenced(value))
    }
    assert with_root == MONGO_ROOT_SERVICES


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_rendered_airflow_environment_has_no_root_password(tmp_path):
    """After `docker-compose config` substitution, no Airflow service carries the Mongo root password."""
    rendered = _load_generate_env().render(ENV_EXAMPLE.read_text(encoding="utf-8"))
    values = _env_file(rendered)
    env_file = tmp_path / "compose.env"
    env_file.write_text(rendered)
    result = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=_clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        dumped = yaml.safe_dump(env)
        assert values["MONGO_ROOT_PASSWORD"] not in dumped, name
        assert values["MONGO_ROOT_USERNAME"] not in dumped, name
        app_login = f"{values['MONGO_APP_USERNAME']}:{values['MONGO_APP_PASSWORD']}@"
        assert app_login in env["AIRFLOW_CONN_MONGO_DEFAULT"], name
        assert f":{values['REDIS_PASSWORD']}@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"]


# --------------------------------------------------------------------------- redis


def _fake_bin(tmp_path: Path, name: str, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(0o755)
    return bin_dir


def test_redis_requires_password_and_broker_url_carries_it(tmp_path):
    """redis-server gets --requirepass $REDIS_PASSWORD (via the image entrypoint); every broker URL has it."""
    redis = _services()["redis"]
    assert _env("redis")["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    shell, flag, script = redis["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    bin_dir = _fake_bin(tmp_path, "docker-entrypoint.sh", 'printf "%s\\n" "$@"\n')
    result = subprocess.run(
        ["sh", "-c", _shell_script(script)],
        env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "REDIS_PASSWORD": "r3dis_pw-x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["redis-server", "--requirepass", "r3dis_pw-x"]
    for name in AIRFLOW_SERVICES:
        broker = _env(name)["AIRFLOW__CELERY__BROKER_URL"]
        assert _url_parts(broker) == ("", "${REDIS_PASSWORD}"), name
        assert broker.endswith("@redis:6379/0"), name


@pytest.mark.parametrize(
    ("password", "healthy"), [("r3dis_pw-x", True), ("wrong", False), ("", False)]
)
def test_redis_healthcheck_authenticates(tmp_path, password, healthy):
    """The healthcheck passes only when redis answers PONG to REDISCLI_AUTH=$REDIS_PASSWORD (NOAUTH fails)."""
    test = _services()["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    # Like redis-cli: an error reply (NOAUTH) is printed but still exits 0.
    bin_dir = _fake_bin(
        tmp_path,
        "redis-cli",
        '[ "$1" = ping ] || exit 2\n'
        'if [ "${REDISCLI_AUTH:-}" = r3dis_pw-x ]; then echo PONG; '
        "else echo 'NOAUTH Authentication required.'; fi\n",
    )
    result = subprocess.run(
        ["sh", "-c", _shell_script(test[1])],
        env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "REDIS_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode == 0) is healthy, (result.stdout, result.stderr)


# --------------------------------------------------------------------------- check-secrets


def test_check_secrets_refuses_placeholders_and_names_them():
    """The check-secrets script exits non-zero and names every variable still equal to change-me."""
    env = {key: f"real-{key.lower()}" for key in _env("check-secrets")}
    env["MONGO_APP_PASSWORD"] = PLACEHOLDER
    env["REDIS_PASSWORD"] = PLACEHOLDER
    result = _run_check_secrets(env)
    assert result.returncode != 0
    named = set(re.findall(r"check-secrets: ([A-Za-z_][A-Za-z0-9_]*) still holds", result.stderr))
    assert named == {"MONGO_APP_PASSWORD", "REDIS_PASSWORD"}, result.stderr
    assert "make env" in result.stderr


def test_check_secrets_accepts_real_values():
    """With no value equal to change-me (even ones containing it) the check exits 0."""
    env = {key: f"real-{key.lower()}" for key in _env("check-secrets")}
    env["POSTGRES_PASSWORD"] = "change-me-not"
    env["REDIS_PASSWORD"] = "xchange-me"
    result = _run_check_secrets(env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_check_secrets_on_env_example_and_generated_env():
    """.env.example as-is is refused with each placeholder secret named; a generate_env.py .env passes."""
    example = _env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))
    refused = _run_check_secrets(_check_secrets_env(example))
    assert refused.returncode != 0
    named = set(re.findall(r"check-secrets: ([A-Za-z_][A-Za-z0-9_]*) still holds", refused.stderr))
    assert named == _placeholder_keys()
    generated = _env_file(_load_generate_env().render(ENV_EXAMPLE.read_text(encoding="utf-8")))
    accepted = _run_check_secrets(_check_secrets_env(generated))
    assert accepted.returncode == 0, accepted.stderr


def test_check_secrets_covers_every_secret_and_runs_first():
    """check-secrets sees every change-me variable of .env.example; every other service waits for it."""
    services = _services()
    check = services["check-secrets"]
    env = _env("check-secrets")
    assert set(env) == _placeholder_keys()
    assert set(NEW_SECRETS) <= set(env)
    for key, value in env.items():
        assert value.startswith("${" + key + ":?"), key
    assert check.get("depends_on") is None
    assert check["network_mode"] == "none"
    assert check["user"] not in ("0", "0:0", "root")
    assert check["image"] in {svc.get("image") for name, svc in services.items() if name != "check-secrets"}
    for name, svc in services.items():
        if name != "check-secrets":
            assert svc["depends_on"]["check-secrets"] == {"condition": "service_completed_successfully"}, name


def test_long_running_services_have_healthchecks():
    """Every service except the one-shot helpers has a healthcheck and a restart policy."""
    for name, svc in _services().items():
        if name in ONE_SHOT_SERVICES:
            assert "healthcheck" not in svc, name
            assert svc.get("restart", "no") == "no", name
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert svc.get("restart") == "always", name


def test_depends_on_waits_for_health():
    """depends_on uses conditions: healthy for long-running services, completed for one-shots."""
    services = _services()
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must carry conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in ONE_SHOT_SERVICES else "service_healthy"
            assert spec == {"condition": expected}, f"{name} -> {dep}"
    for name in AIRFLOW_SERVICES:
        assert {"postgres", "redis"} <= set(services[name]["depends_on"]), name
    # Tasks run on workers: they wait until mongo-init has created the app user.
    assert "mongo-init" in services["airflow-worker"]["depends_on"]
    assert services["mongo-init"]["depends_on"]["mongo"] == {"condition": "service_healthy"}


def test_airflow_core_settings():
    """CeleryExecutor, no examples, read-only DAGs folder, execution API URL and MLOPS_* settings."""
    for name in AIRFLOW_SERVICES:
        env = _env(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["MLOPS_HOME"] == "/opt/airflow/mlops", name
        assert env["MLOPS_MONGO_DB"] == "${MLOPS_MONGO_DB:-mlops}", name
        assert env["MLOPS_DEPLOYMENT_DIR"] == "${MLOPS_DEPLOYMENT_DIR:-/opt/airflow/mlops/models/deployed}"
        volumes = _services()[name]["volumes"]
        assert "${AIRFLOW_PROJ_DIR:-.}/dags:/opt/airflow/dags:ro" in volumes, name
        targets = {_mount_target(v) for v in volumes}
        assert {"/opt/airflow/mlops/models", "/opt/airflow/mlops/data", "/opt/airflow/logs"} <= targets


def test_mongo_default_connection_uri_is_right_for_mongohook():
    """AIRFLOW_CONN_MONGO_DEFAULT: mongo:// scheme (MongoHook rejects mongodb://), rs0, the app user."""
    uri = _env("airflow-worker")["AIRFLOW_CONN_MONGO_DEFAULT"]
    assert uri == (
        "mongo://${MONGO_APP_USERNAME}:${MONGO_APP_PASSWORD}@mongo:27017/${MLOPS_MONGO_DB:-mlops}"
        "?authSource=${MLOPS_MONGO_DB:-mlops}&replicaSet=rs0"
    )
    for name in AIRFLOW_SERVICES:
        assert _env(name)["AIRFLOW_CONN_MONGO_DEFAULT"] == uri, name


def test_mongo_default_connection_builds_a_mongohook(tmp_path):
    """The connection URI, with sample values substituted, gives MongoHook the app user on rs0 via mlops."""
    uri = _env("airflow-worker")["AIRFLOW_CONN_MONGO_DEFAULT"]
    uri = _interpolate(uri, {"MONGO_APP_USERNAME": "mlops_app", "MONGO_APP_PASSWORD": "pw-123_x"})
    probe = textwrap.dedent(
        """
        from airflow.providers.mongo.hooks.mongo import MongoHook
        hook = MongoHook(mongo_conn_id="mongo_default")
        creds = hook.get_conn().options.pool_options._credentials
        print(hook.connection.conn_type, hook.uri, sorted(hook.extras.items()), creds.source, creds.username)
        """
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONN_MONGO_DEFAULT": uri}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == (
        "mongo mongodb://mlops_app:pw-123_x@mongo:27017/mlops "
        "[('authSource', 'mlops'), ('replicaSet', 'rs0')] mlops mlops_app"
    )


def test_no_inline_secrets():
    """Secret-looking environment values are ${...} substitutions without literal defaults."""
    problems = {name: _secret_violations(_env(name)) for name in _services()}
    assert {name: p for name, p in problems.items() if p} == {}
    # Comments may mention the placeholder, and check-secrets compares with it;
    # nothing else in the parsed file may use it (e.g. as a ${VAR:-change-me} default).
    others = {name: svc for name, svc in _services().items() if name != "check-secrets"}
    assert PLACEHOLDER not in yaml.safe_dump(others)
    assert PLACEHOLDER not in yaml.safe_dump(_env("check-secrets"))
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in yaml.safe_dump(_compose())


def test_secret_checker_catches_inline_values():
    """The checker used above flags literals, literal defaults and literal URL passwords."""
    bad = {
        "AIRFLOW__CORE__FERNET_KEY": "''",
        "AIRFLOW__API_AUTH__JWT_SECRET": "${AIRFLOW__API_AUTH__JWT_SECRET:-airflow_jwt_secret}",
        "POSTGRES_PASSWORD": "airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:airflow@postgres/airflow",
    }
    assert len(_secret_violations(bad)) == len(bad)
    good = {
        "AIRFLOW__CORE__FERNET_KEY": "${AIRFLOW__CORE__FERNET_KEY:?set it}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://${U:-airflow}:${P}@postgres/airflow",
        "AIRFLOW__CELERY__BROKER_URL": "redis://redis:6379/0",
    }
    assert _secret_violations(good) == []


def test_worker_is_scalable():
    """airflow-worker has no container_name, hostname or host ports, so --scale works."""
    worker = _services()["airflow-worker"]
    assert "container_name" not in worker
    assert "hostname" not in worker
    assert "ports" not in worker
    for name, svc in _services().items():
        assert "container_name" not in svc, name


def test_jwt_secret_is_shared_by_all_airflow_components():
    """Every Airflow component gets the same JWT secret (and Fernet key) reference from .env."""
    for key in (JWT_KEY, "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
        common = _compose()["x-airflow-common"]["environment"][key]
        assert common.startswith("${" + key + ":?"), key
        values = {name: _env(name).get(key) for name in AIRFLOW_SERVICES}
        assert values == {name: common for name in AIRFLOW_SERVICES}, key


def test_required_variables_are_in_env_example():
    """Every variable the compose file needs without a default is listed in .env.example."""
    example = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert _required_variables() <= example
    assert {
        JWT_KEY,
        "AIRFLOW__CORE__FERNET_KEY",
        "POSTGRES_PASSWORD",
        "MONGO_ROOT_PASSWORD",
        "MONGO_APP_USERNAME",
        *NEW_SECRETS,
    } <= _required_variables()


# --------------------------------------------------------------------------- image


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_from_airflow_33():
    """The image is built FROM apache/airflow:3.3.x (one stage)."""
    froms = [rest for word, rest in _dockerfile_instructions() if word == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"apache/airflow:3\.3\.\d+(-python3\.1[12])?", froms[0])


def test_dockerfile_installs_cpu_torch_then_project_as_airflow():
    """torch comes from the CPU index before the project install; pip runs as the airflow user."""
    steps = _dockerfile_instructions()
    runs = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "RUN"]
    torch_step = next(i for i, rest in runs if "torch==" in rest and "pip install" in rest)
    assert "--index-url" in steps[torch_step][1] and "${TORCH_INDEX_URL}" in steps[torch_step][1]
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in steps
    assert ("ARG", "TORCH_VERSION=2.13.0") in steps
    project_step = next(i for i, rest in runs if "/opt/airflow/daily-mlops" in rest and "pip install" in rest)
    assert torch_step < project_step
    for i, rest in runs:
        if "pip install" in rest:
            assert "--no-cache-dir" in rest
            users = [r for word, r in steps[:i] if word == "USER"]
            assert users and users[-1] == "airflow", f"pip install runs as {users[-1:]}"
    copied = " ".join(rest for word, rest in steps if word == "COPY")
    for path in ("pyproject.toml", "README.md", "src", "dags", "data/reference"):
        assert re.search(rf"(^|\s){re.escape(path)}(\s|$)", copied), path
    assert not any("_PIP_ADDITIONAL_REQUIREMENTS" in rest for _, rest in steps)


def test_dockerignore_is_an_allow_list_without_env():
    """.dockerignore excludes everything first and never re-includes .env, .git or .venv."""
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "README.md", "src", "dags", "data/reference"} <= allowed
    assert not allowed & {".env", ".git", ".venv", "models", "data"}


# --------------------------------------------------------------------------- .env


def test_generate_env_writes_private_random_values(tmp_path):
    """generate_env.py fills every change-me with random values, a valid Fernet key, mode 0600."""
    from cryptography.fernet import Fernet

    target = tmp_path / ".env"
    cmd = [sys.executable, str(GENERATE_ENV), "--output", str(target), "--airflow-uid", "1234"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1) for line in target.read_text().splitlines() if line and not line.startswith("#")
    )
    assert "change-me" not in values.values()
    assert values["AIRFLOW_UID"] == "1234"
    Fernet(values["AIRFLOW__CORE__FERNET_KEY"].encode())  # raises if not a Fernet key
    url_safe = (JWT_KEY, "AIRFLOW__API__SECRET_KEY", "POSTGRES_PASSWORD", "MONGO_ROOT_PASSWORD", *NEW_SECRETS)
    for key in url_safe:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", values[key]), key
    example = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert set(values) == example

    second = tmp_path / "second.env"
    subprocess.run([sys.executable, str(GENERATE_ENV), "--output", str(second)], check=True, timeout=60)
    other = dict(line.split("=", 1) for line in second.read_text().splitlines() if "=" in line and line[0] != "#")
    assert other[JWT_KEY] != values[JWT_KEY]


def test_generate_env_fills_the_new_secrets():
    """render() leaves no change-me and writes URL-safe random Mongo app and Redis passwords."""
    module = _load_generate_env()
    template = ENV_EXAMPLE.read_text(encoding="utf-8")
    first, second = _env_file(module.render(template)), _env_file(module.render(template))
    assert PLACEHOLDER not in first.values()
    assert set(NEW_SECRETS) <= set(module.GENERATORS)
    for key in NEW_SECRETS:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", first[key]), key
        assert first[key] != second[key], key
    assert first["MONGO_APP_PASSWORD"] != first["MONGO_ROOT_PASSWORD"]
    assert first["MONGO_APP_USERNAME"] == "mlops_app" != first["MONGO_ROOT_USERNAME"]


def test_generate_env_refuses_to_overwrite_without_force(tmp_path):
    """An existing .env is kept unless --force is given; --force rewrites it with mode 0600."""
    target = tmp_path / ".env"
    target.write_text("KEEP=me\n")
    target.chmod(0o644)
    cmd = [sys.executable, str(GENERATE_ENV), "--output", str(target)]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "--force" in refused.stderr
    assert target.read_text() == "KEEP=me\n"
    forced = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr
    assert "KEEP=me" not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_env_example_has_only_placeholders_for_secrets():
    """.env.example holds `change-me` for every secret and AIRFLOW_UID=50000."""
    values = dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    assert values["AIRFLOW_UID"] == "50000"
    secrets_ = {k for k in values if SECRET_KEY_RE.search(k)}
    assert secrets_ >= {JWT_KEY, "AIRFLOW__CORE__FERNET_KEY", "_AIRFLOW_WWW_USER_PASSWORD"}
    assert {k: values[k] for k in secrets_} == {k: "change-me" for k in secrets_}
