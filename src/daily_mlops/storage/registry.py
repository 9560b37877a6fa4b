"""The model registry, kept in MongoDB (collection ``model_metadata``).

A *model version* is an integer per model name (1, 2, 3, ...), written once
and never changed afterwards except for its lifecycle ``status`` (and the
``status_history`` that records each move), its latest ``comparisons`` and its
latest ``infra_validation`` (the check before deployment)::

    candidate -> approved | rejected  (a challenger's ``comparisons``: floor and champion)
    rejected  -> approved            (a rerun of its day re-evaluated it under a lower threshold)
    approved  -> deployed | retired
    deployed  -> retired
    retired   -> approved            (reinstate for a rollback)

Each version records its hyperparameters, metrics, the batch ids it was
trained and evaluated on, its parent version (lineage: ``parent_version``,
also as ``finetuned_from``, the original design's field), the sha256 and size
of each artifact, its parameter count and its input/output signature.
Artifacts live in GridFS (:mod:`daily_mlops.storage.artifacts`); a version whose
artifact is missing or altered is reported by :meth:`ModelRegistry.verify`
and never loaded (:meth:`ModelRegistry.load_artifact` raises).

Registration is idempotent through ``run_key`` (e.g. ``"bootstrap"`` or
``"retrain:2026-11-20:attempt-1"``): registering the same run key again
returns the version already written, so a rerun of a task or of
``daily-mlops bootstrap`` never creates a second version.
"""

from __future__ import annotations

import builtins
import datetime as dt
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import MLOpsError, NotFoundError
from daily_mlops.storage.artifacts import ArtifactRef, get_artifact, put_artifact, remove_other_files, verify_artifact
from daily_mlops.storage.mongo import ARTIFACTS_BUCKET

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = [
    "BOOTSTRAP_RUN_KEY", "MODEL_NAME", "PREPROCESSOR_NAME", "SYNTHESIZER_NAME", "STATUSES", "TRANSITIONS",
    "ModelRegistry", "is_model_family", "preprocessor_name", "synthesizer_name",
]

#: Run key of everything bootstrap registers (:meth:`ModelRegistry.find_run` finds it; a rerun is a no-op).
BOOTSTRAP_RUN_KEY = "bootstrap"
#: Registry name of the TabTransformer classifier: the default model family (``MLOPS_MODEL_NAME``).
MODEL_NAME = "tabtransformer"
#: Registry name of the default family's fitted SDV synthesizer.
SYNTHESIZER_NAME = "synthesizer"
#: Registry name of the default family's fitted preprocessor (fit once at bootstrap, reused by every version).
PREPROCESSOR_NAME = "preprocessor"
_AUXILIARY = (SYNTHESIZER_NAME, PREPROCESSOR_NAME)


def _family(model_name: str) -> str:
    if model_name in _AUXILIARY or ":" in model_name:
        raise MLOpsError(f"{model_name!r} cannot name a model family (the names {', '.join(_AUXILIARY)} and names "
                         "with ':' are the registry's own); set MLOPS_MODEL_NAME / --model-name to another name")
    return model_name


def synthesizer_name(model_name: str = MODEL_NAME) -> str:
    """Registry name of the synthesizer bootstrapped for family ``model_name``.

    ``synthesizer`` for the default family (the name existing databases use), ``<model_name>:synthesizer``
    for any other. Raises MLOpsError for a name that cannot be a family (``synthesizer``, ``preprocessor``, ``a:b``).
    """
    return SYNTHESIZER_NAME if _family(model_name) == MODEL_NAME else f"{model_name}:{SYNTHESIZER_NAME}"


def preprocessor_name(model_name: str = MODEL_NAME) -> str:
    """Registry name of the preprocessor of family ``model_name`` (as :func:`synthesizer_name`)."""
    return PREPROCESSOR_NAME if _family(model_name) == MODEL_NAME else f"{model_name}:{PREPROCESSOR_NAME}"


