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


def test_few_dropped_rows_of_a_large_file_go_to_a_deletion_file(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    with lake.transaction("seed") as tx:
        big = tx.write_arrow(
            "gold.things", pa.table({"k": [f"k{i:03d}" for i in range(100)], "v": list(range(100))})
        )
        tx.replace("gold.things", [big])
        tx.commit()
    con = duck.connect()
    con.execute("CREATE TABLE gone AS SELECT unnest(['k005', 'k050']) AS k")

    # two rows of a hundred: the file stays, their positions go to a deletion file
    with lake.transaction("delta") as tx:
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k999' AS k, 999::BIGINT AS v",
            "t.k IN (SELECT k FROM gone)",
        )
        tx.commit()
    snap = lake.require_current()
    assert big in snap.files("gold.things")
    assert len(snap.deletes("gold.things")) == 1
    rows = _table(lake)
    keys = [k for k, _v in rows]
    assert "k005" not in keys and "k050" not in keys and "k999" in keys
    assert len(rows) == snap.rows("gold.things") == 99
    # every reader applies the deletion file: PyArrow too
    read = snap.read("gold.things").column("k").to_pylist()
    assert sorted(read) == sorted(keys)

    # the next run's drops add to the same positions list (one deletion file), and a
    # row already deleted is not counted twice
    con.execute("CREATE OR REPLACE TABLE gone AS SELECT unnest(['k005', 'k006']) AS k")
    with lake.transaction("delta 2") as tx:
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k998' AS k, 998::BIGINT AS v",
            "t.k IN (SELECT k FROM gone)",
        )
        tx.commit()
    snap = lake.require_current()
    assert len(snap.deletes("gold.things")) == 1
    keys = [k for k, _v in _table(lake)]
    assert {"k005", "k006", "k050"}.isdisjoint(keys) and {"k998", "k999"} <= set(keys)
    assert snap.rows("gold.things") == len(keys) == 99

    # once more than REWRITE_FRACTION of the file is deleted it is rewritten with its
    # live rows and the deletion file goes
    con.execute(
        "CREATE OR REPLACE TABLE gone AS SELECT 'k' || lpad(CAST(i AS VARCHAR), 3, '0') AS k "
        "FROM range(10, 40) r(i)"
    )
    with lake.transaction("delta 3") as tx:
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k997' AS k, 997::BIGINT AS v",
            "t.k IN (SELECT k FROM gone)",
        )
        tx.commit()
    snap = lake.require_current()
    assert big not in snap.files("gold.things")
    assert snap.deletes("gold.things") == []
    keys = [k for k, _v in _table(lake)]
    assert snap.rows("gold.things") == len(keys) == 70
    assert "k020" not in keys and "k997" in keys and "k004" in keys

    # a full replace drops the deletion files with the files they refer to
    with lake.transaction("delta 4") as tx:
        con.execute("CREATE OR REPLACE TABLE gone AS SELECT 'k001' AS k")
        pipeline._replace_rows(
            con,
            tx,
            "gold.things",
            "SELECT 'k996' AS k, 996::BIGINT AS v",
            "t.k IN (SELECT k FROM gone)",
        )
        tx.commit()
    assert len(lake.require_current().deletes("gold.things")) == 1
    with lake.transaction("replace") as tx:
        tx.replace("gold.things", [tx.write_arrow("gold.things", pa.table({"k": ["a"], "v": [1]}))])
        tx.commit()
    snap = lake.require_current()
    assert snap.deletes("gold.things") == [] and _table(lake) == [("a", 1)]
    # vacuum keeps the deletion files of the snapshots it keeps
    removed = lake.vacuum(keep_last=2)
    assert removed["files_removed"] >= 1
    older = lake.history()[1]
    assert all(p.exists() for p in older.deletes("gold.things"))
