"""``daily-mlops report`` and ``daily-mlops models card`` against a real MongoDB-wire server.

The collections are seeded through the storage functions the loop itself
writes with (registry, performance metrics, alerts, deployments, processing
metadata), with the three-day story of the demo: the champion passes, then an
alert after three failed attempts, then a challenger is approved and deployed.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daily_mlops.loop.report import model_card, write_report
from daily_mlops.reporting import FIGURE_IDS
from daily_mlops.settings import BUNDLED_REFERENCE_DATA, Settings
from daily_mlops.storage.alerts import raise_performance_alert
from daily_mlops.storage.batches import store_processing_metadata
from daily_mlops.storage.events import record_deployment, record_evaluation_event, record_performance
from daily_mlops.storage.registry import MODEL_NAME, PREPROCESSOR_NAME, SYNTHESIZER_NAME, ModelRegistry

pytestmark = pytest.mark.integration

DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
SIGNATURE = {
    "inputs": {
        "x_cat": {"shape": [None, 2], "dtype": "int64", "features": ["purpose", "personal_status_and_sex"],
                  "cardinalities": [11, 5], "unknown_index": 0},
        "x_num": {"shape": [None, 2], "dtype": "float32", "features": ["credit_amount", "age_in_years"]},
    },
    "target": {"column": "creditability", "positive_label": "bad", "labels": ["good", "bad"], "shape": [None],
               "dtype": "int64"},
    "output": {"shape": [None], "dtype": "float32", "meaning": "score (logit) that creditability == 'bad'"},
}
ARCHITECTURE = {"cardinalities": [11, 5], "n_numeric": 2, "d_model": 32, "nhead": 4, "num_layers": 6,
                "dim_feedforward": 64, "dropout": 0.3, "n_classes": 2, "projection_dim": 32}
MAX_BYTES = 5_000_000
FLOORS = {"min_diagnostic": 0.9, "max_unseen_share": 0.05, "max_null_increase": 0.1}
#: Without the gate's figures the report has no gate strip and no drift heatmap (the batch's positive rate remains).
NO_GATE = [i for i in FIGURE_IDS if i not in ("fig-gate", "fig-drift")]


def _metrics(f1: float, roc_auc: float, n: int = 1500, matrix=((597, 463), (173, 267))) -> dict:
    (tn, fp), (fn, tp) = matrix
    return {"f1": f1, "roc_auc": roc_auc, "precision": 0.37, "recall": 0.61, "accuracy": 0.58,
            "confusion_matrix": [[tn, fp], [fn, tp]], "n_samples": n, "positive_rate": 0.2933,
            "predicted_positive_rate": 0.49, "decision_threshold": 0.498}


def _register(reg: ModelRegistry, run_key: str, *, parent: int | None, day: str | None, metrics: dict,
              status: str, attempt: int | None = None) -> dict:
    return reg.register(
        MODEL_NAME, run_key=run_key, artifacts={"weights": f"weights of {run_key}".encode()}, status=status,
        parent_version=parent, metrics=metrics, n_parameters=58946, signature=SIGNATURE, logical_date=day,
        trained_on=["batch-bootstrap"] + ([f"batch-{day}"] if parent else []),
        evaluated_on=[f"batch-{day}"] if parent else ["batch-bootstrap", "reference"],
        hyperparameters={"d_model": 32, "seed": 42}, extra={
            "architecture": ARCHITECTURE, "decision_threshold": 0.498, "preprocessor_version": 1,
            "synthesizer_version": 1, "split_sizes": {"pretrain": 7000, "finetune": 1500, "test": 1500},
            **({"attempt": attempt} if attempt else {})},
    )


def _deploy(db, reg: ModelRegistry, version: int, day: dt.date, previous: int | None) -> None:
    if previous is not None:
        reg.set_status(MODEL_NAME, previous, "retired", reason=f"replaced by version {version}",
                       logical_date=day.isoformat())
    reg.set_status(MODEL_NAME, version, "deployed", reason="deployed", logical_date=day.isoformat())
    record_deployment(db, {"event_type": "model_deployed", "model_name": MODEL_NAME, "model_version": version,
                           "status": "deployed", "logical_date": day.isoformat(), "sha256": "0" * 64,
                           "deployment_path": "/tmp/deployed/current_model.pth", "previous_version": previous})


def _seed(db, *, quality: bool) -> None:
    """The demo's three days, written through the storage functions."""
    reg = ModelRegistry(db)
    reg.register(SYNTHESIZER_NAME, run_key="bootstrap", artifacts={"synthesizer": b"csv"}, status="approved",
                 extra={"n_reference_rows": 1000})
    reg.register(PREPROCESSOR_NAME, run_key="bootstrap", artifacts={"preprocessor": b"skops"}, status="approved",
                 signature=SIGNATURE)
    test, real = _metrics(0.4230, 0.5746, matrix=((583, 484), (187, 246))), _metrics(0.5757, 0.7368, n=1000)
    _register(reg, "bootstrap", parent=None, day="1970-01-01", metrics={**test, "test": test, "reference": real},
              status="approved")
    for i, day in enumerate(DAYS):
        doc = {"n_rows": 10000, "positive_rate": 0.295 - 0.001 * i, "status": "ready",
               "splits": {"pretrain": 7000, "finetune": 1500, "test": 1500}}
        if quality:  # the gate's verdict and figures (daily_mlops.loop.quality.check_data_quality)
            doc["quality"] = {"status": "passed", "floors": FLOORS, "failures": 0, "message": "all checks within",
                              "worst": [{"column": "purpose", "check": "unseen_share", "value": 0.0, "floor": 0.05,
                                         "failed": False}],
                              "min_validity": 1.0, "max_unseen_share": 0.0, "max_null_increase": 0.01 * i}
            doc["drift"] = {"columns": {"age_in_years": 0.95 - 0.2 * i, "purpose": 0.97},
                            "worst": [{"column": "age_in_years", "score": 0.95 - 0.2 * i, "metric": "KSComplement"}],
                            "positive_rate": 0.29, "reference_positive_rate": 0.3}
        store_processing_metadata(db, doc, logical_date=day)

    def evaluate(day, version, attempt, f1, threshold):
        record_performance(db, logical_date=day, model_name=MODEL_NAME, model_version=version,
                           metrics=_metrics(f1, 0.60 + 0.01 * attempt), attempt=attempt, f1_threshold=threshold,
                           batch_id=f"batch-{day}", run_id=f"manual__{day}")

    evaluate(DAYS[0], 1, 0, 0.4609, 0.40)
    record_evaluation_event(db, "evaluation_passed", logical_date=DAYS[0], model_version=None, approved_version=1,
                            f1=0.4609, f1_threshold=0.40, retrain_attempts=0)
    _deploy(db, reg, 1, DAYS[0], None)

    evaluate(DAYS[1], 1, 0, 0.4565, 0.75)
    for attempt, f1 in ((1, 0.4788), (2, 0.4701), (3, 0.4655)):
        v = _register(reg, f"retrain:{DAYS[1]}:attempt-{attempt}", parent=1, day=DAYS[1].isoformat(),
                      metrics={**_metrics(f1, 0.63), "test": _metrics(f1, 0.63)}, status="candidate",
                      attempt=attempt)["model_version"]
        reg.set_status(MODEL_NAME, v, "rejected", reason="below the floor", logical_date=DAYS[1].isoformat())
        evaluate(DAYS[1], v, attempt, f1, 0.75)
    raise_performance_alert(db, logical_date=DAYS[1], f1_score=0.4788, f1_threshold=0.75, retrain_attempts=3,
                            model_versions_tried=[1, 2, 3, 4])

    evaluate(DAYS[2], 1, 0, 0.4322, 0.45)
    v5 = _register(reg, f"retrain:{DAYS[2]}:attempt-1", parent=1, day=DAYS[2].isoformat(),
                   metrics={**_metrics(0.4564, 0.6123), "test": _metrics(0.4564, 0.6123)}, status="candidate",
                   attempt=1)["model_version"]
    reg.set_status(MODEL_NAME, v5, "approved", reason="F1 above the floor", logical_date=DAYS[2].isoformat())
    evaluate(DAYS[2], v5, 1, 0.4564, 0.45)
    record_evaluation_event(db, "evaluation_passed", logical_date=DAYS[2], model_version=None, approved_version=v5,
                            f1=0.4564, f1_threshold=0.45, retrain_attempts=1)
    _deploy(db, reg, v5, DAYS[2], 1)


