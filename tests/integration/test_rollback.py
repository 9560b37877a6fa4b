"""``daily-mlops rollback`` end to end on a real MongoDB-wire server (SecantusDB); ``predict`` (``--output``, flags).

Versions are registered quickly with the helpers of ``test_deployment.py`` (a
one-layer TabTransformer, a preprocessor fit on 200 real rows) and deployed
with the DAG's own :func:`deploy_version`; the rollback then goes through the
same locked, atomic deployment. The check that the next day treats the
rolled-back version as the champion calls ``load_champion`` (the evaluation
DAG's first task) directly: a full ``daily-mlops run`` takes minutes.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daily_mlops.cli import app
from daily_mlops.errors import IntegrityError, MLOpsError
from daily_mlops.loop.deployment import deploy_version, load_deployed
from daily_mlops.loop.evaluation import load_champion
from daily_mlops.loop.rollback import previous_version, rollback
from daily_mlops.ml.schema import read_csv
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings
from daily_mlops.storage.deployment_dir import deployed_version, deployment_record
from daily_mlops.storage.registry import MODEL_NAME, ModelRegistry

pytestmark = pytest.mark.integration

_HELPERS = Path(__file__).resolve().parent / "test_deployment.py"
_spec = importlib.util.spec_from_file_location("deployment_test_helpers_rollback", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # make_preprocessor, tiny_network, build_registry, register_model

DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def frame():
    """200 real rows of the bundled reference data."""
    return read_csv(BUNDLED_REFERENCE_DATA).head(200).reset_index(drop=True)


@pytest.fixture(scope="module")
def preprocessor(frame):
    return helpers.make_preprocessor(frame)


@pytest.fixture(scope="module")
def networks(preprocessor):
    """Three differently initialised one-layer networks (versions 1, 2, 3)."""
    return {v: helpers.tiny_network(preprocessor, v) for v in (1, 2, 3)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, deployment_dir=tmp_path / "deployed", _env_file=None)


@pytest.fixture
def two_deployed(real_db, preprocessor, networks, settings) -> ModelRegistry:
    """v1 deployed for DAY, then v2 deployed for NEXT_DAY (v1 retired); v3 approved, never deployed."""
    registry = helpers.build_registry(real_db, preprocessor, networks)
    target = settings.deployment_path
    assert deploy_version(registry, MODEL_NAME, 1, directory=target, logical_date=DAY)["status"] == "deployed"
    assert deploy_version(registry, MODEL_NAME, 2, directory=target, logical_date=NEXT_DAY)["status"] == "deployed"
    return registry


def _statuses(registry: ModelRegistry) -> dict[int, str]:
    return {d["model_version"]: d["status"] for d in registry.list(MODEL_NAME)}


def _cli(args: list[str], *, mongo_uri: str, db, settings: Settings, user: str = "alice", **variables: str):
    env = {"MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": db.name, "MLOPS_HOME": str(settings.home),
           "MLOPS_DEPLOYMENT_DIR": str(settings.deployment_path), "USER": user, **variables}
    return CliRunner().invoke(app, args, env=env)


def test_rollback_redeploys_the_previous_version_everywhere(two_deployed: ModelRegistry, settings: Settings, real_db):
    """After v1 then v2, rollback leaves v1 deployed: the directory, the registry and deployment_events agree.

    The rollback is dated before the deployment in place (NEXT_DAY): a DAG deployment of that
    date would be ``superseded``; the rollback wins deliberately. v1 was retired, so it moves
    retired -> approved -> deployed with the reason in its status history; v2 is retired.
    """
    registry = two_deployed
    earlier = DAY - dt.timedelta(days=10)
    event = rollback(settings, db=real_db, reason="v2 misbehaves", user="alice", today=earlier)

    target = settings.deployment_path
    assert deployed_version(target) == 1 and load_deployed(target).model_version == 1
    assert deployment_record(target)["logical_date"] == NEXT_DAY.isoformat()  # the DAG's timeline does not move
    assert _statuses(registry) == {1: "deployed", 2: "retired", 3: "approved"}
    history = [(e["status"], e["reason"]) for e in registry.get(MODEL_NAME, 1)["status_history"]]
    assert [s for s, _ in history] == ["approved", "deployed", "retired", "approved", "deployed"]
    assert history[3][1] == "rollback by alice: v2 misbehaves"
    assert history[4][1] == "rolled back from version 2 by alice: v2 misbehaves"

    stored = real_db.deployment_events.find_one({"event_type": "model_rolled_back"}, {"_id": 0})
    for doc in (event, stored):
        assert doc["status"] == "deployed" and doc["model_version"] == 1 and doc["version_in_place"] == 1
        assert (doc["from_version"], doc["to_version"]) == (2, 1)
        assert (doc["reason"], doc["user"], doc["logical_date"]) == ("v2 misbehaves", "alice", earlier.isoformat())
        assert doc["sha256"] == registry.get(MODEL_NAME, 1)["sha256"]["weights"]
    assert real_db.deployment_events.count_documents({"status": "deployed"}) == 3

    champion = load_champion(settings, db=real_db)  # the evaluation DAG's first task on the next day
    assert (champion["model_version"], champion["status"]) == (1, "deployed")


def test_the_dag_deploys_the_next_day_after_a_rollback_dated_later(two_deployed, settings, real_db):
    """A rollback recorded for a date after the DAG's days does not make the next DAG deployment superseded."""
    rollback(settings, db=real_db, user="alice", today=NEXT_DAY + dt.timedelta(days=30))
    after = deploy_version(two_deployed, MODEL_NAME, 3, directory=settings.deployment_path,
                           logical_date=NEXT_DAY + dt.timedelta(days=1))
    assert after["status"] == "deployed" and deployed_version(settings.deployment_path) == 3
    assert _statuses(two_deployed) == {1: "retired", 2: "retired", 3: "deployed"}


