"""The lake's snapshots: atomic switch, isolation of readers, rollback on failure."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from nominal.engines import duck
from nominal.engines.lake import Lake, LakeError


def _write(lake: Lake, table: str, values: list[int], op: str = "test") -> str:
    with lake.transaction(op) as w:
        w.append(table, [w.write_arrow(table, pa.table({"x": values}))])
        return w.commit({"n": len(values)}).id


def test_empty_lake_has_no_current(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.current() is None
    with pytest.raises(LakeError, match="empty"):
        lake.require_current()


def test_append_builds_on_previous_snapshot(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    first = _write(lake, "silver.t", [1, 2])
    second = _write(lake, "silver.t", [3])
    snap = lake.current()
    assert snap is not None and snap.id == second and snap.parent == first
    assert snap.rows("silver.t") == 3
    assert sorted(snap.read("silver.t").column("x").to_pylist()) == [1, 2, 3]
    # The older snapshot is still readable as it was.
    assert lake.snapshot(first).rows("silver.t") == 2
    assert [s.id for s in lake.history()] == [second, first]


def test_failed_transaction_leaves_current_and_removes_its_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    good = _write(lake, "silver.t", [1])
    with pytest.raises(RuntimeError), lake.transaction("boom") as w:
        path = w.write_arrow("silver.t", pa.table({"x": [9]}))
        w.append("silver.t", [path])
        raise RuntimeError("crash before commit")
    assert not path.exists()
    snap = lake.current()
    assert snap is not None and snap.id == good
    assert snap.read("silver.t").column("x").to_pylist() == [1]


def test_killed_writer_never_changes_current(tmp_path: Path) -> None:
    """A process killed with SIGKILL between writing data and committing."""
    lake = Lake(tmp_path)
    good = _write(lake, "silver.t", [1])
    script = textwrap.dedent(
        f"""
        import os, signal, pyarrow as pa
        from nominal.engines.lake import Lake
        lake = Lake({str(tmp_path)!r})
        with lake.transaction("killed") as w:
            w.append("silver.t", [w.write_arrow("silver.t", pa.table({{"x": [2]}}))])
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    snap = lake.current()
    assert snap is not None and snap.id == good and snap.rows("silver.t") == 1
    # The orphaned data file is cleaned up by vacuum; the good snapshot survives it.
    orphans = len(list((tmp_path / "data").rglob("*.parquet"))) - 1
    assert orphans == 1
    assert lake.vacuum(keep_last=1)["files_removed"] == 1
    assert lake.require_current().read("silver.t").column("x").to_pylist() == [1]


def test_duckdb_views_read_only_the_snapshot_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    _write(lake, "silver.t", [1, 2])
    snap = lake.require_current()
    _write(lake, "silver.t", [3])  # a later run does not change what `con` sees
    con = duck.connect(snap)
    assert con.execute("SELECT sum(x) FROM silver.t").fetchone() == (3,)


def test_vacuum_keeps_recent_snapshots(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    ids = [_write(lake, "silver.t", [i]) for i in range(4)]
    result = lake.vacuum(keep_last=2)
    assert result["snapshots_removed"] == 2
    remaining = {p.stem for p in lake.snapshots_dir.glob("*.json")}
    assert remaining == set(ids[-2:])
    assert lake.require_current().rows("silver.t") == 4
    # the history ends at the oldest snapshot kept, without an error for the removed ones
    assert [s.id for s in lake.history()] == list(reversed(ids[-2:]))


def test_secret_is_generated_once_with_private_mode(hub_home) -> None:  # type: ignore[no-untyped-def]
    key = hub_home.pseudonym_key
    assert len(key) == 32 and hub_home.pseudonym_key == key
    mode = os.stat(hub_home.keys / "pseudonym.key").st_mode & 0o777
    assert mode == 0o600
    assert hub_home.lake not in (hub_home.keys / "pseudonym.key").parents
