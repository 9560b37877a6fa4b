"""Unit tests for f1_threshold 'auto': the floor file bootstrap writes, its parse-time reading, run-time resolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from daily_mlops.errors import ConfigError
from daily_mlops.loop.f1_floor import floor_record, resolve_floor, write_floor_file
from daily_mlops.settings.parse_time import read_floor_file


def test_floor_file_round_trip_keeps_other_families(tmp_path: Path) -> None:
    """write_floor_file adds one family's entry and keeps the others; read_floor_file returns it, None when absent
    or unreadable."""
    write_floor_file(tmp_path, "tabtransformer", 1, floor_record(0.45, 0.05))
    write_floor_file(tmp_path, "copy", 1, floor_record(0.60, 0.10))
    entry = read_floor_file(tmp_path, "tabtransformer")
    assert entry["bootstrap_f1"] == 0.45 and entry["f1_threshold"] == pytest.approx(0.40)
    assert entry["model_version"] == 1 and read_floor_file(tmp_path, "copy")["f1_tolerance"] == 0.10
    assert read_floor_file(tmp_path, "other") is None and read_floor_file(tmp_path / "nowhere", "copy") is None
    (tmp_path / "f1_floor.json").write_text("{not json")
    assert read_floor_file(tmp_path, "tabtransformer") is None


def test_param_description_shows_the_resolved_auto_floor(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At parse time (no database), f1_threshold 'auto' is described with the value bootstrap recorded under
    MLOPS_HOME, minus the f1_tolerance in effect; without the file the description names `daily-mlops status`."""
    from daily_mlops.orchestration.dags import day_params
    from daily_mlops.settings.parse_time import parse_time_settings

    monkeypatch.setenv("MLOPS_HOME", str(clean_env))
    before = day_params(parse_time_settings(), ("f1_threshold",))["f1_threshold"]
    assert before.value == "auto" and "daily-mlops status" in before.description
    write_floor_file(clean_env, "tabtransformer", 1, floor_record(0.4483, 0.05))
    monkeypatch.setenv("MLOPS_F1_TOLERANCE", "0.1")
    after = day_params(parse_time_settings(), ("f1_threshold",))["f1_threshold"]
    assert "It resolves to 0.3483" in after.description and "held-out F1 0.4483" in after.description


def test_evaluate_model_with_auto_before_bootstrap_names_the_fix(settings, mock_db) -> None:
    """'auto' without a bootstrapped version is a ConfigError saying to bootstrap or set a number; nothing written."""
    from daily_mlops.loop.evaluation import evaluate_model

    with pytest.raises(ConfigError, match="daily-mlops bootstrap"):
        evaluate_model(settings, model_version=1, logical_date=dt.date(2026, 3, 1), f1_threshold="auto", db=mock_db)
    assert mock_db.performance_metrics.count_documents({}) == 0


def test_resolve_floor_reads_the_bootstrap_version(settings, mock_db) -> None:
    """The tasks resolve 'auto' from the bootstrap version's f1_threshold_auto (else its metrics.test.f1) and the
    tolerance in effect; a number is used as it is."""
    mock_db.model_metadata.insert_one({"model_name": "tabtransformer", "model_version": 1, "run_key": "bootstrap",
                                       "metrics": {"test": {"f1": 0.5}}})
    auto = resolve_floor(settings, mock_db, "auto", "DAG param f1_threshold")
    assert auto["f1_threshold"] == pytest.approx(0.45) and auto["bootstrap_f1"] == 0.5
    mock_db.model_metadata.update_one({"model_version": 1}, {"$set": {"f1_threshold_auto": {"bootstrap_f1": 0.48}}})
    assert resolve_floor(settings, mock_db, "auto", "X")["f1_threshold"] == pytest.approx(0.43)
    assert resolve_floor(settings, mock_db, 1.5, "X") == {"f1_threshold": 1.5, "mode": "fixed"}
