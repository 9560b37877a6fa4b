"""Unit tests of the stored copula parameters: a synthesizer is rebuilt without refitting its copulas.

The record holds each copula's ``GaussianMultivariate.to_dict()`` as JSON; ``from_reference`` refits only
SDV's preprocessing and rebuilds the copulas after checking every univariate ``type`` against an allow-list.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from copulas.univariate import BetaUnivariate
from synthesis_tables import labelled_reference

from daily_mlops.errors import UnsafeArtifactError
from daily_mlops.ml._copula_params import ALLOWED_UNIVARIATES, COPULA_FORMAT
from daily_mlops.ml.synthesis import Synthesizer

DAY = "2026-11-05"


def _reference(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A small table whose label depends on x and c (25% positives): :func:`synthesis_tables.labelled_reference`."""
    return labelled_reference(n, seed)


@pytest.fixture(scope="module")
def model() -> Synthesizer:
    return Synthesizer(seed=3, target_column="label").fit(_reference())


@pytest.fixture(scope="module")
def stored(model: Synthesizer) -> tuple[bytes, str, dict]:
    """What the registry keeps: the reference CSV, its sha256 and the JSON record (as stored and read back)."""
    data = model.reference_csv()
    return data, hashlib.sha256(data).hexdigest(), json.loads(json.dumps(model.storage_record()))


@pytest.fixture
def beta_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of BetaUnivariate._fit (SciPy's beta fit: the cost the stored parameters avoid)."""
    calls: list[int] = []
    original = BetaUnivariate._fit

    def counted(self, X):  # noqa: N803 (copulas' name)
        calls.append(len(X))
        return original(self, X)

    monkeypatch.setattr(BetaUnivariate, "_fit", counted)
    return calls


def test_record_holds_each_class_copula_as_json(stored: tuple[bytes, str, dict]) -> None:
    """copula_params has one GaussianMultivariate dict per class, its univariates typed from the allow-list."""
    _, _, record = stored
    params = record["copula_params"]
    assert params["format"] == COPULA_FORMAT and len(params["models"]) == 2
    for model in params["models"]:
        n = len(model["columns"])
        assert n >= 3 and len(model["univariates"]) == n and np.asarray(model["correlation"]).shape == (n, n)
        assert {u["type"] for u in model["univariates"]} <= set(ALLOWED_UNIVARIATES)
        assert all(isinstance(v, int | float) for u in model["univariates"] for k, v in u.items() if k != "type")


def test_restored_synthesizer_samples_the_refit_rows_without_fitting_copulas(
    model: Synthesizer, stored: tuple[bytes, str, dict], beta_fits: list[int]
) -> None:
    """With copula_params, no beta distribution is fit, and each class's copula samples exactly the rows of
    a refit one (and of the original) for the same seed and logical date; the batches are equal too."""
    data, digest, record = stored
    restored = Synthesizer.from_reference(data, sha256=digest, record=record)
    assert beta_fits == []
    refit = Synthesizer.from_reference(data, sha256=digest, record={k: v for k, v in record.items()
                                                                     if k != "copula_params"})
    assert len(beta_fits) > 0  # the old record refits
    assert restored.classes_ == refit.classes_ == ["no", "yes"] and restored.class_rates_ == refit.class_rates_
    for i in range(2):
        samples = []
        for synth in (restored, refit, model):
            copula = synth.class_synthesizers_[i]
            copula.reset_sampling()
            copula._set_random_state(1234 + i)
            sampled = copula.sample(300)
            samples.append(next(iter(sampled.values())) if isinstance(sampled, dict) else sampled)
        pd.testing.assert_frame_equal(samples[0], samples[1], check_exact=True)
        pd.testing.assert_frame_equal(samples[0], samples[2], check_exact=True)
    for synth in (refit, model):
        pd.testing.assert_frame_equal(restored.generate(1000, seed=9, logical_date=DAY),
                                      synth.generate(1000, seed=9, logical_date=DAY), check_exact=True)


def test_single_copula_record_is_restored_too(beta_fits: list[int]) -> None:
    """Without target_column (one copula on all columns), the stored parameters also rebuild it exactly."""
    single = Synthesizer(seed=4).fit(_reference(120, seed=1))
    data = single.reference_csv()
    record = json.loads(json.dumps(single.storage_record()))
    assert len(record["copula_params"]["models"]) == 1
    beta_fits.clear()
    restored = Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=record)
    assert beta_fits == []
    pd.testing.assert_frame_equal(restored.generate(400, seed=2, logical_date=DAY),
                                  single.generate(400, seed=2, logical_date=DAY), check_exact=True)


@pytest.mark.parametrize("hostile", ["os.system", "builtins.eval", "no_such_module_xq7.Thing",
                                     "copulas.univariate.Univariate", "copulas.univariate.base.Univariate",
                                     "", 7, None, ["copulas.univariate.beta.BetaUnivariate"]])
