"""Fixtures for governance tests: a migrated control plane on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nominal.db import ControlPlane


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ControlPlane]:
    """A freshly migrated control plane on each database the hub supports."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'control.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    plane = ControlPlane(url)
    try:
        yield plane
    finally:
        plane.dispose()
