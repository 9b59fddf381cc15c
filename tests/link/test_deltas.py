"""Delta writes of gold tables (``pipeline._replace_rows``) on a real lake."""

from __future__ import annotations

import pyarrow as pa

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.link import pipeline


def _table(lake: Lake) -> list[tuple]:
    snap = lake.require_current()
    con = duck.connect(snap, tables=["gold.things"])
    try:
        return con.execute("SELECT k, v FROM gold.things ORDER BY k").fetchall()
    finally:
        con.close()


def test_untouched_files_are_kept_and_small_files_merged(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    with lake.transaction("seed") as tx:
        paths = [
            tx.write_arrow("gold.things", pa.table({"k": [f"k{i:02d}"], "v": [i]}))
            for i in range(pipeline.MAX_DELTA_FILES)
        ]
        tx.replace("gold.things", paths)
        tx.commit()
    before = lake.require_current().files("gold.things")
    con = duck.connect()
    con.execute("CREATE TABLE gone AS SELECT 'k03' AS k")
    con.execute("CREATE TABLE nothing AS SELECT 'x' AS k LIMIT 0")

    # a row dropped: only its file is rewritten (to nothing, so it leaves the table)
    with lake.transaction("delta") as tx:
        pipeline._replace_rows(
            con, tx, "gold.things", "SELECT 'k99' AS k, 99 AS v", "t.k IN (SELECT k FROM gone)"
        )
        tx.commit()
    after = lake.require_current().files("gold.things")
    assert len(set(before) & set(after)) == len(before) - 1
    assert before[3] not in after
    rows = _table(lake)
    assert ("k03", 3) not in rows and ("k99", 99) in rows
    assert len(rows) == pipeline.MAX_DELTA_FILES

    # nothing to drop (an empty key table): no file is read, one is appended; past
    # MAX_DELTA_FILES the smaller files are merged, every row kept
    with lake.transaction("append") as tx:
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k98' AS k, 98 AS v",
            "t.k IN (SELECT k FROM nothing)",
            ("nothing",),
        )
        tx.commit()
    files = lake.require_current().files("gold.things")
    assert len(files) <= pipeline.MAX_DELTA_FILES
    assert len(_table(lake)) == pipeline.MAX_DELTA_FILES + 1
    assert lake.require_current().rows("gold.things") == pipeline.MAX_DELTA_FILES + 1

    # a pure append keeps every earlier file in place and counts the rows right
    kept = lake.require_current().files("gold.things")
    with lake.transaction("append again") as tx:
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k97' AS k, 97 AS v",
            "t.k IN (SELECT k FROM nothing)",
            ("nothing",),
        )
        tx.commit()
    snap = lake.require_current()
    assert snap.files("gold.things")[: len(kept)] == kept
    assert snap.rows("gold.things") == len(_table(lake)) == pipeline.MAX_DELTA_FILES + 2
