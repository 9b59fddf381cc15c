"""The hub's registered feed contracts: ``$NOMINAL_HOME/contracts/*.yaml``.

Onboarding a feed is adding its contract here (``nominal contracts add``). A contract is
validated before it is copied, so the folder only ever holds contracts that load; two
contracts may not declare the same feed, and a later ``add`` of the same feed replaces
the earlier file (a partner changing its extract is a new version of the contract).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nominal.config import Home
from nominal.contracts.model import Contract, ContractError, load_contract, load_contracts


def contracts_dir(home: Home) -> Path:
    """Where the hub keeps its contracts (created on first use)."""
    folder = home.root / "contracts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _candidates(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    if path.is_file():
        return [path]
    raise ContractError(f"{path}: no such contract file or folder")


def add_contracts(home: Home, path: str | Path) -> list[Contract]:
    """Validate every contract in ``path`` (a file or a folder) and copy them in.

    All of them are validated first, so a folder with one bad contract adds none.
    """
    files = _candidates(Path(path))
    if not files:
        raise ContractError(f"{path}: no *.yaml contracts found")
    loaded = [load_contract(f) for f in files]
    seen: dict[str, Path | None] = {}
    for c in loaded:
        if c.feed in seen:
            raise ContractError(f"{c.path}: feed {c.feed!r} is also declared in {seen[c.feed]}")
        seen[c.feed] = c.path
    target = contracts_dir(home)
    existing = {c.feed: c.path for c in registered_contracts(home)}
    added: list[Contract] = []
    for c in loaded:
        assert c.path is not None
        dest = target / f"{c.feed}.yaml"
        old = existing.get(c.feed)
        if old is not None and old != dest:
            old.unlink()  # the same feed under another file name: replace it
        shutil.copyfile(c.path, dest)
        added.append(c.model_copy(update={"path": dest}))
    return added


def registered_contracts(home: Home) -> list[Contract]:
    """Every contract the hub knows, sorted by file name."""
    return load_contracts(contracts_dir(home))
