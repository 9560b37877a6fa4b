"""The data-quality gate (ml/quality.py) and the drift param (ml/drift_scenarios.py) on a small in-memory batch.

The reference is 400 rows of the bundled German credit data; batches are drawn
from it with replacement (a "normal" day: same categories, ranges and nulls), so
no synthesizer is fit and every test takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_mlops.errors import ConfigError
from daily_mlops.ml import drift_scenarios as drift_mod
from daily_mlops.ml.drift_scenarios import DRIFT_MODES, UNSEEN_CATEGORY, DriftPlan, apply_drift
from daily_mlops.ml.quality import BatchProfile, QualityFloors, drift_figures, drift_summary, gate, quality_figures
from daily_mlops.ml.schema import infer_schema, read_csv, schema_parts, validate_batch

REPO = Path(__file__).resolve().parents[2]

FLOORS = QualityFloors(min_diagnostic=0.9, max_unseen_share=0.05, max_null_increase=0.1)


@pytest.fixture(scope="module")
def world() -> dict:
    """Reference rows, schema, SDV-style metadata (written here: importing SDV would cost seconds) and a DriftPlan."""
    raw = read_csv(REPO / "data" / "reference" / "german_credit.csv").head(400)
    schema = infer_schema(raw, target_column="creditability", positive_label="bad")
    reference = validate_batch(raw, schema)
    features, target = schema_parts(schema)
    sdtypes = {f["name"]: "numerical" if f["kind"] == "numeric" else "categorical" for f in features}
    metadata = {"tables": {"reference": {"columns": {name: {"sdtype": sdtypes.get(name, "categorical")}
                                                     for name in reference.columns}}},
                "relationships": [], "METADATA_SPEC_VERSION": "V2"}
    plan = DriftPlan(reference, features, target_column="creditability", positive_label="bad",
                     negative_label=target["negative_label"])
    categorical = {f["name"]: sorted(reference[f["name"]].unique()) for f in features if f["kind"] == "categorical"}
    kinds = {f["name"]: f["kind"] for f in features}
    return {"reference": reference, "metadata": metadata, "plan": plan, "categorical": categorical,
            "kinds": {**kinds, "creditability": "target"}, "schema": schema}


def _batch(world: dict, n: int = 1500, seed: int = 0) -> pd.DataFrame:
    return world["reference"].sample(n, replace=True, random_state=seed).reset_index(drop=True)


def _judge(world: dict, batch: pd.DataFrame, chunk: int = 600) -> tuple[dict, dict]:
    profile = BatchProfile(world["categorical"], n_rows=len(batch), sample_rows=1000, seed=1)
    for start in range(0, len(batch), chunk):
        profile.update(batch.iloc[start:start + chunk])
    figures = quality_figures(profile, world["reference"], sdv_metadata=world["metadata"])
    return figures, gate(figures, FLOORS)


def test_a_normal_batch_passes_with_every_figure_recorded(world):
    """A batch like the reference passes; diagnostic 1.0, no unseen category, null increase 0, counted in chunks."""
    figures, verdict = _judge(world, _batch(world))
    assert verdict["status"] == "passed" and verdict["failures"] == 0
    assert figures["rows"] == 1500 and 800 <= figures["sample_rows"] <= 1200
    assert figures["diagnostic"]["score"] == 1.0 and figures["min_validity"] == 1.0
    assert set(figures["unseen_share"]) == set(world["categorical"]) and max(figures["unseen_share"].values()) == 0
    assert max(figures["null_increase"].values()) == 0.0
    assert verdict["floors"] == {"min_diagnostic": 0.9, "max_unseen_share": 0.05, "max_null_increase": 0.1}
    assert verdict["message"].endswith("checks within their floors")


def test_a_broken_batch_fails_naming_the_worst_columns(world):
    """drift=broken: the gate fails and names the first categorical column's unseen share and the null column."""
    batch = apply_drift(_batch(world), "broken", world["plan"], seed=3)
    figures, verdict = _judge(world, batch)
    first_cat, first_num = next(iter(world["plan"].categories_)), next(iter(world["plan"].ranges_))
    assert verdict["status"] == "failed" and verdict["failures"] >= 3
    assert figures["unseen_share"][first_cat] == pytest.approx(0.8, abs=0.05)
    assert figures["null_increase"][first_num] == pytest.approx(0.8, abs=0.05)
    assert figures["unseen_examples"][first_cat] == [UNSEEN_CATEGORY]
    assert figures["validity"][first_cat] < 0.3
    assert figures["max_unseen_share"] == figures["unseen_share"][first_cat]
    worst = verdict["worst"]
    assert all(w["failed"] for w in worst) and {w["column"] for w in worst} <= {first_cat, first_num}
    assert first_cat in verdict["message"] and "quality_max_unseen_share" in verdict["message"]
    assert "0.05" in verdict["message"]


