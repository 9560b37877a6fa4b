"""``daily-mlops serve`` over real HTTP: uvicorn on a loopback port, httpx requests, real deployments.

Models are tiny untrained TabTransformers with a preprocessor fitted on 200
real rows, registered in a real MongoDB-wire server and deployed with the
project's one mechanism, :func:`daily_mlops.loop.deployment.deploy_version`
(as in ``tests/integration/test_deployment.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
import uvicorn

from daily_mlops.loop.deployment import deploy_version
from daily_mlops.ml.bundle import ModelBundle
from daily_mlops.ml.model_io import state_dict_to_bytes
from daily_mlops.ml.network import TabTransformer
from daily_mlops.ml.preprocessing import TabularPreprocessor
from daily_mlops.ml.schema import infer_schema, read_csv
from daily_mlops.serving import create_app
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings
from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, ModelRegistry

pytestmark = pytest.mark.integration

TARGET, POSITIVE, NEGATIVE = "creditability", "bad", "good"
THRESHOLD = 0.42
DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """200 real rows of the bundled reference data (target included)."""
    return read_csv(BUNDLED_REFERENCE_DATA).head(200).reset_index(drop=True)


@pytest.fixture(scope="module")
def preprocessor(frame: pd.DataFrame) -> TabularPreprocessor:
    return TabularPreprocessor(infer_schema(frame, target_column=TARGET, positive_label=POSITIVE)).fit(frame)


@pytest.fixture(scope="module")
def networks(preprocessor: TabularPreprocessor) -> dict[int, TabTransformer]:
    """Two differently initialised networks of one architecture (versions 1 and 2)."""
    out = {}
    for version in (1, 2):
        torch.manual_seed(version)
        out[version] = TabTransformer(cardinalities=preprocessor.cardinalities_, n_numeric=preprocessor.n_numeric_,
                                      d_model=8, nhead=2, num_layers=1, dim_feedforward=16, dropout=0.1).eval()
    return out


@pytest.fixture
def registry(real_db, preprocessor: TabularPreprocessor, networks) -> ModelRegistry:
    """Preprocessor v1 and tabtransformer v1 and v2, both approved."""
    reg = ModelRegistry(real_db)
    pre = reg.register(PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": preprocessor.to_bytes()},
                       status="approved", signature=preprocessor.signature(), extra={"schema": preprocessor.schema})
    for version, net in networks.items():
        doc = reg.register(MODEL_NAME, run_key=f"run-{version}", artifacts={"weights": state_dict_to_bytes(net)},
                           status="approved", metrics={"f1": 0.5 + version / 10}, n_parameters=net.n_parameters,
                           extra={"architecture": net.config, "decision_threshold": THRESHOLD,
                                  "preprocessor_version": pre["model_version"]})
        assert doc["model_version"] == version
    return reg


@pytest.fixture
def rows(frame: pd.DataFrame) -> list[dict]:
    """Eight raw rows as JSON objects, without the target."""
    return json.loads(frame.drop(columns=[TARGET]).head(8).to_json(orient="records"))


@pytest.fixture
def expected(rows, preprocessor, networks) -> dict[int, np.ndarray]:
    """P(bad) of each version for ``rows``, computed in-process from the same weights."""
    raw = pd.DataFrame(rows)
    return {v: ModelBundle(model=net, preprocessor=preprocessor, decision_threshold=THRESHOLD, model_name=MODEL_NAME,
                           model_version=v).predict_proba(raw) for v, net in networks.items()}


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(home=tmp_path, serve_reload_seconds=0, _env_file=None, **overrides)


@contextlib.contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """Run the app with uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _deploy(registry: ModelRegistry, settings: Settings, version: int, day: dt.date = DAY) -> dict:
    return deploy_version(registry, MODEL_NAME, version, directory=settings.deployment_path, logical_date=day)


def test_health_model_predict_and_openapi(registry, rows, expected, tmp_path):
    """/health and /model name the deployed version; /predict returns its probabilities and the dataset's labels."""
    settings = _settings(tmp_path)
    event = _deploy(registry, settings, 1)
    with _serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["model_version"] == 1

        model = http.get("/model").json()
        assert model["model_version"] == 1
        assert model["sha256"] == event["sha256"] == registry.get(MODEL_NAME, 1)["sha256"]["weights"]
        assert model["metrics"] == {"f1": pytest.approx(0.6)}
        assert dt.datetime.fromisoformat(model["deployed_at"]).tzinfo is not None
        assert model["labels"] == {"positive": POSITIVE, "negative": NEGATIVE}

        answer = http.post("/predict", json=rows)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == 1 and body["sha256"] == model["sha256"]
        assert np.allclose(body["probabilities"], expected[1], atol=1e-6)
        assert body["labels"] == [POSITIVE if p >= THRESHOLD else NEGATIVE for p in body["probabilities"]]
        assert set(body["labels"]) <= {POSITIVE, NEGATIVE}

        schema = http.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
        row = schema["content"]["application/json"]["schema"]["items"]
        assert {"type": "number"} in row["properties"]["credit_amount"]["anyOf"]
        assert {"type": "string"} in row["properties"]["purpose"]["anyOf"]
        assert TARGET not in row["properties"] and "credit_amount" in row["required"]