def test_previous_version_comes_from_status_history_without_events(two_deployed, settings, real_db):
    """With no deployment_events (e.g. deleted), the previous version is read from status_history; a second
    rollback goes back to the version the first one replaced."""
    real_db.deployment_events.delete_many({})
    assert previous_version(two_deployed, MODEL_NAME, 2) == 1
    rollback(settings, db=real_db, user="bob", today=NEXT_DAY)
    assert deployed_version(settings.deployment_path) == 1
    second = rollback(settings, db=real_db, user="bob", today=NEXT_DAY)
    assert (second["from_version"], second["to_version"]) == (1, 2)
    assert _statuses(two_deployed) == {1: "retired", 2: "deployed", 3: "approved"}


def test_rollback_refuses_a_version_with_missing_artifacts(two_deployed, settings, real_db):
    """v1's weights deleted from GridFS: IntegrityError naming v1; nothing is written (v1 stays retired)."""
    from bson import ObjectId

    ref = two_deployed.get(MODEL_NAME, 1)["artifacts"]["weights"]
    real_db["artifacts.chunks"].delete_many({"files_id": ObjectId(ref["file_id"])})
    with pytest.raises(IntegrityError, match="version 1"):
        rollback(settings, db=real_db, user="alice")
    assert _statuses(two_deployed) == {1: "retired", 2: "deployed", 3: "approved"}
    assert deployed_version(settings.deployment_path) == 2
    assert real_db.deployment_events.count_documents({"event_type": "model_rolled_back"}) == 0


def test_rollback_to_the_deployed_version_or_a_candidate_is_refused(two_deployed, settings, real_db, networks):
    """--to the version in place, and --to a candidate: MLOpsError, nothing changes."""
    helpers.register_model(two_deployed, "run-4", networks[1], 1, status="candidate")
    with pytest.raises(MLOpsError, match="already deployed"):
        rollback(settings, db=real_db, to_version=2)
    with pytest.raises(MLOpsError, match="candidate"):
        rollback(settings, db=real_db, to_version=4, force=True)
    assert _statuses(two_deployed) == {1: "retired", 2: "deployed", 3: "approved", 4: "candidate"}


def test_cli_rollback_refuses_a_rejected_version_unless_forced(two_deployed, settings, real_db, mongo_uri, networks):
    """`rollback --to 4` (rejected) exits 2 saying why and how (--force); with --force it deploys v4.

    Then `rollback --reason ...` (no --to) goes back to v2, recorded with $USER.
    """
    helpers.register_model(two_deployed, "run-4", networks[3], 1, status="candidate")
    two_deployed.set_status(MODEL_NAME, 4, "rejected", reason="F1 0.31 vs threshold 0.75")

    refused = _cli(["rollback", "--to", "4"], mongo_uri=mongo_uri, db=real_db, settings=settings)
    assert refused.exit_code == 2, refused.output
    flat = " ".join(refused.output.split())
    assert "version 4 is 'rejected' (F1 0.31 vs threshold 0.75)" in flat and "--force" in flat
    assert deployed_version(settings.deployment_path) == 2 and _statuses(two_deployed)[4] == "rejected"
    assert real_db.deployment_events.count_documents({"event_type": "model_rolled_back"}) == 0

    forced = _cli(["rollback", "--to", "4", "--force", "--reason", "hotfix"], mongo_uri=mongo_uri, db=real_db,
                  settings=settings)
    assert forced.exit_code == 0, forced.output
    assert "rolled back tabtransformer from v2 to v4" in " ".join(forced.output.split())
    assert deployed_version(settings.deployment_path) == 4
    assert _statuses(two_deployed) == {1: "retired", 2: "retired", 3: "approved", 4: "deployed"}
    assert two_deployed.get(MODEL_NAME, 4)["status_history"][-2]["reason"] == "forced rollback by alice: hotfix"

    back = _cli(["rollback", "--reason", "v4 was worse"], mongo_uri=mongo_uri, db=real_db, settings=settings,
                user="carol")
    assert back.exit_code == 0, back.output
    assert deployed_version(settings.deployment_path) == 2
    event = real_db.deployment_events.find_one({"event_type": "model_rolled_back", "model_version": 2})
    assert (event["from_version"], event["user"], event["reason"]) == (4, "carol", "v4 was worse")
    assert event["logical_date"] == dt.datetime.now(dt.UTC).date().isoformat()

    status = _cli(["status"], mongo_uri=mongo_uri, db=real_db, settings=settings)
    assert status.exit_code == 0 and "rollback" in status.output