def is_model_family(model_name: str) -> bool:
    """Whether registry name ``model_name`` is a classifier family (not a synthesizer or preprocessor)."""
    return model_name not in _AUXILIARY and not model_name.endswith((f":{SYNTHESIZER_NAME}", f":{PREPROCESSOR_NAME}"))

STATUSES = ("candidate", "approved", "rejected", "deployed", "retired")
TRANSITIONS: dict[str, set[str]] = {
    "candidate": {"approved", "rejected"},
    "approved": {"deployed", "retired"},
    "deployed": {"retired"},
    "retired": {"approved"},
    "rejected": {"approved"},
}

_COLLECTION = "model_metadata"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ModelRegistry:
    """Register, query and move model versions through their lifecycle.

    Parameters
    ----------
    db : pymongo Database
        The project database (schema ensured by :func:`daily_mlops.storage.mongo.ensure_schema`).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._coll = db[_COLLECTION]

    # -- writing -----------------------------------------------------------
    def register(
        self,
        model_name: str,
        *,
        run_key: str,
        artifacts: dict[str, bytes],
        status: str = "candidate",
        parent_version: int | None = None,
        hyperparameters: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        trained_on: list[str] | None = None,
        evaluated_on: list[str] | None = None,
        n_parameters: int | None = None,
        signature: dict[str, Any] | None = None,
        logical_date: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a new immutable version and its artifacts; return its document.

        When a version with the same ``(model_name, run_key)`` exists it is
        returned unchanged and nothing is written (idempotent rerun).

        Raises
        ------
        MLOpsError
            For an unknown ``status`` or a ``parent_version`` that does not exist.
        """
        from pymongo.errors import DuplicateKeyError

        existing = self.find_run(model_name, run_key)
        if existing is not None:
            return existing
        if status not in STATUSES:
            raise MLOpsError(f"unknown model status {status!r}; use one of {', '.join(STATUSES)}")
        if parent_version is not None:
            self.get(model_name, parent_version)
        refs: dict[str, ArtifactRef] = {
            key: put_artifact(
                self.db, ARTIFACTS_BUCKET, f"{model_name}/{run_key}/{key}", data,
                metadata={"model_name": model_name, "run_key": run_key, "artifact": key},
            )
            for key, data in artifacts.items()
        }
        now = _now()
        for _ in range(20):
            latest = self._coll.find_one({"model_name": model_name}, sort=[("model_version", -1)])
            version = 1 if latest is None else int(latest["model_version"]) + 1
            doc = {
                "model_name": model_name,
                "model_version": version,
                "run_key": run_key,
                "status": status,
                "status_history": [{"status": status, "at": now, "reason": "registered"}],
                "parent_version": parent_version,
                "lineage": self._lineage(model_name, parent_version),
                "hyperparameters": hyperparameters or {},
                "metrics": metrics or {},
                "trained_on": trained_on or [],
                "evaluated_on": evaluated_on or [],
                "artifacts": refs,
                "sha256": {key: ref["sha256"] for key, ref in refs.items()},
                "size_bytes": sum(ref["size"] for ref in refs.values()),
                "n_parameters": n_parameters,
                "signature": signature or {},
                "logical_date": logical_date,
                "created_at": now,
                **(extra or {}),
            }
            if parent_version is None:
                doc.pop("parent_version")  # `parent_version: {$exists: true}` finds retrained versions
            else:  # the original design's name: `finetuned_from: {$exists: true}` finds them too
                doc["finetuned_from"] = int(parent_version)
            try:
                self._coll.insert_one(doc)
            except DuplicateKeyError:
                again = self._coll.find_one({"model_name": model_name, "run_key": run_key}, {"_id": 0})
                if again is not None:  # a concurrent rerun of the same run key won
                    self._keep_only_referenced(again)
                    return again
                continue  # lost the version number race: take the next one
            doc.pop("_id", None)
            self._keep_only_referenced(doc)
            return doc
        raise MLOpsError(f"could not allocate a version for {model_name!r} after 20 tries")  # pragma: no cover

    def set_status(
        self, model_name: str, model_version: int, status: str, *, reason: str, logical_date: str | None = None
    ) -> dict[str, Any]:
        """Move a version to ``status`` (see :data:`TRANSITIONS`); return the updated document.

        Setting the status a version already has is a no-op.

        Raises
        ------
        NotFoundError
            When the version does not exist.
        MLOpsError
            For a move the lifecycle does not allow (e.g. rejected -> deployed).
        """
        doc = self.get(model_name, model_version)
        current = doc["status"]
        if current == status:
            return doc
        if status not in TRANSITIONS.get(current, set()):
            raise MLOpsError(
                f"{model_name} version {model_version} is {current!r}; it cannot become {status!r} "
                f"(allowed: {sorted(TRANSITIONS.get(current, set())) or 'none'})"
            )
        entry = {"status": status, "at": _now(), "reason": reason, "logical_date": logical_date}
        self._coll.update_one(
            {"model_name": model_name, "model_version": model_version, "status": current},
            {"$set": {"status": status}, "$push": {"status_history": entry}},
        )
        return self.get(model_name, model_version)

    def record_comparisons(
        self, model_name: str, model_version: int, comparisons: dict[str, Any], *, logical_date: str | None = None,
    ) -> dict[str, Any]:
        """Set a challenger's ``comparisons`` (its latest evaluation's F1 floor and champion comparisons).

        Besides ``status``, the one field that changes after registration: a
        rerun of the day with another threshold re-evaluates the version and
        replaces it. ``comparisons`` is :func:`daily_mlops.decisions.judge_candidate`'s dict.

        Raises
        ------
        NotFoundError
            When the version does not exist.
        """
        return self._set_field(model_name, model_version, "comparisons", {**comparisons, "logical_date": logical_date})

    def record_infra_validation(
        self, model_name: str, model_version: int, result: dict[str, Any],
    ) -> dict[str, Any]:
        """Set a version's ``infra_validation``: its latest check before deployment (replaced by each check).

        ``result`` is :func:`daily_mlops.loop.infra_validation.validate_infra`'s record: ``status``
        (``passed``/``refused``), ``check``, ``p95_ms`` (single-row latency, ms), ``artifact_bytes``,
        the canary's scores and ``logical_date``.

        Raises
        ------
        NotFoundError
            When the version does not exist.
        """
        return self._set_field(model_name, model_version, "infra_validation", result)

    def _set_field(self, model_name: str, model_version: int, field: str, value: Any) -> dict[str, Any]:
        """Set one top-level ``field`` of an existing version; return the updated document (NotFoundError if none)."""
        self.get(model_name, model_version)
        self._coll.update_one({"model_name": model_name, "model_version": int(model_version)}, {"$set": {field: value}})
        return self.get(model_name, model_version)

    # -- reading -----------------------------------------------------------
    def find_run(self, model_name: str, run_key: str) -> dict[str, Any] | None:
        """The version registered under ``run_key`` (e.g. ``"bootstrap"``), or ``None``."""
        return self._coll.find_one({"model_name": model_name, "run_key": run_key}, {"_id": 0})

    def get(self, model_name: str, model_version: int) -> dict[str, Any]:
        """Return version ``model_version`` of ``model_name``.

        Raises
        ------
        NotFoundError
            When it does not exist; the message lists the versions that do.
        """
        doc = self._coll.find_one({"model_name": model_name, "model_version": int(model_version)}, {"_id": 0})
        if doc is None:
            known = [d["model_version"] for d in self._coll.find({"model_name": model_name}, {"model_version": 1})]
            raise NotFoundError(
                f"{model_name} version {model_version} is not in the registry "
                f"(known versions: {sorted(known) or 'none'}); "
                "run `daily-mlops bootstrap` to create version 1"
            )
        return doc

    def list(self, model_name: str) -> list[dict[str, Any]]:
        """All versions of ``model_name``, oldest first."""
        return list(self._coll.find({"model_name": model_name}, {"_id": 0}).sort("model_version", 1))

    def model_names(self) -> builtins.list[str]:
        """The model families in the registry (synthesizers and preprocessors left out), sorted."""
        return sorted(name for name in self._coll.distinct("model_name") if is_model_family(name))

    def resolve(self, model_name: str, selector: str | int, *, metric: str = "f1") -> dict[str, Any]:
        """The version ``selector`` names: a number, ``latest`` (highest) or ``best`` (highest ``metrics[metric]``).

        Raises
        ------
        NotFoundError
            When the version does not exist (the message lists those that do).
        MLOpsError
            When ``selector`` is none of a number, ``latest``, ``best``.
        """
        text = str(selector).strip().lower()
        if text == "latest":
            return self.latest(model_name)
        if text == "best":
            return self.best(model_name, metric=metric)
        if not text.removeprefix("v").isdigit():
            raise MLOpsError(f"{selector!r} is not a model version; give a number (e.g. 3), 'latest' or 'best'")
        return self.get(model_name, int(text.removeprefix("v")))

    def latest(self, model_name: str, *, statuses: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The highest version (optionally among ``statuses``).

        Raises
        ------
        NotFoundError
            When no version matches.
        """
        query: dict[str, Any] = {"model_name": model_name}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        doc = self._coll.find_one(query, {"_id": 0}, sort=[("model_version", -1)])
        if doc is None:
            wanted = f" with status in {list(statuses)}" if statuses else ""
            raise NotFoundError(f"no {model_name} version{wanted} in the registry; run `daily-mlops bootstrap` first")
        return doc

    def best(
        self, model_name: str, *, metric: str = "f1", statuses: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """The version with the highest ``metrics[metric]`` (ties: the newer version).

        Raises
        ------
        NotFoundError
            When no version matching ``statuses`` records ``metric``.
        """
        query: dict[str, Any] = {"model_name": model_name, f"metrics.{metric}": {"$type": "number"}}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        doc = self._coll.find_one(query, {"_id": 0}, sort=[(f"metrics.{metric}", -1), ("model_version", -1)])
        if doc is None:
            raise NotFoundError(f"no {model_name} version records metric {metric!r}")
        return doc

    def champion(self, model_name: str = MODEL_NAME) -> dict[str, Any]:
        """The current model: the deployed version, else the newest approved one.

        Raises
        ------
        NotFoundError
            When there is neither (run ``daily-mlops bootstrap``).
        """
        try:
            return self.latest(model_name, statuses=("deployed",))
        except NotFoundError:
            return self.latest(model_name, statuses=("approved",))

    # -- integrity ---------------------------------------------------------
    def verify(self, doc: dict[str, Any]) -> builtins.list[str]:
        """Problems with a version's artifacts (missing file, sha256 mismatch); empty when intact."""
        problems = []
        for ref in doc.get("artifacts", {}).values():
            problem = verify_artifact(self.db, ref)
            if problem:
                problems.append(problem)
        return problems

    def load_artifact(self, doc: dict[str, Any], key: str) -> bytes:
        """The verified bytes of artifact ``key`` of a version.

        Raises
        ------
        NotFoundError
            When the version has no artifact ``key``.
        IntegrityError
            When the file is missing or its sha256 differs from the recorded one.
        """
        try:
            ref = doc["artifacts"][key]
        except KeyError:
            raise NotFoundError(
                f"{doc.get('model_name')} version {doc.get('model_version')} has no artifact {key!r} "
                f"(it has {sorted(doc.get('artifacts', {}))})"
            ) from None
        return get_artifact(self.db, ref)

    def _keep_only_referenced(self, doc: dict[str, Any]) -> None:
        """Delete other files of each artifact's filename: leftovers of a crashed or concurrent registration.

        The registry document decides which upload survives, so a concurrent
        registration of the same run key never deletes the referenced file.
        """
        for ref in doc.get("artifacts", {}).values():
            remove_other_files(self.db, ref["bucket"], ref["filename"], keep=ref["file_id"])

    def _lineage(self, model_name: str, parent_version: int | None) -> builtins.list[int]:
        """Versions from the root to the parent (``[]`` for a root version)."""
        if parent_version is None:
            return []
        parent = self.get(model_name, parent_version)
        return [*parent.get("lineage", []), int(parent_version)]

