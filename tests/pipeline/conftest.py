"""A small synthetic town (shared by the pipeline tests) and hubs built from it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from nominal.config import Home
from nominal.synth import generate

PEOPLE = 300
SEED = 7
FEEDS = ("npol_incidents_2024.csv", "kht_ae_attendances_2025.csv", "nas_callouts_2025.ndjson")


@pytest.fixture(scope="session")
def small_town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-town") / "town"
    generate(out, PEOPLE, seed=SEED)
    return out


@pytest.fixture
def prepared_hub(
    hub_home: Home, small_town: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str | None], Home]:
    """A hub with geography, contracts and (oracle) gold, and three deliveries in its inbox.

    Gold comes from the synthetic truth so that the features and score stages have
    linked data whether or not the linkage stage is part of the run.
    """

    def make(database_url: str | None = None) -> Home:
        from nominal.contracts.registry import add_contracts
        from nominal.ingest.api import import_synth_geography
        from nominal.insight.oracle import gold_from_truth

        if database_url:
            monkeypatch.setenv("NOMINAL_DATABASE_URL", database_url)
        import_synth_geography(hub_home, small_town / "geography")
        add_contracts(hub_home, small_town / "contracts")
        gold_from_truth(small_town, hub_home)
        for name in FEEDS:
            shutil.copy(small_town / "feeds" / name, hub_home.inbox / name)
        return hub_home

    return make
