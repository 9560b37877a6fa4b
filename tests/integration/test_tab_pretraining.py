"""Bootstrap pretrains a ``tab`` network ``MLOPS_TAB_PRETRAIN_EPOCHS`` epochs, an ``ft`` one ``MLOPS_PRETRAIN_EPOCHS``.

Wide tables: a ``tab`` step attends over every categorical column, so its
pretraining has its own, smaller epoch count; the ``ft`` network (the bundled data) keeps its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from daily_mlops.loop import bootstrap as boot_mod
from daily_mlops.settings import Settings

pytestmark = pytest.mark.integration


def _settings(csv_settings, architecture: str) -> Settings:
    """Tiny settings on a 300-row CSV (two categorical, one numeric column, target ``default``)."""
    rng = np.random.default_rng(0)
    n = 300
    income = rng.normal(50_000, 15_000, n)
    frame = pd.DataFrame({
        "income": income.round(2),
        "grade": rng.choice(list("ABCD"), n),
        "region": rng.choice(list("xyz"), n),
        "default": np.where(income + rng.normal(0, 10_000, n) < 42_000, "yes", "no"),
    })
    return csv_settings(frame, daily_rows=300, num_layers=1, d_model=8, nhead=2, dim_feedforward=16,
                        pretrain_epochs=1, tab_pretrain_epochs=3, finetune_epochs=1, retrain_epochs=1,
                        batch_size=128, architecture=architecture)


def test_pretraining_epochs_follow_the_resolved_architecture(csv_settings) -> None:
    """``pretraining_epochs`` gives the tab count for ``tab`` and the ft count for ``ft``."""
    settings = _settings(csv_settings, "auto")
    assert boot_mod.pretraining_epochs(settings, "tab") == 3
    assert boot_mod.pretraining_epochs(settings, "ft") == 1


@pytest.mark.parametrize(("architecture", "epochs"), [("tab", 3), ("ft", 1)])
def test_bootstrap_records_the_architectures_pretraining_epochs(csv_settings, real_db, architecture, epochs) -> None:
    """The pretrain training event of version 1 has the epochs of its architecture; both counts are recorded."""
    settings = _settings(csv_settings, architecture)
    assert boot_mod.bootstrap(settings, db=real_db)["created"]
    event = real_db.training_events.find_one({"model_version": 1, "stage": "pretrain"})
    assert event["epochs"] == epochs and len(event["losses"]) == epochs
    doc = real_db.model_metadata.find_one({"model_name": "tabtransformer", "model_version": 1})
    assert doc["architecture"]["architecture"] == architecture
    assert (doc["hyperparameters"]["pretrain_epochs"], doc["hyperparameters"]["tab_pretrain_epochs"]) == (1, 3)
