"""Shared fixtures of the link tests: one small synthetic town and one trained model.

The town (600 people, a few thousand records) is generated once per session and the
model trained once on it; each test module copies the model into a fresh hub home so
homes never share state but no test pays for training again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.synth import generate

from .silver_from_synth import load_synth_into_home

PEOPLE = 600
SEED = 11


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("link-synth") / "town"
    generate(out, PEOPLE, seed=SEED)
    return out


@pytest.fixture(scope="session")
def model_dir(town: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained linkage model (models/linkage) made by a first full link run."""
    from nominal.link.pipeline import link_lake

    home = make_home(tmp_path_factory.mktemp("link-train") / "home").ensure()
    load_synth_into_home(town, home)
    link_lake(home, mode="full")
    return home.models / "linkage"


def new_home(root: Path, model_dir: Path) -> Home:
    """A fresh hub home with the shared trained model installed."""
    home = make_home(root).ensure()
    shutil.copytree(model_dir, home.models / "linkage")
    return home


@pytest.fixture(scope="module")
def linked(
    town: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Home, dict]]:
    """A home whose silver tables hold the whole town, linked once (full run)."""
    from nominal.link.pipeline import link_lake

    home = new_home(tmp_path_factory.mktemp("linked") / "home", model_dir)
    load_synth_into_home(town, home)
    summary = link_lake(home, mode="full")
    yield home, summary


def partition(home: Home) -> set[frozenset[str]]:
    """The clusters of the current link run, as sets of record keys (ids ignored)."""
    from nominal.link.pipeline import table_rows

    groups: dict[str, set[str]] = {}
    for row in table_rows(home, "gold.nominal_records"):
        groups.setdefault(row["nominal_id"], set()).add(row["record_key"])
    return {frozenset(g) for g in groups.values()}


__all__ = ["new_home", "partition"]
