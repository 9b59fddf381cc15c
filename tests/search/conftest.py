"""A linked synthetic town shared by the search tests (built once per session).

Real components end to end: ``nominal synth`` writes the partners' deliveries, ingest
takes them into silver, ``nominal link`` trains the linkage model and writes the gold
tables, and the search index is built over those gold tables with that model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from search_governance import setup_governance
from search_town import Town

from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.govern.audit import audit_log
from nominal.ingest.api import ingest_paths
from nominal.link.pipeline import link_lake
from nominal.search.index import build_index
from nominal.search.scoring import LinkageScorer, load_linkage_model
from nominal.synth import generate

PEOPLE = 700
SEED = 11


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    root = tmp_path_factory.mktemp("search-town")
    synth = root / "synth"
    generate(synth, PEOPLE, seed=SEED)
    home = make_home(root / "home").ensure()
    ingest_paths(home, [synth / "feeds"], contracts=synth / "contracts")
    link_lake(home)
    scorer = LinkageScorer(load_linkage_model(home))
    index = build_index(Lake(home.lake).require_current(), scorer)
    control = ControlPlane(f"sqlite:///{root / 'control.db'}")
    users = setup_governance(control, synth / "contracts")
    yield Town(home, synth, index, control, audit_log(control, home), users)
    control.dispose()
