"""Fixtures for the web app: a demo hub (governance from the synthetic contracts, a small
silver layer) on SQLite and on PostgreSQL, and a signed-in client helper."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from govern.lakes import build_silver
from nominal.config import Home
from nominal.config import home as make_home
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccount, DemoAccounts, seed_demo
from nominal.synth import generate


@pytest.fixture(scope="session")
def contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(people=300, seed=1, out=out)
    return out / "contracts"


POSTGRES_ADMIN_URL = os.environ.get(
    "NOMINAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def sqlite_template(
    contracts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, DemoAccounts]:
    """A migrated, demo-seeded SQLite control plane, copied for each test (seeding is slow)."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "control.db"
    accounts = seed_demo(make_home(folder), contracts_dir, database_url=f"sqlite:///{path}")
    return path, accounts


@pytest.fixture(scope="session")
def postgres_template(
    contracts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, DemoAccounts]]:
    """A migrated, demo-seeded PostgreSQL database that each test clones (CREATE DATABASE
    ... TEMPLATE) on the real server."""
    name = f"govern_tpl_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = (
        sa.engine.make_url(POSTGRES_ADMIN_URL)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        accounts = seed_demo(
            make_home(tmp_path_factory.mktemp("pgtpl")), contracts_dir, database_url=url
        )
        yield name, accounts
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, hub_home: Home, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, DemoAccounts]]:
    """(control-plane URL, demo accounts): a fresh copy of the seeded template per test."""
    if request.param == "sqlite":
        template, accounts = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, hub_home.control_db_path)
        url = f"sqlite:///{hub_home.control_db_path}"
        monkeypatch.setenv("NOMINAL_DATABASE_URL", url)
        yield url, accounts
        return
    template, accounts = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = (
        sa.engine.make_url(POSTGRES_ADMIN_URL)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    monkeypatch.setenv("NOMINAL_DATABASE_URL", url)
    try:
        yield url, accounts
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(seeded: tuple[str, DemoAccounts]) -> str:
    return seeded[0]


@pytest.fixture
def demo(hub_home: Home, seeded: tuple[str, DemoAccounts]) -> DemoAccounts:
    build_silver(hub_home)
    return seeded[1]


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
