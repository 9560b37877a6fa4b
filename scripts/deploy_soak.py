"""Soak the deployment directory: deploys alternating two versions, a reader process beside them, random SIGKILLs.

Each deploy runs :func:`daily_mlops.loop.deployment.deploy_version` in a child
process; some children are SIGKILLed at a random moment of their deploy and
the deploy is re-run until it succeeds. A reader process calls
:func:`daily_mlops.loop.deployment.load_deployed` in a tight loop the whole
time. A torn read is ``load_deployed`` raising (IntegrityError, NotFoundError
or anything else) after the reader's first successful load, or returning a
bundle whose weights are not the weights of the version it names.

Prints figures, asserts nothing (``tests/faults/test_deploy_soak.py`` is the
quick asserted version)::

    python scripts/deploy_soak.py [--deploys 50] [--kills 15] [--keep-versions 1] [--seed 0] [--mongo-uri URI]

Without ``--mongo-uri`` it starts the embedded SecantusDB server in a temporary
directory. ``--keep-versions 1`` (the default here) prunes the previous version
directory at every deploy, so every deploy rewrites a version directory while
the reader may still be reading the old one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BASE_DAY = dt.date(2027, 1, 1)
VERSIONS = (1, 2)


def fingerprint(model: Any) -> str:
    """sha256 of a network's state_dict tensors (names and raw bytes, in key order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def seed_registry(db: Any) -> dict[str, str]:
    """Register a preprocessor (200 bundled rows) and two tiny tabtransformer versions; return their fingerprints."""
    import torch

    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.network import TabTransformer
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import infer_schema, read_csv
    from daily_mlops.settings import BUNDLED_REFERENCE_DATA
    from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, ModelRegistry

    frame = read_csv(BUNDLED_REFERENCE_DATA).head(200).reset_index(drop=True)
    pre = TabularPreprocessor(infer_schema(frame, target_column="creditability", positive_label="bad")).fit(frame)
    registry = ModelRegistry(db)
    pre_doc = registry.register(PREPROCESSOR_NAME, run_key="soak", artifacts={"preprocessor": pre.to_bytes()},
                                status="approved", signature=pre.signature(), extra={"schema": pre.schema})
    prints = {}
    for version in VERSIONS:
        torch.manual_seed(version)
        net = TabTransformer(cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=8, nhead=2,
                             num_layers=1, dim_feedforward=16, dropout=0.1).eval()
        doc = registry.register(
            MODEL_NAME, run_key=f"soak-{version}", artifacts={"weights": state_dict_to_bytes(net)}, status="approved",
            metrics={"f1": 0.8}, n_parameters=net.n_parameters,
            extra={"architecture": net.config, "decision_threshold": 0.5,
                   "preprocessor_version": pre_doc["model_version"]},
        )
        prints[str(doc["model_version"])] = fingerprint(net)
    return prints


# --------------------------------------------------------------------------- child processes
def _deploy_child(uri: str, db_name: str, directory: str, version: int, day: str, keep: int) -> None:
    from pymongo import MongoClient

    import daily_mlops.ml.bundle  # noqa: F401 - deploy_version's lazy imports, done before "ready"
    import daily_mlops.storage.deployment_dir  # noqa: F401
    import daily_mlops.storage.events  # noqa: F401
    from daily_mlops.loop.deployment import deploy_version
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    registry = ModelRegistry(MongoClient(uri, tz_aware=True)[db_name])
    registry.db.command("ping")
    print("ready", flush=True)
    started = time.monotonic()
    event = deploy_version(registry, MODEL_NAME, version, directory=Path(directory),
                           logical_date=dt.date.fromisoformat(day), keep_versions=keep)
    print(json.dumps({"status": event["status"], "version_in_place": event["version_in_place"],
                      "seconds": time.monotonic() - started}), flush=True)


def _reader_child(directory: str, stop_file: str, out_file: str, prints_json: str) -> None:
    from daily_mlops.loop.deployment import load_deployed

    prints = json.loads(prints_json)
    reads = torn = 0
    seen_success = False
    errors: list[str] = []
    parent = os.getppid()
    print("ready", flush=True)
    while not os.path.exists(stop_file) and os.getppid() == parent:  # also stops when the soak itself died
        try:
            bundle = load_deployed(Path(directory))
        except Exception as exc:  # noqa: BLE001 - every failure after the first success is a torn read
            if seen_success:
                reads += 1
                torn += 1
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        seen_success = True
        reads += 1
        if fingerprint(bundle.model) != prints.get(str(bundle.model_version)):
            torn += 1
            if len(errors) < 5:
                errors.append(f"version {bundle.model_version} loaded with another version's weights")
    Path(out_file).write_text(json.dumps({"reads": reads, "torn": torn, "errors": errors[:5]}), encoding="utf-8")


# --------------------------------------------------------------------------- the soak
def _start(args: list[str], stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


def _temporaries(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".*")
                  if p.name.startswith(".tmp-") or p.name.endswith(".tmp"))