def test_a_type_outside_the_allow_list_is_refused_before_any_import(
    stored: tuple[bytes, str, dict], hostile: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A univariate type naming os.system, eval, an unknown module or a non-allow-listed copulas class (or not
    a string) raises UnsafeArtifactError naming the field; no module is imported for it and os.system and
    eval are never called."""
    import builtins
    import os

    data, digest, record = stored
    bad = copy.deepcopy(record)
    bad["copula_params"]["models"][1]["univariates"][0]["type"] = hostile
    called: list[str] = []
    imported: list[str] = []
    real_import_module = importlib.import_module
    monkeypatch.setattr(os, "system", lambda *a, **k: called.append("os.system"))
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: called.append("eval"))
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: imported.append(name) or real_import_module(name, *a))
    with pytest.raises(UnsafeArtifactError) as excinfo:
        Synthesizer.from_reference(data, sha256=digest, record=bad)
    message = str(excinfo.value)
    assert "copula_params.models[1].univariates[0].type" in message and "ALLOWED_UNIVARIATES" in message
    assert "bootstrap" in message  # the fix
    assert called == [] and imported == []
    assert "no_such_module_xq7" not in sys.modules


def test_a_planted_module_named_by_the_record_is_never_imported(
    stored: tuple[bytes, str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module on sys.path that would write a marker when imported, named as a univariate type, stays unloaded."""
    marker = tmp_path / "imported.marker"
    (tmp_path / "planted_copula_xq7.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Evil:\n    pass\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    data, digest, record = stored
    bad = copy.deepcopy(record)
    bad["copula_params"]["models"][0]["univariates"][2]["type"] = "planted_copula_xq7.Evil"
    with pytest.raises(UnsafeArtifactError, match=r"models\[0\]\.univariates\[2\]\.type"):
        Synthesizer.from_reference(data, sha256=digest, record=bad)
    assert not marker.exists() and "planted_copula_xq7" not in sys.modules


@pytest.mark.parametrize("field, change", [
    ("copula_params.format", lambda p: p.update(format="pickle")),
    ("copula_params.models", lambda p: p["models"].pop()),
    ("copula_params.models[0].type", lambda p: p["models"][0].update(type="os.system")),
    ("copula_params.models[0].correlation", lambda p: p["models"][0]["correlation"].pop()),
    ("copula_params.models[0].correlation", lambda p: p["models"][0]["correlation"][0].__setitem__(0, "1")),
    ("copula_params.models[0].univariates[1]", lambda p: p["models"][0]["univariates"][1].update(__class__=1.0)),
    ("copula_params.models[0].univariates[1]", lambda p: p["models"][0]["univariates"][1].pop("scale")),
    ("copula_params.models[0].univariates[1]", lambda p: p["models"][0]["univariates"][1].update(a="1.0")),
    ("copula_params columns", lambda p: p["models"][0]["columns"].reverse()),
])
def test_malformed_parameters_are_refused(stored: tuple[bytes, str, dict], field: str, change) -> None:
    """A wrong format, copula count, multivariate type, matrix shape, parameter set or column order raises
    UnsafeArtifactError naming the field."""
    data, digest, record = stored
    bad = copy.deepcopy(record)
    change(bad["copula_params"])
    with pytest.raises(UnsafeArtifactError) as excinfo:
        Synthesizer.from_reference(data, sha256=digest, record=bad)
    assert field in str(excinfo.value)


# SDV's own advice when a class's rows do not span the metadata's numeric range (the fit silences it, this test
# calls SDV's preprocess directly)
@pytest.mark.filterwarnings("ignore:The training data does not cover the full range:UserWarning:sdv.single_table.base")
def test_restore_knows_the_processed_columns_without_transforming_the_rows() -> None:
    """A table with nulls, dates and booleans: the columns the restore takes from the fitted preprocessing (without
    transforming the rows) are exactly those SDV's ``preprocess`` returns, for each class, and the restored
    synthesizer samples the original's rows."""
    from sdv.single_table import GaussianCopulaSynthesizer

    from daily_mlops.ml._copula_params import _fit_preprocessing

    rng = np.random.default_rng(5)
    frame = _reference(200, seed=2)
    frame["x"] = frame["x"].where(rng.random(200) > 0.2)
    frame["when"] = pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, 200), unit="D")
    frame["flag"] = rng.random(200) < 0.3
    original = Synthesizer(seed=6, target_column="label").fit(frame)
    for label, copula in zip(original.classes_, original.class_synthesizers_, strict=True):
        rows = {"reference": original.reference_[original.reference_["label"] == label].drop(columns=["label"])
                .reset_index(drop=True)}
        processed = GaussianCopulaSynthesizer(copy.deepcopy(copula.metadata)).preprocess(rows)
        columns, n_rows = _fit_preprocessing(GaussianCopulaSynthesizer(copy.deepcopy(copula.metadata)), rows)
        assert columns == list(processed["reference"].columns) and n_rows == len(rows["reference"])
    data = original.reference_csv()
    record = json.loads(json.dumps(original.storage_record()))
    restored = Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=record)
    pd.testing.assert_frame_equal(restored.generate(500, seed=8, logical_date=DAY),
                                  original.generate(500, seed=8, logical_date=DAY), check_exact=True)
