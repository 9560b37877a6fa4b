"""The F1 floor setting: a number, or ``auto`` (the bootstrap model's held-out F1 minus ``f1_tolerance``).

Pure and standard library only (the DAG files import it while they are
parsed); the one import path of these names. One check for
``MLOPS_F1_THRESHOLD`` (the Settings validator), the evaluation DAG's param
``f1_threshold`` and ``daily-mlops run --f1-threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from daily_mlops.errors import ConfigError

__all__ = [
    "AUTO", "F1_THRESHOLD_MAX", "auto_f1_threshold", "describe_f1_threshold", "parse_f1_threshold",
    "resolve_f1_threshold", "threshold_note", "validate_f1_threshold", "validate_min_improvement",
]

#: Largest accepted F1 threshold. F1 is at most 1, so a threshold in (1, 2] never passes:
#: the documented way to force the retry-and-alert path (the DAG param's ``maximum``).
F1_THRESHOLD_MAX = 2.0
#: The ``f1_threshold`` value that stands for "the bootstrap model's held-out F1 minus ``f1_tolerance``".
AUTO = "auto"


def validate_f1_threshold(value: Any, source: str) -> float:
    """An F1 threshold as a float when it is finite and in [0, :data:`F1_THRESHOLD_MAX`].

    The one check shared by ``MLOPS_F1_THRESHOLD`` (the Settings validator),
    the evaluation DAG's param ``f1_threshold`` (its JSON schema cannot refuse
    NaN: every comparison with NaN is false, so ``minimum``/``maximum`` pass it)
    and the CLI's ``--f1-threshold``. A NaN threshold would fail every
    evaluation and cause needless retraining and an alert.

    Parameters
    ----------
    value : Any
        The threshold (a fraction; above 1 forces the alert path).
    source : str
        Where it came from, named in the message, e.g. ``"MLOPS_F1_THRESHOLD"``,
        ``"DAG param f1_threshold"`` or ``"--f1-threshold"``.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        When the value is not a number (bool included), is NaN or infinite, or
        lies outside [0, 2]; the message names ``source`` and the fix.
    """
    fix = f"use a number from 0 to {F1_THRESHOLD_MAX:g} (above 1 forces the retrain-and-alert path)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}={value!r} is not a number; {fix}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{source}={value!r} is not a finite number; {fix}")
    if not 0.0 <= number <= F1_THRESHOLD_MAX:
        raise ConfigError(f"{source}={value!r} is out of range; {fix}")
    return number


def parse_f1_threshold(value: Any, source: str) -> float | str:
    """An F1 threshold setting: :data:`AUTO` (``"auto"``) or a number checked by :func:`validate_f1_threshold`.

    Text is accepted as environment variables and YAML give it: ``"auto"``
    (any case, surrounding spaces ignored) or a number written as text
    (``"0.75"``). The DAG param's JSON schema takes a number or exactly
    ``"auto"``, so a string number never reaches a task from the trigger form.

    Parameters
    ----------
    value : Any
        ``"auto"``, a number, or a number as text.
    source : str
        Where it came from, named in the message (``"MLOPS_F1_THRESHOLD"``, ``"DAG param f1_threshold"``).

    Returns
    -------
    float or str
        The float, or :data:`AUTO`.

    Raises
    ------
    ConfigError
        When the value is neither ``auto`` nor a valid threshold; the message names
        ``source`` and both accepted forms.
    """
    fix = (f"use 'auto' (the bootstrap model's held-out F1 minus f1_tolerance) or a number from 0 to "
           f"{F1_THRESHOLD_MAX:g} (above 1 forces the retrain-and-alert path)")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == AUTO:
            return AUTO
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{source}={value!r} is neither 'auto' nor a number; {fix}") from None
        try:
            return validate_f1_threshold(number, source)
        except ConfigError:
            raise ConfigError(f"{source}={value!r} is out of range or not finite; {fix}") from None
    try:
        return validate_f1_threshold(value, source)
    except ConfigError as exc:
        raise ConfigError(f"{str(exc).split(';')[0]}; {fix}") from None


def auto_f1_threshold(bootstrap_f1: float, f1_tolerance: float) -> float:
    """The F1 floor ``auto`` stands for: ``bootstrap_f1 - f1_tolerance``, at least 0.

    Parameters
    ----------
    bootstrap_f1 : float
        F1 of the positive class (in [0, 1]) of the bootstrap model (version 1) on held-out rows (its floor
        sample, :func:`daily_mlops.loop.bootstrap.floor_rows`).
    f1_tolerance : float
        How far below the bootstrap F1 a day's model may score and still pass (``MLOPS_F1_TOLERANCE``,
        default 0.05: about two standard deviations of the champion's day-to-day F1 on 1,500 test rows).
    """
    return max(0.0, float(bootstrap_f1) - float(f1_tolerance))


def resolve_f1_threshold(
    value: Any, source: str, *, bootstrap_f1: float | None, f1_tolerance: float, model_name: str = "the model"
) -> dict[str, Any]:
    """The F1 floor in effect: a fixed number, or ``auto`` resolved from the bootstrap model's held-out F1.

    Parameters
    ----------
    value : Any
        The setting or param (:func:`parse_f1_threshold` checks it).
    source : str
        Named in error messages.
    bootstrap_f1 : float or None
        The bootstrap model's held-out (test split) F1, as stored in the registry; ``None`` when unknown.
    f1_tolerance : float
        ``MLOPS_F1_TOLERANCE``.
    model_name : str
        The model family, named in the message when ``auto`` cannot be resolved.

    Returns
    -------
    dict
        ``f1_threshold`` (float), ``mode`` (``"auto"`` or ``"fixed"``), and for ``auto`` ``bootstrap_f1`` and
        ``f1_tolerance``: what :func:`describe_f1_threshold` prints.

    Raises
    ------
    ConfigError
        For an invalid value, or ``auto`` without a bootstrap F1 (run ``daily-mlops bootstrap`` or set a number).
    """
    parsed = parse_f1_threshold(value, source)
    if parsed != AUTO:
        return {"f1_threshold": float(parsed), "mode": "fixed"}
    if bootstrap_f1 is None:
        raise ConfigError(f"{source}='auto' needs the held-out F1 of {model_name}'s bootstrap version, and the "
                          "registry has none; run `daily-mlops bootstrap`, or set a number (e.g. 0.75)")
    return {"f1_threshold": auto_f1_threshold(bootstrap_f1, f1_tolerance), "mode": AUTO,
            "bootstrap_f1": float(bootstrap_f1), "f1_tolerance": float(f1_tolerance)}


def threshold_note(resolution: Mapping[str, Any]) -> str:
    """Where a resolved floor came from: ``auto: bootstrap F1 0.4821 - f1_tolerance 0.05`` or ``fixed``."""
    if resolution.get("mode") == AUTO:
        return (f"auto: bootstrap F1 {float(resolution['bootstrap_f1']):.4f} - f1_tolerance "
                f"{float(resolution['f1_tolerance']):g}")
    return "fixed"


def describe_f1_threshold(resolution: Mapping[str, Any]) -> str:
    """One phrase for messages: ``0.4321 (auto: bootstrap F1 0.4821 - f1_tolerance 0.05)`` or ``0.7500 (fixed)``."""
    return f"{float(resolution['f1_threshold']):.4f} ({threshold_note(resolution)})"


def validate_min_improvement(value: Any, source: str) -> float:
    """``min_improvement`` as a float when it is a finite number in [0, 1] (the DAG param's JSON schema
    cannot refuse NaN, as for :func:`validate_f1_threshold`).

    Raises
    ------
    ConfigError
        Otherwise; the message names ``source`` and the fix.
    """
    fix = "use a number from 0 to 1 (the F1 a retrained version must gain over the champion)"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"{source}={value!r} is not a finite number; {fix}")
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{source}={value!r} is out of range; {fix}")
    return float(value)