def run_soak(uri: str, *, deploys: int = 50, kills: int = 15, keep_versions: int = 1, seed: int = 0,
             workdir: Path | None = None) -> dict[str, Any]:
    """Run the soak against the MongoDB at ``uri``; return its figures (see the module docstring)."""
    from pymongo import MongoClient

    from daily_mlops.storage.deployment_dir import deployed_version
    from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

    rng = random.Random(seed)
    db_name = f"soak_{uuid.uuid4().hex[:8]}"
    client = MongoClient(uri, tz_aware=True)
    with contextlib.ExitStack() as stack:
        stack.callback(client.close)
        stack.callback(client.drop_database, db_name)
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deploy-soak-")))
        directory, stop, out = work / "deployed", work / "stop", work / "reader.json"
        prints = seed_registry(client[db_name])
        reader_log = stack.enter_context(open(work / "reader.log", "w", encoding="utf-8"))  # never a full pipe
        reader = _start(["--reader", str(directory), str(stop), str(out), json.dumps(prints)], stderr=reader_log)
        stack.callback(lambda: reader.poll() is None and reader.kill())  # on any failure of the soak itself
        assert reader.stdout.readline().strip() == "ready", (work / "reader.log").read_text()

        candidates = range(max(deploys - 1, 1))  # never only the last: a kill that misses moves to the next deploy
        to_kill = set(rng.sample(candidates, min(kills, len(candidates))))
        figures = {"deploys": 0, "kills": 0, "kills_after_switch": 0, "runs": 0, "statuses": {}}
        durations: list[float] = [0.2]  # seconds inside deploy_version, as the children measure it
        started = time.monotonic()
        registry = ModelRegistry(client[db_name])
        for i in range(deploys):
            version, day = VERSIONS[i % 2], (BASE_DAY + dt.timedelta(days=i)).isoformat()
            if registry.get(MODEL_NAME, version)["status"] == "retired":  # the lifecycle's way back: re-approve
                registry.set_status(MODEL_NAME, version, "approved", reason="soak: approved again", logical_date=day)
            while True:
                figures["runs"] += 1
                child = _start(["--deploy", uri, db_name, str(directory), str(version), day, str(keep_versions)],
                               stderr=subprocess.STDOUT)
                before_ready = []
                while (line := child.stdout.readline()) and line.strip() != "ready":
                    before_ready.append(line)
                assert line, "".join(before_ready)
                if i in to_kill:
                    time.sleep(rng.uniform(0.0, 0.9 * statistics.median(durations)))
                    if child.poll() is None:
                        child.kill()
                        child.communicate()
                        figures["kills"] += 1
                        figures["kills_after_switch"] += deployed_version(directory) == version
                        to_kill.discard(i)
                        continue  # re-run the killed deploy
                    to_kill.discard(i)
                    if i + 1 < deploys:
                        to_kill.add(i + 1)  # it finished first: kill the next one instead
                out_text = child.stdout.read()  # through the same buffered reader that read "ready"
                child.wait(timeout=120)
                if child.returncode != 0:
                    raise RuntimeError(f"deploy {i} (v{version}) exited {child.returncode}: {out_text[-2000:]}")
                outcome = json.loads(out_text.strip().splitlines()[-1])
                durations.append(outcome["seconds"])
                status = outcome["status"]
                figures["statuses"][status] = figures["statuses"].get(status, 0) + 1
                figures["deploys"] += 1
                break
        figures["seconds"] = round(time.monotonic() - started, 1)
        stop.touch()
        reader.wait(timeout=120)
        result = json.loads(out.read_text(encoding="utf-8"))

        last = VERSIONS[(deploys - 1) % 2]
        latest = client[db_name]["deployment_events"].find_one({}, sort=[("timestamp", -1)])
        figures.update(
            reads=result["reads"], torn_reads=result["torn"], torn_examples=result["errors"],
            median_deploy_seconds=round(statistics.median(durations[1:] or durations), 3),
            final_directory_version=deployed_version(directory),
            final_registry_deployed=[d["model_version"] for d in registry.list(MODEL_NAME)
                                     if d["status"] == "deployed"],
            final_event_version_in_place=latest["version_in_place"] if latest else None,
            expected_version=last,
            leftover_temporaries=_temporaries(directory),
            version_directories=sorted(p.name for p in (directory / "versions").iterdir()),
            keep_versions=keep_versions,
        )
        return figures


@contextlib.contextmanager
def _server(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
        return
    from daily_mlops.storage.mongo import embedded_server

    with tempfile.TemporaryDirectory(prefix="deploy-soak-mongo-") as tmp, embedded_server(Path(tmp)) as started:
        yield started


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--deploy"]:
        uri, db_name, directory, version, day, keep = argv[1:7]
        return _deploy_child(uri, db_name, directory, int(version), day, int(keep))
    if argv[:1] == ["--reader"]:
        return _reader_child(*argv[1:5])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deploys", type=int, default=50)
    parser.add_argument("--kills", type=int, default=15, help="deploys SIGKILLed once at a random moment, then re-run")
    parser.add_argument("--keep-versions", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mongo-uri", default=None)
    args = parser.parse_args(argv)
    with _server(args.mongo_uri) as uri:
        figures = run_soak(uri, deploys=args.deploys, kills=args.kills, keep_versions=args.keep_versions,
                           seed=args.seed)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
