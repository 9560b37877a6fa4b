"""Tests of safe weight (de)serialisation: round trip, refusal of pickled code, missing files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch

from daily_mlops.errors import IntegrityError, MLOpsError, NotFoundError, UnsafeArtifactError
from daily_mlops.ml.model_io import build_model, load_state_dict_bytes, load_state_dict_file, state_dict_to_bytes
from daily_mlops.ml.network import TabTransformer


class _CreatesFile:
    """A pickle payload that, when unpickled, opens (creates) a file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShell:
    """A pickle payload that, when unpickled, runs ``touch`` through ``os.system``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _model() -> TabTransformer:
    torch.manual_seed(0)
    return TabTransformer(cardinalities=[3, 4], n_numeric=2, d_model=8, nhead=2, num_layers=1, dim_feedforward=16)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([[0, 1], [2, 3], [1, 0]]), torch.tensor([[0.5, -1.0], [0.0, 0.3], [2.0, 1.0]])


def test_state_dict_round_trip_rebuilds_identical_model(tmp_path: Path) -> None:
    """Bytes and files round-trip every tensor; build_model gives an eval-mode model with the same logits."""
    model = _model().eval()
    data = state_dict_to_bytes(model)
    loaded = load_state_dict_bytes(data, source="model version 1")
    assert set(loaded) == set(model.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())

    path = tmp_path / "model.pth"
    path.write_bytes(data)
    rebuilt = build_model(model.config, load_state_dict_file(path))
    assert not rebuilt.training
    x_cat, x_num = _inputs()
    with torch.no_grad():
        assert torch.equal(rebuilt(x_cat, x_num), model(x_cat, x_num))


@pytest.mark.parametrize("payload", [_CreatesFile, _RunsShell])
def test_pickled_code_is_refused_and_never_runs(tmp_path: Path, payload: type) -> None:
    """A .pth holding an object whose __reduce__ creates a file raises UnsafeArtifactError; no file appears."""
    control = tmp_path / "control"
    control_pth = tmp_path / "control.pth"
    torch.save({"weight": torch.ones(2), "evil": payload(control)}, control_pth)
    ran = torch.load(control_pth, weights_only=False)["evil"]  # an unsafe load really runs the payload...
    if hasattr(ran, "close"):  # the file _CreatesFile's payload opened
        ran.close()
    assert control.exists()

    pwned = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.ones(2), "evil": payload(pwned)}, path)
    with pytest.raises(UnsafeArtifactError) as excinfo:  # ...the safe loader refuses it
        load_state_dict_file(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "pickled object" in message
    assert "state_dict" in message
    assert "system" in message or "open" in message  # the blocked callable is named
    assert not pwned.exists()


def test_pickled_module_bytes_are_refused_with_the_source_named() -> None:
    """A whole pickled nn.Module (not a state_dict) is refused; the message names the model version."""
    buffer = io.BytesIO()
    torch.save(_model(), buffer)
    with pytest.raises(UnsafeArtifactError, match="model version 7 was refused"):
        load_state_dict_bytes(buffer.getvalue(), source="model version 7")


def test_corrupt_bytes_raise_integrity_error() -> None:
    """Empty or truncated bytes raise IntegrityError naming the source."""
    data = state_dict_to_bytes(_model())
    for junk in (b"", data[: len(data) // 2], data[:-10]):
        with pytest.raises(IntegrityError, match="model version 3"):
            load_state_dict_bytes(junk, source="model version 3")


def test_non_state_dict_archive_is_refused() -> None:
    """A safe archive that is not a flat name -> tensor mapping raises MLOpsError."""
    buffer = io.BytesIO()
    torch.save({"weights": {"w": torch.ones(1)}, "epoch": 3}, buffer)
    with pytest.raises(MLOpsError, match="not a plain state_dict"):
        load_state_dict_bytes(buffer.getvalue(), source="x.pth")


def test_missing_file_raises_not_found(tmp_path: Path) -> None:
    """A path that does not exist raises NotFoundError naming the path."""
    path = tmp_path / "nope.pth"
    with pytest.raises(NotFoundError, match="nope.pth"):
        load_state_dict_file(path)


def test_build_model_names_what_differs() -> None:
    """Weights from a different architecture raise MLOpsError naming the mismatched tensor or buffer."""
    model = _model()
    state = model.state_dict()
    wider = dict(model.config, n_numeric=3)
    with pytest.raises(MLOpsError, match="numeric_weight"):
        build_model(wider, state)
    other_cards = dict(model.config, cardinalities=[4, 3])
    with pytest.raises(MLOpsError, match="category_"):
        build_model(other_cards, state)
    missing = {k: v for k, v in state.items() if k != "mask_token"}
    with pytest.raises(MLOpsError, match=r"missing \['mask_token'\]"):
        build_model(model.config, missing)
    with pytest.raises(MLOpsError, match="invalid TabTransformer config"):
        build_model({"n_numeric": 2}, state)
