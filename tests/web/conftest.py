"""Fixtures for the web app: a demo hub (governance from the synthetic contracts, a small
silver layer) on SQLite and on PostgreSQL, and a signed-in client helper."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from govern.lakes import build_silver
from nominal.config import Home
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccount, DemoAccounts, seed_demo
from nominal.synth import generate


@pytest.fixture(scope="session")
def contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(people=300, seed=1, out=out)
    return out / "contracts"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, hub_home: Home, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{hub_home.control_db_path}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("NOMINAL_DATABASE_URL", url)
    return url


@pytest.fixture
def demo(hub_home: Home, contracts_dir: Path, database_url: str) -> DemoAccounts:
    build_silver(hub_home)
    return seed_demo(hub_home, contracts_dir, database_url=database_url)


@pytest.fixture
def client(hub_home: Home, demo: DemoAccounts, database_url: str) -> Iterator[TestClient]:
    from nominal.web.app import create_app

    app = create_app(hub_home, database_url=database_url)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, account: DemoAccount, database_url: str) -> str:
    """Sign in through the form; returns a CSRF token for later forms.

    A TOTP code is accepted once only, so the remembered step is cleared first (tests
    sign the same demo user in more often than every 30 seconds).
    """
    engine = sa.create_engine(database_url)
    with engine.begin() as con:
        con.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"),
            {"u": account.username},
        )
    engine.dispose()
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)
