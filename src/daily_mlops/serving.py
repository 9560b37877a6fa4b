"""HTTP serving of the deployed model (``daily-mlops serve``): FastAPI app factory :func:`create_app`.

Endpoints: ``GET /health``, ``GET /model`` (version, sha256, metrics, deployed at),
``POST /predict`` (a JSON list of raw rows -> probabilities, labels and, per row, the
input flags: columns whose value was a category the model never saw or a null). The
request schema is a pydantic model built at start-up from the deployed
preprocessor's schema (one field per feature column, with its type), so
``/docs`` and ``/openapi.json`` describe the real input; a bad value is a 422
whose ``loc`` names the column, a body over ``serve_max_body_bytes`` a 413. With
``predict_strict`` (``MLOPS_PREDICT_STRICT``) a row with an unseen category or a
null is a 422 too (:meth:`daily_mlops.ml.preprocessing.TabularPreprocessor.input_flags`).

Hot reload without a half-loaded model. The loaded model lives in ONE
attribute holding an immutable :class:`LoadedModel` (bundle, identity, the
JSON record it came with, the row validator). At most every
``serve_reload_seconds``, a request compares the deployment's identity with the
loaded one: the resolved ``current`` symlink (``versions/<n>``) when it
exists, else ``VERSION`` plus the weights sha256 of ``current_model.json``. On a
change, one request thread loads the new version completely with
:func:`daily_mlops.loop.deployment.load_deployed` (identity read before and
after: equal, or it retries) and then replaces the attribute; requests that
already hold the old object finish with it. Every answer is computed from one
object, so its version, sha256 and probabilities always belong together.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from daily_mlops.errors import MLOpsError, SchemaError
from daily_mlops.ml.input_flags import STRICT_FIX
from daily_mlops.storage.deployment_dir import CONFIG_FILE, VERSION_FILE

if TYPE_CHECKING:  # pragma: no cover

    from daily_mlops.ml.bundle import ModelBundle
    from daily_mlops.settings import Settings

__all__ = ["CURRENT_LINK", "LoadedModel", "ModelHolder", "Prediction", "RowFlags", "create_app", "deployment_identity",
           "row_model"]

log = logging.getLogger("daily_mlops.serving")

#: The symlink naming the deployed version directory (``current -> versions/<n>``), when the layout has one.
CURRENT_LINK = "current"


def deployment_identity(directory: Path) -> str | None:
    """What identifies the deployed version in ``directory``; ``None`` when nothing is deployed.

    ``os.path.realpath(directory / "current")`` when that link exists, else
    ``"<VERSION>:<weights sha256 from current_model.json>"``.
    """
    link = Path(directory) / CURRENT_LINK
    if os.path.lexists(link):
        return os.path.realpath(link)
    try:
        version = (Path(directory) / VERSION_FILE).read_text().strip()
        config = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
        return f"{version}:{config['sha256']['weights']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def row_model(schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model of one raw row: a field per used feature of ``schema``, aliased to the column name.

    Numeric columns are ``float`` (finite), categorical ones ``str`` (``bool``
    for a boolean column), datetime ones ``str`` (parsed with the stored
    format by the preprocessor; a ``%Y%m%d`` column also takes an integer); every column is required and may be ``null``
    (missing values are imputed). Other keys (e.g. the target) are ignored.
    """
    from daily_mlops.ml.schema import schema_parts

    features, target = schema_parts(schema)
    fields: dict[str, Any] = {}
    for i, feature in enumerate(f for f in features if f["kind"] != "dropped"):
        kind, name = feature["kind"], feature["name"]
        if kind == "numeric":
            annotation: Any = float
            extra: dict[str, Any] = {"allow_inf_nan": False}
        elif kind == "datetime" and feature.get("format") == "%Y%m%d":
            annotation, extra = int | str, {}  # 20241130 as a number or a string
        else:
            annotation, extra = (bool if feature.get("dtype") == "bool" else str), {}
        description = f"{kind} column {name!r}" + (f" (format {feature['format']})" if feature.get("format") else "")
        fields[f"f{i}"] = (annotation | None, Field(..., alias=name, description=description, **extra))
    return create_model("Row", __config__=ConfigDict(extra="ignore", title=f"raw row (target {target['column']!r} "
                                                                           "not needed)"), **fields)


