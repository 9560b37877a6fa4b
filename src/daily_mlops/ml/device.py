"""Where training and inference run: ``MLOPS_DEVICE`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) to a torch device.

Source: PyTorch docs, "CUDA semantics" (``torch.cuda.is_available``, device strings).
"""

from __future__ import annotations

import re

import torch

from daily_mlops.errors import ConfigError

__all__ = ["DEVICE_PATTERN", "resolve_device"]

#: Values ``MLOPS_DEVICE`` accepts (also checked by :class:`daily_mlops.settings.Settings`).
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


def resolve_device(name: str) -> torch.device:
    """The torch device named by ``MLOPS_DEVICE``.

    Parameters
    ----------
    name : str
        ``auto`` (``cuda`` when torch sees a CUDA device, else ``cpu``),
        ``cpu``, ``cuda`` or ``cuda:N``.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        When ``name`` is none of these, or names CUDA while torch sees no CUDA
        device (a CPU-only torch build, or no GPU visible to this process).
    """
    if not re.match(DEVICE_PATTERN, str(name)):
        raise ConfigError(f"MLOPS_DEVICE={name!r} is not a device; use auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ConfigError(
                f"MLOPS_DEVICE={name} but torch {torch.__version__} sees {count} CUDA device(s) "
                f"(built with CUDA {torch.version.cuda}); use MLOPS_DEVICE=auto or cpu, or run on a GPU worker "
                "with a CUDA build of torch"
            )
    return device