class _Page(HTMLParser):
    """What the tests look at: plot divs, script sources, the days table and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.plot_divs: list[str] = []
        self.script_srcs: list[str] = []
        self.external: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._in_days = self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plot_divs.append(a.get("id"))
        if tag == "script" and a.get("src"):
            self.script_srcs.append(a["src"])
        if tag in ("link", "img", "iframe") and (a.get("href") or a.get("src")):
            self.external.append(a.get("href") or a.get("src"))
        if tag == "table" and a.get("id") == "days":
            self._in_days = True
        if self._in_days and tag == "tbody":
            self._in_body = True
        if self._in_body and tag == "tr":
            self.rows.append([])
        if self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._in_days = self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture
def report_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, _env_file=None)


def test_report_has_every_figure_the_days_table_and_no_external_script(real_db, report_settings, tmp_path):
    """One plot div per figure (versions, F1/ROC-AUC, calibration, champion ΔF1, attempts, deployments, gate strip,
    drift heatmap, positive rate, lineage), one row per day with the gate's verdict, < 5 MB, offline."""
    _seed(real_db, quality=True)
    result = write_report(report_settings, db=real_db, out=tmp_path / "out" / "report.html", days=30)
    path = result["path"]
    page = _parse(path)
    html = path.read_text(encoding="utf-8")

    assert page.plot_divs == list(FIGURE_IDS)
    assert page.script_srcs == [] and page.external == []
    assert result["size_bytes"] == path.stat().st_size < MAX_BYTES
    assert html.count("Plotly.newPlot(") == len(FIGURE_IDS)
    assert html.count("plotly.js v") == 1  # the library is inlined once, the other figures reuse it
    assert [r[0] for r in page.rows] == [d.isoformat() for d in DAYS]
    by_day = {r[0]: r for r in page.rows}
    # logical date, gate, champion, champion F1, F1 floor, attempts, best F1, outcome, deployed version, comparisons,
    # evaluation gap ('-': these seeded batches predate fidelity.evaluation_gap)
    assert by_day["2026-11-01"][1] == "passedlowest drift: age_in_years 0.95 (KS)"  # cells joined without <br>
    assert by_day["2026-11-01"][2:7] == ["v1", "0.4609", "0.40", "0", "0.4609"]
    assert by_day["2026-11-01"][7:] == ["champion passed; deployed v1", "v1", "-", "-"]
    assert by_day["2026-11-02"][5] == "3" and by_day["2026-11-02"][7].startswith("ALERT: best F1 0.4788 < floor 0.75")
    assert by_day["2026-11-02"][8] == "v1"
    assert by_day["2026-11-03"][7:9] == ["challenger v5 approved; deployed v5", "v5"]
    text = " ".join(page.text)
    assert "Model card: tabtransformer version 5" in text
    assert "quality.floors" not in html  # the gate's floors are reference lines, not series named after them
    assert "no data-quality figures recorded" not in text
    assert result["current_version"] == 5


