"""Typed readers for environment variables; each fails loudly on a malformed value."""

import json
import os
from typing import Any, overload

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no", ""}


def env_str(name: str, default: str = "") -> str:
    """`NAME_FILE` (a Docker/Kubernetes secret file) wins over `NAME`."""
    if path := os.environ.get(f"{name}_FILE"):
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of on/off/true/false, got {raw!r}")


@overload
def env_int(name: str, default: int) -> int: ...
@overload
def env_int(name: str, default: None = None) -> int | None: ...
def env_int(name: str, default: int | None = None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds (a bound on a wait: zero or less would refuse every request)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def env_json(name: str, default: Any) -> Any:
    raw = env_str(name).strip()
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be JSON, got {raw!r}") from exc
