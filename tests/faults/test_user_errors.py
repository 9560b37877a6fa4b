"""Faults a user causes (the user-error rows of the fault table): one line, exit 2, nothing run or written.

Row 10: an F1 threshold of NaN (or out of range) through ``MLOPS_F1_THRESHOLD``, ``--f1-threshold`` or the
evaluation DAG's param ``f1_threshold``. Row 11: ``run`` before ``bootstrap``. Row 12: a reference CSV naming
a column twice. Row 13: a path argument that is a directory. Row 14: ``predict`` with a bad ``--input``.
Row 15: ``predict ... | head`` (the reader stops early).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daily_mlops.errors import ConfigError, MLOpsError, SchemaError
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "daily-mlops"
#: A URI nothing answers on: a command that reaches for the database fails slowly (10 s) and with another message.
UNREACHABLE_MONGO = "mongodb://127.0.0.1:9/"


@pytest.fixture
def clean_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/conftest.py's clean_env, plus MLOPS_HOME a temporary directory (no deployed model)."""
    monkeypatch.setenv("MLOPS_HOME", str(clean_env))
    return clean_env


def _subprocess_env(home: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    return {**env, "MLOPS_HOME": str(home), **variables}


def _cli(*args: str, env: dict[str, str] | None = None):
    from daily_mlops.cli import app

    return CliRunner().invoke(app, list(args), env=env)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _one_error_line(output: str) -> str:
    """The output is exactly one non-empty line, an ``error:`` line without a traceback."""
    lines = _lines(output)
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


# --------------------------------------------------------------------------- row 10: F1 threshold
def test_row10_f1_threshold_variable_uses_the_shared_range(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_F1_THRESHOLD takes the DAG param's range 0..2: NaN, inf, negative and above 2 refused; 1.5 accepted."""
    for bad in ("nan", "inf", "-0.1", "2.5"):
        monkeypatch.setenv("MLOPS_F1_THRESHOLD", bad)
        with pytest.raises(ConfigError) as info:
            load_settings()
        assert "MLOPS_F1_THRESHOLD" in str(info.value) and "\n" not in str(info.value), bad
    for good, expected in (("1.5", 1.5), ("2", 2.0), ("0", 0.0)):
        monkeypatch.setenv("MLOPS_F1_THRESHOLD", good)
        assert load_settings().f1_threshold == expected  # above 1: the documented forced-alert setting


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "3"])
def test_row10_f1_threshold_option_is_refused_before_anything_runs(clean_env: Path, value: str) -> None:
    """`run --f1-threshold nan` exits 2 with one line naming --f1-threshold, before touching the database.

    MLOPS_MONGO_URI points at a port nothing listens on: a command that got as far as the database would
    print a different error (after a 10 s timeout) instead of naming the option.
    """
    started = time.perf_counter()
    result = _cli("run", "--date", "2026-03-01", "--f1-threshold", value,
                  env={"MLOPS_MONGO_URI": UNREACHABLE_MONGO})
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert "--f1-threshold" in line and "0 to 2" in line
    assert time.perf_counter() - started < 8  # the 10 s server-selection timeout was never waited for


def test_run_drift_option_is_refused_before_anything_runs(clean_env: Path) -> None:
    """`run --drift shfit` exits 2 with one line naming --drift and the four modes, before touching the database."""
    result = _cli("run", "--date", "2026-03-01", "--drift", "shfit", env={"MLOPS_MONGO_URI": UNREACHABLE_MONGO})
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert "--drift='shfit'" in line and "none, shift, label_noise, broken" in line


def test_row10_f1_threshold_param_is_checked_by_the_evaluate_model_task(settings: Settings, mock_db) -> None:
    """The evaluation DAG's evaluate_model task refuses a NaN param naming it, and writes nothing.

    The DAG param's JSON schema cannot refuse NaN (every comparison with NaN is false), so the task that
    first reads the param checks it with the same function as MLOPS_F1_THRESHOLD and --f1-threshold.
    """
    import datetime as dt

    from daily_mlops.loop.evaluation import evaluate_model

    for bad in (math.nan, math.inf, -0.1, 3.0):
        with pytest.raises(ConfigError) as info:
            evaluate_model(settings, model_version=1, logical_date=dt.date(2026, 3, 1), f1_threshold=bad, db=mock_db)
        assert str(info.value).startswith("DAG param f1_threshold=")
    assert mock_db.performance_metrics.count_documents({}) == 0
    assert mock_db.evaluation_events.count_documents({}) == 0


