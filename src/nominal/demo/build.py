"""Build the demo hub stage by stage, each stage using the area's own public entry point.

The demo grows with the hub: every capability adds its stage here, so the README's
first command always brings up everything that exists. Stages are idempotent, so
running the demo again on the same home re-uses what is already there (the synthetic
town is regenerated only when ``--people`` or ``--seed`` change, and re-delivered feeds
are recognised by their checksum and skipped).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.progress import Progress

from nominal.config import Home


@dataclass
class DemoBuild:
    """What the demo built: one entry per stage, with its figures and duration."""

    home: Path
    synthetic: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "synthetic": str(self.synthetic), "stages": self.stages}


@dataclass(frozen=True)
class DemoOptions:
    people: int = 20_000
    seed: int = 42
    as_of: date = date(2026, 10, 31)


Stage = Callable[[Home, DemoOptions, Path, Progress], dict[str, Any]]


def _synthesise(
    home: Home, options: DemoOptions, folder: Path, progress: Progress
) -> dict[str, Any]:
    from nominal.synth import generate

    marker = folder / "demo.json"
    wanted = {"people": options.people, "seed": options.seed, "as_of": options.as_of.isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return {"reused": True, **wanted}
    summary = generate(
        folder, options.people, seed=options.seed, as_of=options.as_of, progress=progress
    )
    marker.write_text(json.dumps(wanted))
    return {"reused": False, "records": summary.total_records, "files": summary.files, **wanted}


def _geography(
    home: Home, options: DemoOptions, folder: Path, progress: Progress
) -> dict[str, Any]:
    from nominal.ingest.api import import_synth_geography

    return import_synth_geography(home, folder / "geography").to_dict()


def _contracts(
    home: Home, options: DemoOptions, folder: Path, progress: Progress
) -> dict[str, Any]:
    from nominal.contracts.registry import add_contracts

    added = add_contracts(home, folder / "contracts")
    return {"contracts": len(added)}


def _ingest(home: Home, options: DemoOptions, folder: Path, progress: Progress) -> dict[str, Any]:
    from nominal.ingest.api import ingest_paths

    summary = ingest_paths(home, [folder / "feeds", folder / "documents"], progress)
    if not summary.ok:
        failed = [d.file for d in summary.deliveries if d.status not in ("ingested", "duplicate")]
        raise RuntimeError(f"ingest failed for {len(failed)} deliveries, first: {failed[0]}")
    figures = summary.to_dict()
    figures.pop("deliveries")  # one line per file is for `nominal ingest`, not the demo
    return figures


def _link(home: Home, options: DemoOptions, folder: Path, progress: Progress) -> dict[str, Any]:
    from nominal.link.pipeline import link_lake

    task = progress.add_task("Linking records into golden nominals", total=None)

    def step(message: str) -> None:
        progress.update(task, description=f"Linking: {message}")

    summary = link_lake(home, mode="incremental", progress=step)
    progress.update(task, total=1, completed=1)
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}


def _governance(
    home: Home, options: DemoOptions, folder: Path, progress: Progress
) -> dict[str, Any]:
    from nominal.govern.demo import seed_demo

    accounts = seed_demo(home, folder / "contracts")
    return {
        "partners": accounts.partners,
        "agreements": accounts.agreements,
        "accounts": [
            {"username": a.username, "role": a.role, "partner": a.partner}
            for a in accounts.accounts
        ],
    }


def _risk(home: Home, options: DemoOptions, folder: Path, progress: Progress) -> dict[str, Any]:
    from nominal.insight.risk import train_all
    from nominal.insight.scoring import score_all

    task = progress.add_task("Training the risk models", total=None)

    def step(message: str) -> None:
        progress.update(task, description=f"Risk: {message}")

    results = train_all(home, step=step)
    trained = [r.name for r in results if r.model is not None]
    scored: dict[str, Any] = {}
    if trained:  # a town too small for every model still scores those that trained
        progress.update(task, description="Scoring and building cohorts")
        scored = score_all(home, names=trained)
    progress.update(task, total=1, completed=1)
    return {
        "models": {r.name: r.error or "trained" for r in results},
        "scored": {k: v for k, v in scored.items() if isinstance(v, (int, float, str, bool))},
    }


def _products(home: Home, options: DemoOptions, folder: Path, progress: Progress) -> dict[str, Any]:
    from nominal.products.aggregates import build
    from nominal.products.demo import seed_products

    return {**seed_products(home), "aggregates": build(home)}


# (name, description, stage) in the order they run; later capabilities append here.
STAGES: list[tuple[str, str, Stage]] = [
    ("synth", "Generating the synthetic town", _synthesise),
    ("geography", "Loading the town's geography", _geography),
    ("contracts", "Registering the feed contracts", _contracts),
    ("ingest", "Ingesting the partner feeds", _ingest),
    ("link", "Linking golden nominals and households", _link),
    ("governance", "Setting up partners, agreements and demo users", _governance),
    ("risk", "Training and scoring the risk models", _risk),
    ("products", "Setting up partner teams, pathways and programme risks", _products),
]


def build_demo(home: Home, options: DemoOptions, progress: Progress) -> DemoBuild:
    """Run every stage in order on ``home``; a failing stage stops the build."""
    home.ensure()
    folder = home.root / "synthetic"
    result = DemoBuild(home=home.root, synthetic=folder)
    overall = progress.add_task("Building the demo hub", total=len(STAGES))
    for name, description, stage in STAGES:
        progress.update(overall, description=description)
        started = time.perf_counter()
        figures = stage(home, options, folder, progress)
        result.stages[name] = {**figures, "seconds": round(time.perf_counter() - started, 2)}
        progress.advance(overall)
    progress.update(overall, description="Demo hub built")
    return result
