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


def test_nominal_serve_writes_access_and_server_logs_as_json_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The real server (``nominal serve`` in a subprocess): every stderr line is JSON, access
    lines carry method/path/status as fields and never the query string (search terms)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMINAL_")}
    env.update(NOMINAL_HOME=str(tmp_path / "home"), NOMINAL_LOG_LEVEL="info")
    server = subprocess.Popen(
        [sys.executable, "-m", "nominal.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600  # a loaded shared machine imports slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        secret = "Zebedee"
        searched = httpx.get(
            f"{base}/api/search", params={"purpose": "x", "family_name": secret}, timeout=120
        )
        assert searched.status_code == 401
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON, or this fails
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {(e["method"], e["path"], e["status"]) for e in access} >= {
        ("GET", "/healthz", 200),
        ("GET", "/api/search", 401),
    }
    assert all(e["level"] == "info" and e["time"].endswith("+00:00") for e in access)
    assert any(e["logger"] == "uvicorn.error" and "startup" in e["message"] for e in entries)
    assert secret not in err  # the query string (a name) never reaches the log
