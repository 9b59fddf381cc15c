"""Structured logs: one JSON object per line on stderr, for journald or a log shipper.

Fields passed as ``extra={...}`` become top-level keys, so ``log.info("stage finished",
extra={"run_id": ..., "stage": ...})`` can be filtered on ``run_id`` without parsing
text. Personal data never goes into a log line: ids and counts only.

The web server's own loggers (``uvicorn``, ``uvicorn.error``, ``uvicorn.access``) use
the same format through :func:`uvicorn_log_config`, which ``nominal serve`` passes to
uvicorn. An access line carries ``client``, ``method``, ``path``, ``status`` and
``http_version`` as fields; the **query string is left out**, because search queries
carry names and dates of birth (the audit log records them, under access control).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LEVEL_ENV = "NOMINAL_LOG_LEVEL"
FORMAT_ENV = "NOMINAL_LOG_FORMAT"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}
# uvicorn's copy of the message with terminal colour codes: noise in a JSON line.
_DROPPED = {"color_message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class AccessJsonFormatter(JsonFormatter):
    """uvicorn's access records as JSON fields, without the query string."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, full_path, http_version, status = args
            path = str(full_path).split("?", 1)[0]
            fields = {"client": client, "method": method, "path": path,
                      "status": status, "http_version": http_version}  # fmt: skip
            clean = logging.makeLogRecord({**vars(record), **fields})
            clean.msg, clean.args = f"{method} {path} {status}", None
            return super().format(clean)
        return super().format(record)


def uvicorn_log_config(level: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn: its loggers and ``nominal``'s alike."""
    from nominal.ops.settings import settings

    conf = settings()
    level = (level or conf.log_level).upper()
    fmt = fmt or conf.log_format
    text = "%(asctime)s %(levelname)s %(name)s %(message)s"
    formatters: dict[str, Any] = (
        {"json": {"()": JsonFormatter}, "access": {"()": AccessJsonFormatter}}
        if fmt == "json"
        else {"json": {"format": text}, "access": {"()": AccessTextFormatter, "fmt": text}}
    )
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    logging.captureWarnings(True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "default": {**handler, "formatter": "json"},
            "access": {**handler, "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "nominal": {"handlers": ["default"], "level": level, "propagate": False},
            # warnings.warn(...) from libraries, routed through logging (captureWarnings)
            "py.warnings": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }


class AccessTextFormatter(logging.Formatter):
    """Plain-text access lines, also without the query string."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, full_path, http_version, status = args
            record = logging.makeLogRecord(vars(record))
            record.msg = f'{client} "{method} {str(full_path).split("?", 1)[0]} HTTP/{http_version}" {status}'
            record.args = None
        return super().format(record)


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Send the ``nominal`` loggers to stderr as JSON (or plain text with fmt='text')."""
    from nominal.ops.settings import settings

    conf = settings()
    level = (level or conf.log_level).upper()
    fmt = fmt or conf.log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("nominal")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
