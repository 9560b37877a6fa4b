"""``daily-mlops doctor``: consistency checks of what the loop stored, and the repairs that are safe.

Checks, in order (each is one name in :data:`CHECKS`):

* ``orphan chunks``: per GridFS bucket, chunks whose ``files_id`` has no
  ``files`` document (an upload that died before its files document),
  with their count and bytes. Uploads that may still be running are not
  counted (:func:`daily_mlops.storage.artifacts.orphan_chunks`).
* ``stale upload journal``: ``gridfs_uploads`` entries whose writer is gone.
* ``missing artifact`` / ``sha256 mismatch``: every registry version
  (:meth:`ModelRegistry.verify`) and every raw and split file referenced by
  ``processing_metadata``, read back and re-hashed.
* ``deployment``: the version in the deployment directory
  (:func:`daily_mlops.storage.deployment_dir.deployed_version`) against the
  registry's ``deployed`` tabtransformer version.

``repair=True`` fixes only what cannot lose data: it deletes orphan chunks
(not in flight) and stale journal entries. It never deletes a registry
document or a file a registry document or ``processing_metadata`` refers
to; those findings stay and need a rerun (``daily-mlops bootstrap``, the
day's DAG) or a redeployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_mlops.errors import NotFoundError
from daily_mlops.storage.artifacts import (
    STALE_UPLOAD_SECONDS,
    abandoned_uploads,
    orphan_chunks,
    remove_abandoned_uploads,
    remove_orphan_chunks,
    verify_artifact,
)
from daily_mlops.storage.deployment_dir import deployed_version
from daily_mlops.storage.mongo import BUCKETS, UPLOADS_JOURNAL
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = ["CHECKS", "DoctorReport", "Finding", "check_storage"]

CHECKS = ("orphan chunks", "stale upload journal", "missing artifact", "sha256 mismatch", "deployment")


@dataclass
class Finding:
    """One problem: which ``check`` found it, its ``subject`` (bucket, version, batch, directory) and ``detail``."""

    check: str
    subject: str
    detail: str
    repairable: bool = False
    repaired: bool = False


@dataclass
class DoctorReport:
    """All findings, plus how many things each check looked at (``checked``)."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[Finding]:
        """Findings that remain (not repaired)."""
        return [f for f in self.findings if not f.repaired]

    @property
    def healthy(self) -> bool:
        """True when no problem remains."""
        return not self.problems


def check_storage(
    db: Database, deployment_path: Path, *, repair: bool = False, stale_after: float = STALE_UPLOAD_SECONDS,
    model_name: str = MODEL_NAME,
) -> DoctorReport:
    """Run every check in :data:`CHECKS`; with ``repair``, delete orphan chunks and stale journal entries.

    Parameters
    ----------
    deployment_path : Path
        ``MLOPS_DEPLOYMENT_DIR`` (``Settings.deployment_path``).
    stale_after : float
        Seconds after which a journalled upload counts as abandoned even when
        its writer cannot be probed (another host).
    model_name : str
        The model family deployed there (``MLOPS_MODEL_NAME``).

    Returns
    -------
    DoctorReport
        ``healthy`` is true when nothing remains to fix.
    """
    report = DoctorReport()
    _check_gridfs(db, report, repair=repair, stale_after=stale_after)
    _check_artifacts(db, report)
    _check_deployment(db, deployment_path, report, model_name)
    return report


def _check_gridfs(db: Database, report: DoctorReport, *, repair: bool, stale_after: float) -> None:
    report.checked["orphan chunks"] = 0
    for bucket in BUCKETS:
        groups = orphan_chunks(db, bucket, stale_after=stale_after)
        report.checked["orphan chunks"] += db[f"{bucket}.chunks"].estimated_document_count()
        orphans = [g for g in groups if not g["in_flight"]]
        if not orphans:
            continue
        finding = Finding(
            "orphan chunks", f"bucket {bucket}",
            f"{sum(g['chunks'] for g in orphans)} chunks ({sum(g['bytes'] for g in orphans)} bytes) of "
            f"{len(orphans)} upload(s) without a files document", repairable=True,
        )
        if repair:
            removed = remove_orphan_chunks(db, bucket, stale_after=stale_after)
            finding.repaired = not [g for g in orphan_chunks(db, bucket, stale_after=stale_after) if not g["in_flight"]]
            finding.detail += f"; deleted {removed} chunks"
        report.findings.append(finding)
    stale = abandoned_uploads(db, stale_after=stale_after)
    report.checked["stale upload journal"] = db[UPLOADS_JOURNAL].count_documents({})
    if stale:
        finding = Finding("stale upload journal", "gridfs_uploads",
                          f"{len(stale)} entr{'y' if len(stale) == 1 else 'ies'} of uploads whose writer is gone: "
                          + ", ".join(sorted({f"{e['bucket']}/{e['filename']}" for e in stale})), repairable=True)
        if repair:
            removed_uploads = remove_abandoned_uploads(db, stale_after=stale_after)
            finding.repaired = not abandoned_uploads(db, stale_after=stale_after)
            finding.detail += f"; removed {removed_uploads['uploads']}"
        report.findings.append(finding)


def _classify(db: Database, ref: dict[str, Any]) -> str:
    from bson import ObjectId

    file_id = ObjectId(ref["file_id"]) if ObjectId.is_valid(ref["file_id"]) else ref["file_id"]
    present = db[f"{ref['bucket']}.files"].find_one({"_id": file_id}, {"_id": 1}) is not None
    return "sha256 mismatch" if present else "missing artifact"


def _check_artifacts(db: Database, report: DoctorReport) -> None:
    registry = ModelRegistry(db)
    n_refs = 0
    for doc in db["model_metadata"].find({}, {"_id": 0}).sort([("model_name", 1), ("model_version", 1)]):
        refs = doc.get("artifacts", {})
        n_refs += len(refs)
        if not registry.verify(doc):
            continue
        for key, ref in sorted(refs.items()):
            problem = verify_artifact(db, ref)
            if problem:
                report.findings.append(Finding(
                    _classify(db, ref), f"{doc['model_name']} v{doc['model_version']} {key} ({doc['status']})", problem,
                ))
    for meta in db["processing_metadata"].find({"raw_file": {"$exists": True}}, {"_id": 0}).sort("batch_id", 1):
        files = [("raw file", meta["raw_file"])] + [
            (f"{name} split file", entry["file"])
            for name, entry in ((meta.get("processed") or {}).get("splits") or {}).items()
        ]
        for what, ref in files:
            n_refs += 1
            problem = verify_artifact(db, ref)
            if problem:
                report.findings.append(Finding(_classify(db, ref), f"{meta['batch_id']} {what}", problem))
    report.checked["missing artifact"] = report.checked["sha256 mismatch"] = n_refs


def _check_deployment(db: Database, deployment_path: Path, report: DoctorReport, model_name: str) -> None:
    try:
        registered: int | None = int(ModelRegistry(db).latest(model_name, statuses=("deployed",))["model_version"])
    except NotFoundError:
        registered = None
    on_disk = deployed_version(deployment_path)
    report.checked["deployment"] = 1
    if registered != on_disk:
        report.findings.append(Finding(
            "deployment", str(deployment_path),
            f"the registry's deployed {model_name} version is {registered if registered is not None else 'none'}, "
            f"the directory holds {f'version {on_disk}' if on_disk is not None else 'no valid model'}; "
            "rerun model_deployment_pipeline for the approved version",
        ))