def test_drift_modes_alter_the_batch_as_documented(world):
    """shift moves numbers toward their reference maximum (order kept, in range, whole numbers stay whole) and
    leaves categories; label_noise flips only positives; none changes nothing."""
    plan, batch = world["plan"], _batch(world)
    assert apply_drift(batch, "none", plan, seed=1) is batch
    shifted = apply_drift(batch, "shift", plan, seed=1)
    for num, (low, high) in plan.ranges_.items():
        moved = batch[num] + drift_mod.SHIFT_SHARE * (high - batch[num])
        expected = np.round(moved) if num in plan.whole_ else moved
        assert np.allclose(shifted[num], expected), num
        assert shifted[num].between(low, high).all() and (shifted[num] >= batch[num]).all(), num
    moved = [num for num in plan.ranges_ if shifted[num].mean() > batch[num].mean()]
    assert len(moved) >= len(plan.ranges_) // 2, moved  # a 1-2 range rounds back; the wide ranges move
    assert plan.whole_, "the bundled data has whole-number columns (duration, age): rounding is exercised"
    for cat in plan.categories_:
        assert shifted[cat].equals(batch[cat]), cat
    assert shifted["creditability"].equals(batch["creditability"])
    validate_batch(shifted, world["schema"])  # still matches the schema: the gate passes it
    assert _judge(world, shifted)[1]["status"] == "passed"

    noisy = apply_drift(batch, "label_noise", plan, seed=1)
    was, now = batch["creditability"] == "bad", noisy["creditability"] == "bad"
    assert not (now & ~was).any()  # no negative became positive
    assert (was & ~now).sum() / was.sum() == pytest.approx(drift_mod.LABEL_NOISE_SHARE, abs=0.07)
    assert noisy.drop(columns="creditability").equals(batch.drop(columns="creditability"))
    assert _judge(world, noisy)[1]["status"] == "passed"


@pytest.mark.parametrize("mode", DRIFT_MODES[1:])
def test_drift_is_seed_deterministic(world, mode):
    """The same seed gives the same rows; another seed other rows (for the modes that draw)."""
    batch = _batch(world)
    one, two = apply_drift(batch, mode, world["plan"], seed=7), apply_drift(batch, mode, world["plan"], seed=7)
    pd.testing.assert_frame_equal(one, two)
    if mode != "shift":  # shift draws nothing
        assert not one.equals(apply_drift(batch, mode, world["plan"], seed=8))


def test_an_unknown_drift_mode_is_refused(world):
    """A typo in the param is a ConfigError naming the allowed values."""
    with pytest.raises(ConfigError, match="none, shift, label_noise, broken"):
        apply_drift(_batch(world), "shfit", world["plan"], seed=1)


def test_drift_figures_show_a_shift_and_not_a_normal_day(world):
    """KSComplement/TVComplement near 1 on a normal batch, well below on a shifted one; the summary names columns."""
    normal = drift_figures(_batch(world), world["reference"], world["kinds"])
    shifted = drift_figures(apply_drift(_batch(world), "shift", world["plan"], seed=1), world["reference"],
                            world["kinds"])
    assert normal["score"] > 0.9 and shifted["score"] < normal["score"] - 0.1
    assert shifted["worst"][0]["score"] == shifted["min"] < 0.7
    line = drift_summary({**shifted, "param": "shift", "positive_rate": 0.3, "reference_positive_rate": 0.3})
    assert line.startswith("drift score") and "drift param shift" in line and shifted["worst"][0]["column"] in line
    assert drift_summary(None) == "drift not measured"


def test_metadata_sdmetrics_refuses_is_recorded_and_the_other_checks_still_gate(world):
    """A column without an sdtype makes SDMetrics raise: diagnostic records the error, unseen and null checks gate."""
    metadata = {"tables": {"reference": {"columns": {**world["metadata"]["tables"]["reference"]["columns"],
                                                     "purpose": {}}}},
                "relationships": [], "METADATA_SPEC_VERSION": "V2"}
    batch = apply_drift(_batch(world), "broken", world["plan"], seed=3)
    profile = BatchProfile(world["categorical"], n_rows=len(batch), sample_rows=1000, seed=1).update(batch)
    figures = quality_figures(profile, world["reference"], sdv_metadata=metadata)
    assert figures["diagnostic"]["score"] is None and "KeyError" in figures["diagnostic"]["error"]
    verdict = gate(figures, FLOORS)
    assert verdict["status"] == "failed" and {w["check"] for w in verdict["worst"]} <= {"unseen_share", "null_increase"}


def test_the_demo_plan_is_four_days_of_drift_and_no_threshold():
    """demo_days: four consecutive dates, drift none, shift, label_noise, broken; no per-day F1 threshold."""
    import datetime as dt

    from daily_mlops.loop.demo import demo_days

    plan = demo_days(dt.date(2026, 11, 1))
    assert [day.isoformat() for day, _, _ in plan] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert [conf for _, conf, _ in plan] == [{"drift": mode} for mode in DRIFT_MODES]
    assert [why.split(":")[0] for _, _, why in plan] == [f"drift {mode}" for mode in DRIFT_MODES]
    # what the drift does to the batch, never the outcome it is expected to have
    assert not any(word in why for _, _, why in plan for word in ("deployed", "alert", "passes", "beats"))


def test_the_demo_header_says_how_an_auto_floor_is_resolved(settings):
    """With ``auto`` the header, printed before bootstrap resolves it, says what the floor will be, not a bare
    'auto'."""
    from daily_mlops.loop.demo import demo_floor

    auto = demo_floor(settings.model_copy(update={"f1_threshold": "auto", "f1_tolerance": 0.05}))
    assert "held-out F1 minus f1_tolerance 0.05, resolved at bootstrap" in auto
    assert demo_floor(settings.model_copy(update={"f1_threshold": 0.5})).startswith("F1 floor 0.5 (MLOPS_F1_THRESHOLD)")
