"""One synthetic town per session, linked perfectly (oracle gold), trained once.

5,000 people give enough outcomes in every yearly slice for three of the four models;
child exploitation is too rare at this size, which the tests also check is reported
rather than papered over.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from insight_fixtures import Trained

from nominal.config import Home
from nominal.config import home as make_home
from nominal.insight import risk, scoring
from nominal.insight.oracle import gold_from_truth
from nominal.synth import generate

PEOPLE = 5000
SEED = 1
MODELS = ["da_high_risk", "child_exploitation", "not_school_ready", "cin_cp_escalation"]


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("insight") / "town"
    generate(out, PEOPLE, seed=SEED)
    return out


@pytest.fixture(scope="session")
def oracle_home(town: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    hub = make_home(tmp_path_factory.mktemp("insight-home") / "home").ensure()
    gold_from_truth(town, hub)
    return hub


@pytest.fixture(scope="session")
def trained(oracle_home: Home, town: Path) -> Trained:
    results = risk.train_all(oracle_home, MODELS, truth=town / "truth")
    scored = scoring.score_all(oracle_home)
    return Trained(oracle_home, town, {r.name: r for r in results}, scored)
