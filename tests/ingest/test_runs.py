"""Runs as lake transactions: crash safety, re-delivery, supersession, the inbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.progress import Progress

from nominal.config import Home
from nominal.contracts.registry import add_contracts
from nominal.engines.lake import Lake
from nominal.ingest import ingest_paths

from .helpers import contract_dict, good_row, query, write_contract, write_csv


class Boom(RuntimeError):
    pass


class FailingProgress(Progress):
    """A progress display that fails after the first file: a crash mid-run."""

    def advance(self, task_id, advance: float = 1) -> None:  # type: ignore[no-untyped-def]
        raise Boom("killed mid-run")


def test_failed_run_leaves_previous_snapshot_readable(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict())
    first = write_csv(tmp_path / "a" / "test_1.csv", [good_row(i) for i in range(5)])
    ingest_paths(hub_home, [first], contracts=tmp_path / "c")
    lake = Lake(hub_home.lake)
    before = lake.require_current()
    data_files = set((hub_home.lake / "data").rglob("*.parquet"))
    second = write_csv(tmp_path / "b" / "test_2.csv", [good_row(i) for i in range(10, 20)])
    third = write_csv(tmp_path / "b" / "test_3.csv", [good_row(i) for i in range(30, 40)])
    with pytest.raises(Boom):
        ingest_paths(hub_home, [second, third], FailingProgress(), contracts=tmp_path / "c")
    after = lake.require_current()
    assert after.id == before.id
    assert query(hub_home, "SELECT count(*) FROM silver.identity") == [(5,)]
    # the failed run's data files were removed; only the bronze copies remain
    assert set((hub_home.lake / "data").rglob("*.parquet")) == data_files
    # re-running completes it: the bronze copy of a half-done run is no obstacle
    summary = ingest_paths(hub_home, [second, third], contracts=tmp_path / "c")
    assert [d.status for d in summary.deliveries] == ["ingested", "ingested"]
    assert query(hub_home, "SELECT count(*) FROM silver.identity") == [(25,)]


def test_redelivery_of_the_same_bytes_is_a_no_op(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict())
    feed = write_csv(tmp_path / "a" / "test_1.csv", [good_row(i) for i in range(3)])
    ingest_paths(hub_home, [feed], contracts=tmp_path / "c")
    copy = tmp_path / "b" / "test_1_again.csv"
    copy.parent.mkdir()
    copy.write_bytes(feed.read_bytes())
    again = ingest_paths(hub_home, [copy], contracts=tmp_path / "c")
    (d,) = again.deliveries
    assert d.status == "duplicate" and "ingested before" in d.message
    assert query(hub_home, "SELECT count(*) FROM silver.deliveries") == [(1,)]
    bronze = list((hub_home.lake / "bronze" / "test_feed").rglob("*.csv"))
    assert len(bronze) == 1 and bronze[0].read_bytes() == feed.read_bytes()
    assert bronze[0].parent.name == d.delivery_id


def test_resent_record_supersedes_earlier_version(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict())
    v1 = [good_row(i) for i in range(3)]
    ingest_paths(hub_home, [write_csv(tmp_path / "a" / "test_1.csv", v1)], contracts=tmp_path / "c")
    v2 = good_row(1)
    v2["Outcome"] = "closed"
    v2["Surname"] = "Jones"
    dup_in_file = good_row(7)
    later_in_file = dict(dup_in_file, Outcome="closed")
    summary = ingest_paths(
        hub_home,
        [write_csv(tmp_path / "b" / "test_2.csv", [v2, dup_in_file, later_in_file])],
        contracts=tmp_path / "c",
    )
    assert summary.to_dict()["rows_superseded"] == 2  # R000001 from run 1, R000007 in-file
    rows = query(
        hub_home,
        "SELECT i.source_record_id, i.family_name, json_extract_string(e.attributes, '$.outcome') "
        "FROM silver.identity i JOIN silver.events e USING (record_key, delivery_id) ORDER BY 1",
    )
    assert rows == [
        ("R000000", "O'Neil-Smith", "open"),
        ("R000001", "Jones", "closed"),
        ("R000002", "O'Neil-Smith", "open"),
        ("R000007", "O'Neil-Smith", "closed"),
    ]
    # both versions were accepted and are on record in the deliveries
    assert query(hub_home, "SELECT sum(rows_accepted) FROM silver.deliveries") == [(6,)]


def test_inbox_is_processed_and_emptied(hub_home: Home, tmp_path: Path) -> None:
    add_contracts(hub_home, write_contract(tmp_path / "c", contract_dict()))
    write_csv(hub_home.inbox / "test_1.csv", [good_row(1)])
    (hub_home.inbox / "stray.txt").write_text("not a delivery")
    summary = ingest_paths(hub_home)  # default: the inbox, with the registered contracts
    statuses = {Path(d.file).name: d.status for d in summary.deliveries}
    assert statuses == {"test_1.csv": "ingested", "stray.txt": "no_contract"}
    assert (hub_home.inbox / "processed" / "test_1.csv").exists()
    assert not (hub_home.inbox / "test_1.csv").exists()
    assert (hub_home.inbox / "stray.txt").exists()  # left for someone to look at
    assert query(hub_home, "SELECT count(*) FROM silver.identity") == [(1,)]
