"""Structured logs: one JSON object per line, extras as fields, level from the settings."""

from __future__ import annotations

import json
import logging

import pytest

from nominal.ops.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """configure_logging changes the process's 'nominal' logger: put it back afterwards."""
    logger = logging.getLogger("nominal")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]


def test_json_lines_with_fields(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMINAL_LOG_LEVEL", "info")
    monkeypatch.delenv("NOMINAL_CONFIG", raising=False)
    configure_logging()
    log = logging.getLogger("nominal.pipeline")
    log.debug("not shown at info")
    log.info("stage finished", extra={"run_id": "r1", "stage": "link", "seconds": 1.5})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("stage failed", extra={"run_id": "r1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [entry["message"] for entry in lines] == ["stage finished", "stage failed"]
    first = lines[0]
    assert (first["level"], first["logger"], first["run_id"], first["stage"], first["seconds"]) == (
        "info",
        "nominal.pipeline",
        "r1",
        "link",
        1.5,
    )
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    configure_logging(level="warning", fmt="text")
    log.info("quiet now")
    assert capsys.readouterr().err == ""
