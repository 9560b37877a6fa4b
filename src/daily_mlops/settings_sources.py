"""Where each setting's value came from, and how to show it without leaking a secret.

``daily-mlops config`` prints :func:`describe_settings`; :func:`settings_sources`
names the source of each field (argument, environment, ``.env``, the YAML
file, default). Values that look like secrets are redacted (:data:`REDACTED`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from daily_mlops.settings import Settings, read_config_file

__all__ = ["REDACTED", "describe_settings", "display_value", "settings_sources"]


# --- where each value came from ------------------------------------------


def _value_origins(explicit: frozenset[str], env_file: Any, yaml_path: Path | None) -> dict[str, str]:
    layers: list[tuple[str, dict[str, Any]]] = [
        ("environment", EnvSettingsSource(Settings)()),
        (".env", DotEnvSettingsSource(Settings, env_file=env_file)() if env_file else {}),
        (f"yaml ({yaml_path})", read_config_file(yaml_path) if yaml_path is not None else {}),
    ]
    origins: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in explicit:
            origins[name] = "argument"
        else:
            origins[name] = next((label for label, data in layers if name in data), "default")
    return origins


def settings_sources(settings: Settings) -> dict[str, str]:
    """Where each field of ``settings`` came from, in field order.

    One of ``argument`` (a keyword argument), ``environment`` (an ``MLOPS_*``
    variable), ``.env``, ``yaml (<absolute path>)`` or ``default``: the
    highest-priority source that gives the field, with the ``.env`` and YAML
    files that built ``settings`` (read again now).
    """
    return _value_origins(settings._init_fields, settings._env_file_used, settings._config_path)


_SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)[^@/]*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"((?:^|[?&;])[^=&;]*password=)[^&;]*", re.IGNORECASE)
REDACTED = "****"


def display_value(name: str, value: Any) -> str:
    """``value`` of field ``name`` as text, with secrets redacted.

    The password of a URI (``mongodb://user:****@host``) and of a
    ``...password=`` query option, and every value of a dict key that looks
    like a secret (``password``, ``token``, ``api_key``...) become ``****``.
    ``None`` is ``unset``.
    """
    if value is None:
        return "unset"
    if isinstance(value, dict):
        shown = {k: (REDACTED if _SECRET_NAME.search(str(k)) else v) for k, v in value.items()}
        return json.dumps(shown, default=str)
    text = str(value)
    if name == "mongo_uri" or "://" in text:
        text = _URI_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
        text = _QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def describe_settings(settings: Settings) -> list[tuple[str, str, str, str]]:
    """One row per field: ``(field, MLOPS_* variable, redacted value, source)`` (see :func:`settings_sources`)."""
    sources = settings_sources(settings)
    return [
        (name, f"MLOPS_{name.upper()}", display_value(name, getattr(settings, name)), sources[name])
        for name in Settings.model_fields
    ]
