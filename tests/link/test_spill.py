"""The link's DuckDB spill folder exists before DuckDB needs it.

DuckDB creates only the last level of its ``temp_directory``, at its first spill; in a
new hub ``$NOMINAL_HOME/tmp`` did not exist, so a 922,639-record link failed at its
first spill (benchmarks/scaling.py, 2026-12-01).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from nominal.config import home as make_home
from nominal.link.pipeline import spill_dir


def test_spill_dir_is_made_in_a_new_hub(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").ensure()
    assert not (home.root / "tmp").exists()
    spill = spill_dir(home, "20261201T000000-abcdef")
    assert spill.is_dir() and spill.parent == home.root / "tmp"
    # DuckDB can now spill there: a sort far beyond a 64 MB limit writes temp files
    con = duckdb.connect()
    con.execute("SET memory_limit = '64MB'")
    con.execute("SET threads = 1")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET preserve_insertion_order = false")
    rows = con.execute(
        "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h)"
    ).fetchone()
    assert rows == (3000000,)
    con.close()
