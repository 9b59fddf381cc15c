"""A record erased on request stays erased when its partner sends it again."""

from __future__ import annotations

from pathlib import Path

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern import rights
from nominal.ingest import ingest_paths

from .helpers import contract_dict, good_row, query, write_contract, write_csv


def test_resent_erased_record_is_refused_and_counted(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict())
    rows = [good_row(i) for i in range(3)]
    ingest_paths(
        hub_home, [write_csv(tmp_path / "a" / "test_1.csv", rows)], contracts=tmp_path / "c"
    )
    [(erased_key,)] = query(
        hub_home, "SELECT record_key FROM silver.identity WHERE source_record_id = 'R000001'"
    )
    control = ControlPlane(hub_home.database_url)
    with control.session() as session:
        rights.erase(hub_home, session, [erased_key])
    control.dispose()
    assert query(hub_home, "SELECT count(*) FROM silver.identity") == [(2,)]

    # the partner's next extract still holds the person (with a changed detail)
    again = [dict(r, Outcome="closed") for r in rows]
    summary = ingest_paths(
        hub_home, [write_csv(tmp_path / "b" / "test_2.csv", again)], contracts=tmp_path / "c"
    )
    [delivery] = summary.deliveries
    assert (delivery.rows_in, delivery.rows_accepted, delivery.rows_quarantined) == (3, 2, 1)
    assert query(hub_home, "SELECT source_record_id FROM silver.identity ORDER BY 1") == [
        ("R000000",),
        ("R000002",),
    ]
    assert query(
        hub_home, f"SELECT count(*) FROM silver.events WHERE record_key = '{erased_key}'"
    ) == [(0,)]
    # quarantine says why, and keeps no copy of the erased person's row
    assert query(hub_home, "SELECT row_number, field, reason, raw FROM silver.quarantine") == [
        (2, "record_id", "record_id: erased_on_request", None)
    ]


def test_register_read_without_migrating(tmp_path: Path) -> None:
    """Ingest reads the erasure register without running migrations: a hub whose control
    plane does not exist yet, or has no register table, has nothing erased (and the read
    creates nothing); once the register holds a key, it is read."""
    import sqlalchemy as sa

    from nominal.config import home as make_home

    hub = make_home(tmp_path / "hub")
    db = sa.engine.make_url(hub.database_url).database
    if db and db != ":memory:":
        assert not Path(db).exists()
        assert rights.erased_record_keys(hub) == set()
        assert not Path(db).exists()
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        sa.create_engine(hub.database_url).connect().close()  # an empty database
        assert rights.erased_record_keys(hub) == set()
    control = ControlPlane(hub.database_url)  # migrated
    with control.session() as session:
        session.add(rights.ErasedRecord(record_key="c" * 32))
    control.dispose()
    assert rights.erased_record_keys(hub) == {"c" * 32}