def test_predict_writes_every_row_to_output_csv(two_deployed, settings, real_db, mongo_uri, frame, tmp_path):
    """predict --output writes row, probability, label for every row (the table prints only --limit rows)."""
    rows = tmp_path / "rows.csv"
    frame.head(7).drop(columns=[helpers.TARGET]).to_csv(rows, index=False)
    out = tmp_path / "scores" / "predictions.csv"
    result = _cli(["predict", "--input", str(rows), "--limit", "3", "--output", str(out)], mongo_uri=mongo_uri,
                  db=real_db, settings=settings)
    assert result.exit_code == 0, result.output
    assert "7 rows scored" in result.output and "tabtransformer v2 predictions" in result.output
    with out.open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [r["row"] for r in written] == [str(i) for i in range(7)]
    bundle = load_deployed(settings.deployment_path)
    expected = bundle.predict_proba(frame.head(7).drop(columns=[helpers.TARGET]))
    assert [float(r["probability"]) for r in written] == pytest.approx([float(p) for p in expected], abs=1e-6)
    assert {r["label"] for r in written} <= {"good", "bad"}
    assert all((r["label"] == "bad") == (float(r["probability"]) >= bundle.decision_threshold) for r in written)
    config = json.loads((settings.deployment_path / "current_model.json").read_text())
    assert config["model_version"] == 2


def _rows_with_unseen_and_null(frame, path: Path) -> Path:
    """Seven reference rows: purpose 'crypto' (not in the reference) in rows 0, 3 and 5, credit_amount null in row 2."""
    rows = frame.head(7).drop(columns=[helpers.TARGET]).astype({"credit_amount": float})
    rows.loc[[0, 3, 5], "purpose"] = "crypto"
    rows.loc[2, "credit_amount"] = None
    rows.to_csv(path, index=False)
    return path


def test_predict_counts_unseen_categories_and_nulls_per_column(two_deployed, settings, real_db, mongo_uri, frame,
                                                               tmp_path):
    """predict prints one line per flagged column with its row count; --output gains unseen and null per row."""
    rows = _rows_with_unseen_and_null(frame, tmp_path / "rows.csv")
    out = tmp_path / "predictions.csv"
    result = _cli(["predict", "--input", str(rows), "--output", str(out)], mongo_uri=mongo_uri, db=real_db,
                  settings=settings)
    assert result.exit_code == 0, result.output
    assert "7 rows scored" in result.output and "4 of 7 rows hold values" in result.output
    assert "purpose: 3 rows with a category the model never saw (read as unknown), e.g. 'crypto'" in result.output
    assert "credit_amount: 1 row with a null (imputed)" in result.output
    with out.open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [json.loads(r["unseen"]) if r["unseen"] else {} for r in written] == [
        {"purpose": "crypto"}, {}, {}, {"purpose": "crypto"}, {}, {"purpose": "crypto"}, {}]
    assert [json.loads(r["null"]) if r["null"] else [] for r in written] == [[], [], ["credit_amount"], [], [], [], []]

    clean = tmp_path / "clean.csv"
    frame.head(7).drop(columns=[helpers.TARGET]).to_csv(clean, index=False)
    quiet = _cli(["predict", "--input", str(clean)], mongo_uri=mongo_uri, db=real_db, settings=settings)
    assert quiet.exit_code == 0 and "never saw" not in quiet.output and "imputed" not in quiet.output


def test_strict_predict_refuses_unseen_categories_and_nulls_with_exit_2(two_deployed, settings, real_db, mongo_uri,
                                                                        frame, tmp_path):
    """With MLOPS_PREDICT_STRICT=true, predict exits 2 with one line naming the column, the value and the fix."""
    rows = _rows_with_unseen_and_null(frame, tmp_path / "rows.csv")
    out = tmp_path / "predictions.csv"
    result = _cli(["predict", "--input", str(rows), "--output", str(out)], mongo_uri=mongo_uri, db=real_db,
                  settings=settings, MLOPS_PREDICT_STRICT="true")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert "4 of 7 rows refused" in lines[0] and "row 0: column 'purpose' has the category 'crypto'" in lines[0]
    assert "credit_amount: 1 row with a null" in lines[0] and "MLOPS_PREDICT_STRICT=false" in lines[0]
    assert not out.exists()
