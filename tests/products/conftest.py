"""One synthetic town per session, linked perfectly (oracle gold tables), with its
synthetic geography imported through ingest's ONS-format importer and the demand
aggregates built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.ingest.api import import_synth_geography
from nominal.insight.oracle import gold_from_truth
from nominal.products.aggregates import build as build_aggregates
from nominal.products.lakeview import open_snapshot
from nominal.synth import generate

PEOPLE = 3000
SEED = 7


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("products") / "town"
    generate(out, PEOPLE, seed=SEED)
    return out


@pytest.fixture(scope="session")
def gold_home(town: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    hub = make_home(tmp_path_factory.mktemp("products-home") / "home").ensure()
    gold_from_truth(town, hub)
    import_synth_geography(hub, town / "geography")
    build_aggregates(hub)  # as the pipeline's products stage does after linking
    return hub


@pytest.fixture
def con(gold_home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    connection, _ = open_snapshot(gold_home)
    try:
        yield connection
    finally:
        connection.close()


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
