"""A real uvicorn server (in a thread) for the feed API tests, on SQLite or PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from nominal.config import Home

CONTRACT = """\
contract_version: 1
feed: npol-incidents
title: Police incidents
partner: {code: NPOL, name: Northshire Police}
agency: police
dataset: police_incidents
agreement: ISA-T2-001
deliveries: {pattern: "npol_incidents_*.csv"}
format: {type: csv, date_format: "%d/%m/%Y"}
fields:
  record_id:     {source: PersonRef, required: true}
  given_name:    {source: Forename}
  family_name:   {source: Surname}
  date_of_birth: {source: DOB, type: date}
  event_id:      {source: IncidentRef}
  event_date:    {source: IncidentDate, type: date, required: true}
  event_type:    {value: police_incident}
retention: {years: 7, from: event_date}
"""


def incidents_csv(rows: int, start: int = 0) -> bytes:
    lines = ["PersonRef,Forename,Surname,DOB,IncidentRef,IncidentDate"]
    for i in range(start, start + rows):
        lines.append(
            f"P{i:07d},Sam,Jones{i % 97},{1 + i % 28:02d}/0{1 + i % 9}/19{50 + i % 50},I{i:08d},{1 + i % 28:02d}/03/2025"
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def incidents() -> Callable[..., bytes]:
    return incidents_csv


@contextmanager
def serve(app: object) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=["sqlite", "postgres"])
def feed_hub(
    request: pytest.FixtureRequest, hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Home:
    """A hub with the police incidents contract registered, on each control-plane database."""
    from nominal.contracts.registry import add_contracts

    if request.param == "postgres":
        monkeypatch.setenv("NOMINAL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    path = tmp_path / "npol-incidents.yaml"
    path.write_text(CONTRACT)
    add_contracts(hub_home, path)
    return hub_home


@pytest.fixture
def server(feed_hub: Home) -> Iterator[str]:
    from nominal.web.app import create_app

    with serve(create_app(feed_hub, secure_cookies=False)) as url:
        yield url


@pytest.fixture
def token_for(feed_hub: Home) -> Callable[..., str]:
    from nominal.feeds.tokens import issue_feed_token
    from nominal.ops.web import control_for

    def make(
        partner: str = "NPOL", feeds: tuple[str, ...] = ("npol-incidents",), pull: bool = False
    ) -> str:
        with control_for(feed_hub.database_url).session() as session:
            return issue_feed_token(session, partner, list(feeds), can_pull=pull).token

    return make