def test_bad_input_is_422_naming_the_column_and_a_large_body_is_413(registry, rows, tmp_path):
    """A non-numeric credit_amount and a missing purpose give 422 with those columns; a body over the limit 413."""
    settings = _settings(tmp_path, serve_max_body_bytes=4096)
    _deploy(registry, settings, 1)
    bad = [dict(row) for row in rows[:2]]
    bad[0]["credit_amount"] = "a lot"
    del bad[1]["purpose"]
    with _serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/predict", json=bad)
        assert answer.status_code == 422
        locations = [e["loc"] for e in answer.json()["detail"]]
        assert ["body", 0, "credit_amount"] in locations and ["body", 1, "purpose"] in locations

        assert http.post("/predict", json=[]).status_code == 422
        assert http.post("/predict", content=b"[{", headers={"content-type": "application/json"}).status_code == 422

        big = rows * 10
        assert len(json.dumps(big)) > 4096
        answer = http.post("/predict", json=big)
        assert answer.status_code == 413
        assert "serve_max_body_bytes" in answer.json()["detail"]
        chunks = (json.dumps(big)[i:i + 1000].encode() for i in range(0, len(json.dumps(big)), 1000))
        streamed = http.post("/predict", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413  # no Content-Length (chunked): counted while reading
        assert http.post("/predict", json=rows[:2]).status_code == 200  # still serving


def test_a_redeploy_during_200_requests_gives_no_error_and_consistent_answers(registry, rows, expected, tmp_path):
    """Version 2 is deployed while 4 clients send 200 requests: 0 errors, each answer one version's own output."""
    settings = _settings(tmp_path)
    _deploy(registry, settings, 1)
    sha = {v: registry.get(MODEL_NAME, v)["sha256"]["weights"] for v in (1, 2)}
    answers: dict[int, list] = {i: [] for i in range(4)}
    started = threading.Event()

    def client(i: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for n in range(50):
                try:
                    response = http.post("/predict", json=rows)
                    answers[i].append((response.status_code, response.json()))
                except httpx.HTTPError as exc:  # recorded, so the test fails naming it
                    answers[i].append((None, repr(exc)))
                if n == 5:
                    started.set()

    with _serving(settings) as url:
        threads = [threading.Thread(target=client, args=(i, url)) for i in range(4)]
        for t in threads:
            t.start()
        assert started.wait(60)
        _deploy(registry, settings, 2, DAY + dt.timedelta(days=1))
        for t in threads:
            t.join(timeout=120)

    flat = [a for per_client in answers.values() for a in per_client]
    assert len(flat) == 200
    assert [a for a in flat if a[0] != 200] == []
    for _, body in flat:
        version = body["model_version"]
        assert body["sha256"] == sha[version]
        assert np.allclose(body["probabilities"], expected[version], atol=1e-6), version
    assert {body["model_version"] for _, body in flat} == {1, 2}
    for per_client in answers.values():  # each client's requests are sequential: never back to v1 after v2
        versions = [body["model_version"] for _, body in per_client]
        assert versions == sorted(versions)


def test_starts_without_a_model_and_picks_up_the_first_deployment(registry, rows, tmp_path):
    """With nothing deployed /health is 503 (predict too); after a deployment it serves, without a restart."""
    settings = _settings(tmp_path)
    with _serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        health = http.get("/health")
        assert health.status_code == 503 and "no model is deployed" in health.json()["detail"]
        assert http.post("/predict", json=rows).status_code == 503
        _deploy(registry, settings, 2)
        assert http.get("/health").json() == {"status": "ok", "model_version": 2, "problem": None}
        assert http.post("/predict", json=rows).json()["model_version"] == 2


def _unseen_and_null(rows: list[dict]) -> list[dict]:
    """Four rows: purpose 'crypto' (never in the reference) in rows 0 and 2, credit_amount null in row 1."""
    out = [dict(row) for row in rows[:4]]
    out[0]["purpose"] = out[2]["purpose"] = "crypto"
    out[1]["credit_amount"] = None
    return out


def test_predict_names_unseen_categories_and_nulls_per_row(registry, rows, tmp_path):
    """/predict scores a row with an unseen purpose or a null credit_amount and names the column in input_flags."""
    settings = _settings(tmp_path)
    _deploy(registry, settings, 1)
    with _serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/predict", json=_unseen_and_null(rows))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["input_flags"] == [
            {"unseen": {"purpose": "crypto"}, "null": []}, {"unseen": {}, "null": ["credit_amount"]},
            {"unseen": {"purpose": "crypto"}, "null": []}, {"unseen": {}, "null": []},
        ]
        assert len(body["probabilities"]) == len(body["labels"]) == 4 and body["model_version"] == 1

        clean = http.post("/predict", json=rows).json()
        assert clean["input_flags"] == [{"unseen": {}, "null": []}] * len(rows)
        schema = http.get("/openapi.json").json()
        assert "input_flags" in schema["components"]["schemas"]["Prediction"]["properties"]


def test_strict_predict_refuses_unseen_categories_and_nulls_with_422(registry, rows, tmp_path):
    """With predict_strict, the same rows are a 422 whose loc names row and column, the value and the fix."""
    settings = _settings(tmp_path, predict_strict=True)
    _deploy(registry, settings, 1)
    with _serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/predict", json=_unseen_and_null(rows))
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert [(e["loc"], e["type"], e["input"]) for e in detail] == [
            (["body", 0, "purpose"], "unseen_category", "crypto"),
            (["body", 1, "credit_amount"], "null_value", None),
            (["body", 2, "purpose"], "unseen_category", "crypto"),
        ]
        assert "'crypto'" in detail[0]["msg"] and "never saw" in detail[0]["msg"]
        assert all("MLOPS_PREDICT_STRICT=false" in e["msg"] for e in detail)

        clean = http.post("/predict", json=rows)  # rows the model knows are still scored
        assert clean.status_code == 200 and clean.json()["input_flags"] == [{"unseen": {}, "null": []}] * len(rows)