_PARAM_PROBE = """
import json, runpy, sys
dag = runpy.run_path(sys.argv[1], run_name="param_probe")["model_evaluation_pipeline"]()
param = dag.params.get_param("f1_threshold")
values = [0.0, 0.75, 1.5, 2.0, 2.5, 3.0, -0.1, "auto", "automatic", "0.5"]
print("ACCEPTED=" + json.dumps({str(v): param.resolve(v, suppress_exception=True) is not None for v in values}))
print("SCHEMA=" + json.dumps(param.schema))
"""


def test_row10_f1_threshold_param_schema_refuses_out_of_range(tmp_path: Path) -> None:
    """The DAG file's f1_threshold Param (loaded by Airflow in a fresh interpreter) refuses 3.0 and -0.1, takes 0..2
    and the string 'auto' (no other string)."""
    env = _subprocess_env(tmp_path, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run([sys.executable, "-c", _PARAM_PROBE, str(REPO / "dags" / "model_evaluation_pipeline.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = {line.split("=", 1)[0]: json.loads(line.split("=", 1)[1])
           for line in done.stdout.splitlines() if line.startswith(("ACCEPTED=", "SCHEMA="))}
    assert out["ACCEPTED"] == {"0.0": True, "0.75": True, "1.5": True, "2.0": True,
                               "2.5": False, "3.0": False, "-0.1": False, "auto": True, "automatic": False,
                               "0.5": False}
    assert (out["SCHEMA"]["minimum"], out["SCHEMA"]["maximum"]) == (0, 2)


# --------------------------------------------------------------------------- row 11: run before bootstrap
def test_row11_run_before_bootstrap_is_one_line_and_exit_2(mongo_uri: str, tmp_path: Path) -> None:
    """`daily-mlops run` on an empty database: exit 2, one line saying to run bootstrap, no Airflow run.

    A real subprocess against the session's MongoDB-wire server. No Airflow work is attempted: the local
    Airflow home (MLOPS_HOME/airflow, created before the first DAG run) never appears.
    """
    db_name = f"empty_{uuid.uuid4().hex[:8]}"
    env = _subprocess_env(tmp_path, MLOPS_MONGO_URI=mongo_uri, MLOPS_MONGO_DB=db_name)
    done = subprocess.run([str(CLI), "run", "--date", "2026-03-01"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done.stdout)
    assert "daily-mlops bootstrap" in line and repr(db_name) in line
    assert "Traceback" not in done.stderr and "FAILED:" not in done.stdout
    assert not (tmp_path / "airflow").exists()


# --------------------------------------------------------------------------- row 12: duplicated columns
def test_row12_reference_csv_with_a_column_named_twice_is_refused(
    clean_env: Path, mongo_uri: str, real_db
) -> None:
    """A reference CSV naming `age_in_years` twice: bootstrap exits 2 naming it; nothing is registered.

    pandas would read the second one as `age_in_years.1` and training would go on.
    """
    lines = BUNDLED_REFERENCE_DATA.read_text(encoding="utf-8").splitlines()[:101]
    lines[0] = lines[0].replace("duration_in_month", "age_in_years")
    reference = clean_env / "twice.csv"
    reference.write_text("\n".join(lines) + "\n", encoding="utf-8")

    from daily_mlops.ml.schema import read_csv

    with pytest.raises(SchemaError, match="age_in_years") as info:
        read_csv(reference)
    assert "twice.csv" in str(info.value) and "age_in_years.1" not in str(info.value)

    small = {"MLOPS_DAILY_ROWS": "200", "MLOPS_NUM_LAYERS": "1", "MLOPS_PRETRAIN_EPOCHS": "0",
             "MLOPS_FINETUNE_EPOCHS": "1"}  # were training to start anyway, it would be short
    result = _cli("bootstrap", env={"MLOPS_REFERENCE_DATA": str(reference), "MLOPS_MONGO_URI": mongo_uri,
                                    "MLOPS_MONGO_DB": real_db.name, **small})
    assert result.exit_code == 2, result.output
    errors = [line for line in _lines(result.output) if "age_in_years" in line]
    assert len(errors) == 1 and errors[0].startswith("error: MLOPS_REFERENCE_DATA=")
    assert "Traceback" not in result.output
    assert real_db.model_metadata.count_documents({}) == 0


# --------------------------------------------------------------------------- row 13: a directory
def test_row13_a_directory_is_called_a_directory(clean_env: Path, mongo_uri: str, real_db) -> None:
    """read_csv on a directory says "is a directory" and names the path and its source; bootstrap exits 2 saying so."""
    from daily_mlops.ml.schema import read_csv

    folder = clean_env / "reference"
    folder.mkdir()
    with pytest.raises(MLOpsError) as info:
        read_csv(folder)
    assert "is a directory" in str(info.value) and str(folder) in str(info.value)
    assert "does not exist" not in str(info.value)
    with pytest.raises(MLOpsError, match="^MLOPS_REFERENCE_DATA=.* is a directory"):
        read_csv(folder, what="MLOPS_REFERENCE_DATA")

    result = _cli("bootstrap", env={"MLOPS_REFERENCE_DATA": str(folder), "MLOPS_MONGO_URI": mongo_uri,
                                    "MLOPS_MONGO_DB": real_db.name})
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert "MLOPS_REFERENCE_DATA" in line and "is a directory" in line
    assert real_db.model_metadata.count_documents({}) == 0


# --------------------------------------------------------------------------- row 14: predict --input
@pytest.mark.parametrize(("kind", "says"), [("missing", "does not exist"), ("empty", "is empty"),
                                            ("directory", "is a directory")])
def test_row14_predict_names_the_input_option(clean_env: Path, kind: str, says: str) -> None:
    """predict with a missing, empty or directory --input: exit 2, one line naming --input and the path.

    No model is deployed under MLOPS_HOME: the user's file is checked first, so its error is the one shown.
    """
    path = clean_env / ("rows" if kind == "directory" else "rows.csv")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    result = _cli("predict", "--input", str(path))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert f"--input={path}" in line and says in line
    assert "MLOPS_REFERENCE_DATA" not in line


# --------------------------------------------------------------------------- row 15: | head
def _deploy_untrained_model(directory: Path) -> None:
    """Write a deployment (the three files the deployment DAG writes) of a small, untrained TabTransformer.

    Scores do not matter here, only that ``predict`` gets as far as printing; the preprocessor is fit on
    200 real rows and the files are written by the project's own deployment code.
    """
    import torch

    from daily_mlops.checksums import sha256_hex
    from daily_mlops.ml.bundle import deployment_config
    from daily_mlops.ml.model_io import state_dict_to_bytes
    from daily_mlops.ml.network import TabTransformer
    from daily_mlops.ml.preprocessing import TabularPreprocessor
    from daily_mlops.ml.schema import infer_schema, read_csv
    from daily_mlops.storage.deployment_dir import write_deployment

    frame = read_csv(BUNDLED_REFERENCE_DATA).head(200)
    pre = TabularPreprocessor(infer_schema(frame, target_column="creditability", positive_label="bad")).fit(frame)
    torch.manual_seed(0)
    net = TabTransformer(cardinalities=pre.cardinalities_, n_numeric=pre.n_numeric_, d_model=8, nhead=2,
                         num_layers=1, dim_feedforward=16, dropout=0.1).eval()
    weights, pre_bytes = state_dict_to_bytes(net), pre.to_bytes()
    doc = {"model_name": "tabtransformer", "model_version": 1, "architecture": net.config,
           "decision_threshold": 0.5, "sha256": {"weights": sha256_hex(weights)}}
    pre_doc = {"model_version": 1, "sha256": {"preprocessor": sha256_hex(pre_bytes)}}
    write_deployment(directory, weights=weights, config=deployment_config(doc, pre_doc, pre_bytes), model_version=1,
                     logical_date="2026-03-01")
    assert base64.b64decode(json.loads((directory / "current_model.json").read_text())["preprocessor"]) == pre_bytes


def test_row15_predict_into_head_exits_0_quietly(tmp_path: Path) -> None:
    """`daily-mlops predict --input rows.csv --limit 5000 | head -1` in a real shell: predict exits 0, no message.

    5,000 table rows (about 170 kB) are far more than a pipe holds (64 kB), so once head has read its
    line and exited, predict's next write meets a closed pipe (EPIPE) every time. The deployed model is
    a small untrained one written by the test (see _deploy_untrained_model).
    """
    deployed = tmp_path / "deployed"
    _deploy_untrained_model(deployed)
    body = BUNDLED_REFERENCE_DATA.read_text(encoding="utf-8").splitlines()
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(body[:1] + body[1:] * 5) + "\n", encoding="utf-8")  # 5,000 rows
    env = _subprocess_env(tmp_path, MLOPS_DEPLOYMENT_DIR=str(deployed), MLOPS_MONGO_URI=UNREACHABLE_MONGO)
    script = '"$0" predict --input "$1" --limit 5000 | head -1; exit "${PIPESTATUS[0]}"'
    done = subprocess.run(["bash", "-c", script, str(CLI), str(rows)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.splitlines()) == 1 and "tabtransformer v1" in done.stdout
    for noise in ("Traceback", "BrokenPipe", "Exception ignored", "error"):
        assert noise not in done.stderr, done.stderr[-3000:]
