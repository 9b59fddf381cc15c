"""Operational configuration: a TOML file, overridden by environment variables.

Precedence, highest first:

1. environment variables (``NOMINAL_*``, listed in :data:`ENVIRONMENT`);
2. the configuration file: ``$NOMINAL_CONFIG`` if set, else ``$NOMINAL_HOME/nominal.toml``
   if it exists;
3. the defaults below.

The file has one ``[nominal]`` table, for example::

    [nominal]
    home = "/var/lib/nominal"
    database_url = "postgresql+psycopg://nominal@db/nominal"
    log_level = "info"
    log_format = "json"
    host = "127.0.0.1"
    port = 8000
    scheduler_poll_seconds = 30
    webhook_max_attempts = 8

``NOMINAL_HOME`` and ``NOMINAL_DATABASE_URL`` are the variables the rest of the hub
already reads (``nominal.config``); :func:`apply` exports the file's values into them
when they are not set, so that a file-configured deployment needs no environment at all.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

CONFIG_ENV = "NOMINAL_CONFIG"

# setting -> environment variable
ENVIRONMENT: dict[str, str] = {
    "home": "NOMINAL_HOME",
    "database_url": "NOMINAL_DATABASE_URL",
    "log_level": "NOMINAL_LOG_LEVEL",
    "log_format": "NOMINAL_LOG_FORMAT",
    "host": "NOMINAL_HOST",
    "port": "NOMINAL_PORT",
    "scheduler_poll_seconds": "NOMINAL_SCHEDULER_POLL_SECONDS",
    "webhook_max_attempts": "NOMINAL_WEBHOOK_MAX_ATTEMPTS",
    "webhook_timeout_seconds": "NOMINAL_WEBHOOK_TIMEOUT_SECONDS",
    "upload_max_bytes": "NOMINAL_UPLOAD_MAX_BYTES",
}


class SettingsError(ValueError):
    """The configuration file or a variable is invalid; the message names which."""


@dataclass(frozen=True)
class Settings:
    home: str = "nominal-data"
    database_url: str | None = None
    log_level: str = "info"
    log_format: str = "json"
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler_poll_seconds: float = 30.0
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10.0
    upload_max_bytes: int = 20 * 1024**3
    source: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def config_path() -> Path | None:
    """The configuration file in use, if any."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    home = Path(os.environ.get("NOMINAL_HOME", "nominal-data"))
    candidate = home / "nominal.toml"
    return candidate if candidate.exists() else None


def _coerce(name: str, value: Any, origin: str) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    try:
        if "int" in kind and "float" not in kind:
            return int(value)
        if "float" in kind:
            return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: {name} must be a number, not {value!r}") from None
    return None if value is None else str(value)


def settings() -> Settings:
    """The effective settings (file, then environment, over the defaults)."""
    values: dict[str, Any] = {}
    sources: list[str] = []
    path = config_path()
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{path}: configuration file not found ({CONFIG_ENV})") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        table = raw.get("nominal", {})
        if not isinstance(table, dict):
            raise SettingsError(f"{path}: [nominal] must be a table")
        for key, value in table.items():
            if key not in ENVIRONMENT:
                raise SettingsError(
                    f"{path}: unknown setting {key!r}; settings: {', '.join(ENVIRONMENT)}"
                )
            values[key] = _coerce(key, value, str(path))
        sources.append(str(path))
    for key, var in ENVIRONMENT.items():
        if os.environ.get(var):
            values[key] = _coerce(key, os.environ[var], var)
            sources.append(var)
    return Settings(**values, source=", ".join(sources) or "defaults")


def apply() -> Settings:
    """Export the file's home and database URL (unless the environment sets them).

    The rest of the hub reads only ``NOMINAL_HOME`` and ``NOMINAL_DATABASE_URL``; the CLI
    calls this at start-up so that a deployment configured by file needs no variables.
    """
    conf = settings()
    path = config_path()
    if path is not None:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("nominal", {})
        for key in ("home", "database_url"):
            if table.get(key):
                os.environ.setdefault(ENVIRONMENT[key], str(table[key]))
    return conf
