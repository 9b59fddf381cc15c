"""Erasure reaches the linker's own tables: no trace of an erased record is left in the
lake (silver, gold, the scored pairs, and link.standardised / link.facts /
link.blocking_index, which hold standardised names and dates of birth), and the next
incremental link run carries on without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from nominal.config import Home
from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.govern import rights
from nominal.link.pipeline import link_lake, table_rows


def _lake_text(home: Home) -> str:
    """Every row of every data file in the lake, as text (old snapshots are vacuumed)."""
    files = sorted(str(p) for p in (home.lake / "data").rglob("*.parquet"))
    con = duckdb.connect()
    try:
        rows = [con.execute("SELECT * FROM read_parquet(?)", [f]).fetchall() for f in files]
    finally:
        con.close()
    return json.dumps(rows, default=str)


def test_erasure_clears_the_link_tables(linked: tuple[Home, dict], tmp_path: Path) -> None:
    source, _summary = linked
    shutil.copytree(source.root, tmp_path / "home")
    home = make_home(tmp_path / "home")
    snapshot = Lake(home.lake).require_current()
    assert {"link.standardised", "link.facts", "link.blocking_index", "gold.pairs"} <= set(
        snapshot.tables
    )
    # a record linked to another one, so it is in the scored pairs as well
    pairs = table_rows(home, "gold.pairs")
    assert pairs
    key = pairs[0]["record_key_l"]
    std = table_rows(home, "link.standardised", f"unique_id = '{key}'")
    assert len(std) == 1
    assert key in _lake_text(home)
    records = snapshot.rows("gold.nominal_records")

    control = ControlPlane(home.database_url)
    try:
        with control.session() as session:
            result = rights.erase(home, session, [key])
    finally:
        control.dispose()
    for table in ("link.standardised", "link.facts", "link.blocking_index", "silver.identity"):
        assert result.rows_removed.get(table) == 1, (table, result.rows_removed)
    assert result.rows_removed["gold.pairs"] >= 1
    assert key not in _lake_text(home)

    # the next incremental run neither fails nor brings the record back
    summary = link_lake(home, mode="incremental")
    after = Lake(home.lake).require_current()
    assert after.rows("gold.nominal_records") == records - 1
    assert key not in _lake_text(home)
    assert summary["mode"] == "incremental"  # not a silent fall-back to a full run