@dataclass(frozen=True)
class LoadedModel:
    """One deployed version, loaded completely: never changed after construction."""

    bundle: ModelBundle
    identity: str
    info: dict[str, Any]
    row: type[BaseModel]
    rows: TypeAdapter[list[BaseModel]]
    positive_label: str
    negative_label: str


def _load(directory: Path) -> LoadedModel:
    """Load the deployed version with its identity and JSON record, consistently (retries while it changes).

    Raises
    ------
    NotFoundError
        When no model is deployed in ``directory``.
    MLOpsError
        When the deployment kept changing during 5 attempts, or its files fail their checks.
    """
    from daily_mlops.loop.deployment import load_deployed
    from daily_mlops.ml.schema import schema_parts

    for _ in range(5):
        before = deployment_identity(directory)
        bundle = load_deployed(directory)
        link = directory / CURRENT_LINK
        base = Path(os.path.realpath(link)) if os.path.lexists(link) else directory
        try:
            config = json.loads((base / CONFIG_FILE).read_text(encoding="utf-8"))
            stamp = (os.lstat(link) if os.path.lexists(link) else os.stat(directory / VERSION_FILE)).st_mtime
        except (OSError, ValueError):
            continue  # pruned or replaced meanwhile
        if before is None or before != deployment_identity(directory):
            continue
        if config.get("model_version") != bundle.model_version:
            continue
        _, target = schema_parts(bundle.preprocessor.schema)
        negative = next(str(x) for x in target["labels"] if str(x) != str(target["positive_label"]))
        info = {
            "model_name": config.get("model_name"), "model_version": int(config["model_version"]),
            "sha256": config["sha256"]["weights"], "preprocessor_sha256": config["sha256"].get("preprocessor"),
            "decision_threshold": float(config["decision_threshold"]), "metrics": config.get("metrics", {}),
            "calibration": config.get("calibration"),
            "deployed_at": dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(),
            "labels": {"positive": str(target["positive_label"]), "negative": negative},
        }
        row = row_model(bundle.preprocessor.schema)
        # ``row`` is a model built at run time (create_model): a variable, which mypy does not accept as a type.
        row_list: Any = Annotated[list[row], Field(min_length=1)]  # type: ignore[valid-type]
        return LoadedModel(bundle=bundle, identity=before, info=info, row=row, rows=TypeAdapter(row_list),
                           positive_label=str(target["positive_label"]), negative_label=negative)
    raise MLOpsError(f"the deployment in {directory} kept changing while it was loaded; retry")


class ModelHolder:
    """The currently served :class:`LoadedModel`, swapped atomically when the deployment changes.

    Parameters
    ----------
    directory : Path
        The deployment directory (``MLOPS_DEPLOYMENT_DIR``).
    reload_seconds : float
        Minimum seconds between two identity checks (0 = every request).
    """

    def __init__(self, directory: Path, *, reload_seconds: float) -> None:
        self.directory = Path(directory)
        self.reload_seconds = float(reload_seconds)
        self.loaded: LoadedModel | None = None
        self.problem: str | None = None
        self._checked = float("-inf")
        self._loading = threading.Lock()

    def current(self) -> LoadedModel | None:
        """The model to answer this request with (after a reload when the deployment changed)."""
        now = time.monotonic()
        if now - self._checked >= self.reload_seconds and self._loading.acquire(blocking=self.loaded is None):
            try:
                self._checked = now
                self._refresh()
            finally:
                self._loading.release()
        return self.loaded

    def _refresh(self) -> None:
        identity = deployment_identity(self.directory)
        loaded = self.loaded
        if identity is None or (loaded is not None and identity == loaded.identity):
            if identity is None and loaded is None:
                self.problem = f"no model is deployed in {self.directory}; run the deployment DAG or `daily-mlops demo`"
            return
        try:
            fresh = _load(self.directory)
        except MLOpsError as exc:  # keep serving the previous version; retried at the next check
            self.problem = str(exc)
            log.warning("could not load the deployment in %s: %s", self.directory, exc)
            return
        self.loaded = fresh  # the one swap: a single attribute store; readers hold the old object or the new
        self.problem = None
        log.info("serving %s version %s (%s)", fresh.info["model_name"], fresh.info["model_version"], fresh.identity)


