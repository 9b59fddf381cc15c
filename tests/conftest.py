"""Shared fixtures: a fresh hub home per test, and the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nominal.config import Home
from nominal.config import home as make_home

# Apps made by tests do not warm the dashboards at start-up (a background computation
# per app would only load the two cores); the tests of warming ask for it explicitly.
os.environ.setdefault("NOMINAL_WARM", "0")

POSTGRES_ADMIN_URL = os.environ.get(
    "NOMINAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each test directory on one pytest-xdist worker (``--dist loadgroup``).

    Most directories build a synthetic town once per session (a session fixture in their
    conftest); spreading one directory over both workers would build it twice.
    """
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        group = parts[0] if len(parts) > 1 else "top"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def hub_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """An empty hub home of the test's own; ``NOMINAL_HOME`` points at it."""
    root = tmp_path / "home"
    monkeypatch.setenv("NOMINAL_HOME", str(root))
    monkeypatch.delenv("NOMINAL_DATABASE_URL", raising=False)
    return make_home(root).ensure()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of the test's own on the real server (dropped afterwards).

    The server must be running (``.ci/run`` starts it); a missing server is an error,
    not a skip, so that the PostgreSQL half of the suite cannot silently vanish.
    """
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
