"""Shared fixtures: a fresh hub home per test, and the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nominal.config import Home
from nominal.config import home as make_home

# Apps made by tests do not warm the dashboards at start-up (a background computation
# per app would only load the two cores); the tests of warming ask for it explicitly.
os.environ.setdefault("NOMINAL_WARM", "0")

POSTGRES_ADMIN_URL = os.environ.get(
    "NOMINAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# The test directories, heaviest first (measured wall time of each directory's tests on the
# two-core CI machine). The two pytest-xdist workers take whole directories in this order,
# so the longest ones start first and the short ones fill in at the end
# (longest-processing-time-first): the workers finish close together.
DIRECTORY_ORDER = [
    "link",
    "security",
    "engines",
    "products",
    "insight",
    "search",
    "ingest",
    "govern",
    "web",
    "demo",
    "pipeline",
    "ops",
    "feeds",
    "synth",
]


def _directory(nodeid: str) -> str:
    """``tests/<directory>/...`` -> ``<directory>`` (a file directly in tests/ -> its id)."""
    parts = nodeid.split("::")[0].split("/")
    return parts[1] if len(parts) > 2 else nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests by directory, heaviest directory first (see ``DIRECTORY_ORDER``)."""
    rank = {name: i for i, name in enumerate(DIRECTORY_ORDER)}
    items.sort(key=lambda item: rank.get(_directory(item.nodeid), len(rank)))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send each test directory to one pytest-xdist worker as a whole.

    Most directories build a synthetic town once per session (a session fixture in their
    conftest); spreading one directory over both workers would build it twice.
    (xdist's own ``--dist loadgroup`` groups by rewriting each test's node id, which
    pytest 9 no longer reads, so it silently spread every directory over both workers.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class DirectoryScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _directory(nodeid)

    # keep DIRECTORY_ORDER rather than xdist's largest-number-of-tests-first
    config.option.loadscopereorder = False
    return DirectoryScheduling(config, log)


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
