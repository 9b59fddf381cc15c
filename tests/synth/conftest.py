"""One small synthetic town per test session (a few seconds), shared by the synth tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nominal.synth import SynthSummary, generate

PEOPLE = 2500
SEED = 7


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "town"
    return out, generate(out, PEOPLE, seed=SEED)