def test_report_without_quality_figures_says_so(real_db, report_settings, tmp_path):
    """Without the gate's sub-documents there is no gate strip nor drift heatmap, and the page says so."""
    _seed(real_db, quality=False)
    page = _parse(write_report(report_settings, db=real_db, out=tmp_path / "r.html")["path"])
    assert page.plot_divs == NO_GATE
    assert "no data-quality figures recorded" in " ".join(page.text)


def test_report_days_keeps_the_last_logical_dates(real_db, report_settings, tmp_path):
    """--days 2 shows the last two logical dates; the version in place on the first is still known (v1)."""
    _seed(real_db, quality=False)
    result = write_report(report_settings, db=real_db, out=tmp_path / "r.html", days=2)
    page = _parse(result["path"])
    assert result["days"] == ["2026-11-02", "2026-11-03"]
    assert [(r[0], r[8]) for r in page.rows] == [("2026-11-02", "v1"), ("2026-11-03", "v5")]


def test_report_of_an_empty_database_renders(real_db, report_settings, tmp_path):
    """Before bootstrap the report still renders: no rows, no lineage, a hint to run the demo."""
    page = _parse(write_report(report_settings, db=real_db, out=tmp_path / "r.html")["path"])
    assert page.rows == []
    assert "fig-lineage" not in page.plot_divs
    assert "daily-mlops demo" in " ".join(page.text)


