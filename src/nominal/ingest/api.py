"""The ingest entry points other parts of the hub call (the CLI and the demo use these).

``ingest_paths`` takes in partner deliveries; ``import_geography`` loads the reference
geography. Both write one lake snapshot per call.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from nominal.config import Home
from nominal.contracts.model import Contract, load_contract, load_contracts
from nominal.contracts.registry import registered_contracts
from nominal.ingest.geography import GeographySummary
from nominal.ingest.geography import import_geography as _import_geography
from nominal.ingest.pipeline import (
    DeliveryResult,
    IngestError,
    IngestSummary,
    expand_paths,
    run_ingest,
)


def resolve_contracts(
    home: Home, contracts: Iterable[Contract] | Path | str | None = None
) -> list[Contract]:
    """Contracts given, else those in a file or folder given, else the registered ones."""
    if contracts is None:
        return registered_contracts(home)
    if isinstance(contracts, (str, Path)):
        path = Path(contracts)
        return load_contracts(path) if path.is_dir() else [load_contract(path)]
    return list(contracts)


def ingest_paths(
    home: Home,
    paths: Iterable[Path | str] | None = None,
    progress: Any = None,
    *,
    contracts: Iterable[Contract] | Path | str | None = None,
    as_of: date | None = None,
) -> IngestSummary:
    """Ingest the files (or folders of files) in ``paths``; default: the home's inbox.

    Each file is matched to a contract by its delivery pattern. ``progress`` is an
    optional Rich ``Progress``: one task advances per file. When the inbox is ingested,
    files that were taken in (or were already in) move to ``inbox/processed``; files
    that failed or matched no contract stay for someone to look at.
    """
    home.ensure()
    use_inbox = paths is None
    chosen = [home.inbox] if use_inbox else [Path(p) for p in paths or []]
    files = expand_paths(chosen)
    resolved = resolve_contracts(home, contracts)
    if not resolved and files:
        raise IngestError("no feed contracts: register some with `nominal contracts add`")
    task = progress.add_task("Ingesting deliveries", total=len(files)) if progress else None

    def on_file(name: str, result: DeliveryResult | None) -> None:
        if progress is None:
            return
        if result is None:
            progress.update(task, description=f"Ingesting {name}")
        else:
            progress.advance(task)

    summary = run_ingest(home, files, resolved, as_of=as_of, on_file=on_file)
    if use_inbox:
        done = home.inbox / "processed"
        for d in summary.deliveries:
            if d.status in ("ingested", "duplicate"):
                done.mkdir(parents=True, exist_ok=True)
                src = Path(d.file)
                if src.exists():
                    shutil.move(str(src), done / src.name)
    return summary


def import_geography(
    home: Home,
    postcodes: Path,
    output_areas: Path,
    wards: Path | None = None,
    deprivation: Path | None = None,
) -> GeographySummary:
    """Load reference.postcodes / output_areas / wards from ONS-format files."""
    return _import_geography(home, postcodes, output_areas, wards, deprivation)


def import_synth_geography(home: Home, folder: Path) -> GeographySummary:
    """The geography folder ``nominal synth`` writes, in one call (used by the demo)."""
    return import_geography(
        home,
        folder / "postcodes.csv",
        folder / "output_areas.geojson",
        folder / "wards.geojson",
        folder / "deprivation.csv",
    )
