"""Safe (de)serialisation of TabTransformer weights.

A model travels as two parts: its JSON-able ``config`` (architecture, see
:attr:`TabTransformer.config`) and a plain ``state_dict`` (parameter name ->
tensor) written by ``torch.save``. Loading always uses
``torch.load(..., weights_only=True)``, whose restricted unpickler accepts
tensors and plain containers only and refuses any other pickled object
(PyTorch docs, "torch.load" and "Serialization semantics"), so a tampered
``.pth`` cannot run code on the loading machine.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from daily_mlops.errors import IntegrityError, MLOpsError, NotFoundError, UnsafeArtifactError
from daily_mlops.ml.network import TabTransformer

__all__ = ["state_dict_to_bytes", "load_state_dict_bytes", "load_state_dict_file", "build_model"]


def _unpickler_detail(exc: Exception) -> str:
    """The informative line of a weights-only unpickler error (e.g. the blocked GLOBAL)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "nsupported" in line or "GLOBAL" in line), lines[0] if lines else "")
    return detail[:300] or type(exc).__name__


def state_dict_to_bytes(model: nn.Module) -> bytes:
    """Serialise ``model.state_dict()`` (tensors only) with ``torch.save``.

    Parameters
    ----------
    model : nn.Module
        Any module; its parameters and buffers are written, not its class.

    Returns
    -------
    bytes
        A ``torch.save`` zip archive that :func:`load_state_dict_bytes` reads
        back with ``weights_only=True``.
    """
    buffer = io.BytesIO()
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save(state, buffer)
    return buffer.getvalue()


def load_state_dict_bytes(data: bytes, *, source: str) -> dict[str, Tensor]:
    """Read a ``state_dict`` written by :func:`state_dict_to_bytes`, refusing pickled objects.

    Parameters
    ----------
    data : bytes
        Contents of a ``.pth`` file or GridFS artifact.
    source : str
        What the bytes are, for error messages (a file path or ``"model version N"``).

    Returns
    -------
    dict of str to Tensor
        Parameter and buffer tensors on the CPU.

    Raises
    ------
    UnsafeArtifactError
        When the payload holds a pickled object other than tensors and plain
        containers (a whole pickled module, or code such as ``os.system``);
        nothing in it is executed. Any unpickling error counts: junk bytes
        that the legacy (non-zip) reader parses as a pickle are refused the same way.
    IntegrityError
        When the bytes are not a readable ``torch.save`` archive (empty,
        truncated or corrupt).
    MLOpsError
        When the archive loads but is not a flat mapping of names to tensors.
    """
    try:
        loaded = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise UnsafeArtifactError(
            f"{source} was refused: it carries a pickled object that is not a plain tensor "
            f"state_dict, and loading it could run code ({_unpickler_detail(exc)}). Nothing in it "
            "was executed. Re-export the weights as a plain state_dict, "
            "torch.save(model.state_dict(), path), from a trusted copy of the model."
        ) from None
    except Exception as exc:  # torch.load's failure modes on arbitrary bytes are not a fixed set
        raise IntegrityError(
            f"{source} is not a readable torch state_dict archive ({type(exc).__name__}: "
            f"{str(exc)[:200]}); it is empty, truncated or corrupt. Re-export it with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in loaded.items()
    ):
        raise MLOpsError(
            f"{source} holds a {type(loaded).__name__}, not a plain state_dict mapping parameter "
            "names to tensors; re-export it with torch.save(model.state_dict(), path)."
        )
    return loaded  # type: ignore[return-value]


def load_state_dict_file(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Read a ``state_dict`` from a ``.pth`` file, refusing pickled objects.

    Parameters
    ----------
    path : str or path-like
        File written by ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    NotFoundError
        When ``path`` does not exist or is not a file.
    UnsafeArtifactError, IntegrityError, MLOpsError
        As :func:`load_state_dict_bytes`.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"model weights file {path} does not exist; check the path or export the model first")
    return load_state_dict_bytes(path.read_bytes(), source=str(path))


def build_model(config: Mapping[str, Any], state_dict: Mapping[str, Tensor]) -> TabTransformer:
    """Rebuild a trained TabTransformer from its config and weights, in eval mode.

    Parameters
    ----------
    config : mapping
        :attr:`TabTransformer.config` as stored with the model version.
    state_dict : mapping of str to Tensor
        From :func:`load_state_dict_bytes` or :func:`load_state_dict_file`.

    Returns
    -------
    TabTransformer
        Weights loaded with ``strict=True``, in eval mode.

    Raises
    ------
    MLOpsError
        When the config is invalid, or the weights do not match the
        architecture; the message lists missing and unexpected names, shape
        mismatches and buffers (category cardinalities) that differ.
    """
    try:
        model = TabTransformer.from_config(config)
    except (TypeError, ValueError) as exc:
        raise MLOpsError(f"invalid TabTransformer config {dict(config)!r}: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{name}: weights {tuple(state_dict[name].shape)} vs config {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state_dict and tuple(state_dict[name].shape) != tuple(tensor.shape)
    ]
    if not mismatched:
        # Buffers (category offsets and cardinalities) are fixed by the config, not learned.
        mismatched = [
            f"{name}: weights {state_dict[name].tolist()} vs config {buffer.tolist()}"
            for name, buffer in model.named_buffers()
            if name in state_dict and not torch.equal(state_dict[name].to(buffer.dtype), buffer)
        ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {missing[:10]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:10]}")
        if mismatched:
            parts.append("mismatch " + "; ".join(mismatched[:10]))
        raise MLOpsError(
            "the weights do not match the model config (" + ", ".join(parts) + "); "
            "store the config and state_dict of the same trained model together"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise MLOpsError(f"the weights do not match the model config: {exc}") from None
    return model.eval()
