"""Structured logs: one JSON object per line on stderr, for journald or a log shipper.

Fields passed as ``extra={...}`` become top-level keys, so ``log.info("stage finished",
extra={"run_id": ..., "stage": ...})`` can be filtered on ``run_id`` without parsing
text. Personal data never goes into a log line: ids and counts only.
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
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


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