def test_model_card_has_the_model_card_sections_and_the_registry_facts(real_db, report_settings, tmp_path):
    """The card of a retrained version: Mitchell et al. sections, lineage, data, threshold, metrics, caveats."""
    _seed(real_db, quality=False)
    text, path = model_card(report_settings, db=real_db, model_version=5, out=tmp_path / "card.md")
    assert path.read_text(encoding="utf-8") == text
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["Model details", "Intended use", "Factors", "Metrics", "Training data", "Evaluation data",
                        "Quantitative analyses", "Ethical considerations", "Caveats and recommendations"]
    assert "| lineage | v1 → v5 (parent v1) |" in text
    assert "| parameters | 58,946 |" in text
    assert "`purpose` (10 categories)" in text and "`credit_amount`" in text  # input signature
    assert "| `batch-2026-11-03` | 10,000 | 0.2930 | pretrain 7,000, finetune 1,500, test 1,500 |" in text
    assert "**Decision threshold 0.4980:**" in text and "fine-tune split" in text
    assert "| true bad | 173 | 267 |" in text  # the confusion matrix of metrics.test
    assert "not measured for this version" in text  # retrained versions have no metrics.reference
    assert "CC BY 4.0" in text and "German Credit" in text  # data/reference/README.md
    assert "**The data is synthetic.**" in text and "**F1 refers to the positive label `bad`**" in text
    assert "`personal_status_and_sex`, `age_in_years`" in text  # the fairness caveat names the inputs
    assert "| 2026-11-03 | 1 | 0.4564 |" in text  # its daily evaluation


def test_model_card_of_the_bootstrap_version_reports_real_rows(real_db, report_settings):
    """Version 1 carries metrics.reference: the card shows both columns and both confusion matrices."""
    _seed(real_db, quality=False)
    text, path = model_card(report_settings, db=real_db, model_version=1)
    assert path is None
    assert "| metric | real holdout rows | synthetic test split |" in text
    assert "| F1 (positive label) | 0.5757 | 0.4230 |" in text
    assert "Confusion matrix, real holdout rows" in text
    assert "status **retired**" in text


def test_cli_report_and_models_card(real_db, mongo_uri, tmp_path, monkeypatch):
    """`daily-mlops report --out` prints the path it wrote; `models card` writes Markdown, exit 2 for an unknown
    version."""
    from daily_mlops.cli import app

    _seed(real_db, quality=False)
    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    env = {"MLOPS_MONGO_URI": mongo_uri, "MLOPS_MONGO_DB": real_db.name, "MLOPS_HOME": str(tmp_path),
           "MLOPS_REFERENCE_DATA": str(BUNDLED_REFERENCE_DATA)}
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--out", str(out), "--days", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert _parse(out).plot_divs == NO_GATE

    result = runner.invoke(app, ["models", "card", "5", "--out", str(tmp_path / "card.md")], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "card.md").read_text(encoding="utf-8").startswith("# Model card: tabtransformer version 5")

    result = runner.invoke(app, ["models", "card", "42"], env=env)
    assert result.exit_code == 2
    assert "version 42 is not in the registry" in result.output