class _BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes (serve_max_body_bytes); "
                                     "send fewer rows per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._too_large(send)
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Any:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


class RowFlags(BaseModel):
    """What one row's prediction was made from: the values the preprocessor could not read as given."""

    unseen: dict[str, str] = Field(description="column -> a category the model never saw (read as unknown)")
    null: list[str] = Field(description="columns whose value was null (imputed)")


class Prediction(BaseModel):
    """The answer of ``POST /predict``, from one version.

    One probability, one label and one :class:`RowFlags` per row.
    """

    model_name: str
    model_version: int
    sha256: str
    decision_threshold: float
    positive_label: str
    probabilities: list[float]
    labels: list[str]
    input_flags: list[RowFlags] = Field(description="per row: unseen categories and null columns (empty when none)")


def _errors(exc: Any) -> list[dict[str, Any]]:
    plain = (str, int, float, bool, type(None))
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"],
             **({"input": e["input"]} if isinstance(e.get("input"), plain) else {})}
            for e in exc.errors(include_url=False)]


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app serving ``settings.deployment_path``; the first model is loaded here if one is deployed.

    Uses ``serve_max_body_bytes`` (413 above it), ``serve_reload_seconds``
    (how often a request checks for a new deployment) and ``predict_strict``
    (422 for rows with an unseen category or a null, instead of flagging them).
    """
    holder = ModelHolder(settings.deployment_path, reload_seconds=settings.serve_reload_seconds)
    strict = settings.predict_strict
    first = holder.current()

    app = FastAPI(title="daily-mlops model server", version="1",
                  description="The deployed TabTransformer of the daily MLOps loop (reloaded when it changes).")
    app.state.holder = holder

    def unavailable() -> JSONResponse:
        return JSONResponse({"status": "unavailable", "detail": holder.problem or "no model loaded"}, status_code=503)

    @app.get("/health")
    def health() -> Any:
        """200 with the served version, or 503 while no model can be served."""
        loaded = holder.current()
        if loaded is None:
            return unavailable()
        return {"status": "ok", "model_version": loaded.info["model_version"], "problem": holder.problem}

    @app.get("/model")
    def model() -> Any:
        """The served version: ``model_version``, ``sha256`` (weights), ``metrics``, ``deployed_at`` and more."""
        loaded = holder.current()
        return unavailable() if loaded is None else loaded.info

    # The OpenAPI request schema: the row model of the version loaded at start-up (any objects without one).
    items = ({"type": "array", "minItems": 1, "items": first.row.model_json_schema()} if first
             else {"type": "array", "items": {"type": "object"}})

    def score(body: bytes) -> Any:
        loaded = holder.current()
        if loaded is None:
            return unavailable()
        try:
            rows = loaded.rows.validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"detail": _errors(exc)}, status_code=422)
        frame = pd.DataFrame([row.model_dump(by_alias=True) for row in rows])
        try:
            flags = loaded.bundle.preprocessor.input_flags(frame)
            if strict and flags:
                return JSONResponse({"detail": [
                    {"loc": ["body", r["row"], r["column"]], "msg": f"{r['msg']}; {STRICT_FIX}", "type": r["type"],
                     "input": r["value"]} for r in flags.refusals()]}, status_code=422)
            proba = loaded.bundle.predict_proba(frame)
        except SchemaError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        cut = loaded.bundle.decision_threshold
        return Prediction(
            model_name=loaded.info["model_name"], model_version=loaded.info["model_version"],
            sha256=loaded.info["sha256"], decision_threshold=cut, positive_label=loaded.positive_label,
            probabilities=[float(p) for p in proba],
            labels=[loaded.positive_label if p >= cut else loaded.negative_label for p in proba],
            input_flags=[RowFlags.model_validate(r) for r in flags.per_row()],
        )

    @app.post("/predict", response_model=Prediction, openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": items}}}})
    async def predict(request: Request) -> Any:
        """Probabilities of the positive label, predicted labels (the dataset's own values) and input flags.

        The body is raw rows.
        """
        return await run_in_threadpool(score, await request.body())

    app.add_middleware(_BodyLimit, max_bytes=settings.serve_max_body_bytes)
    return app

