"""The link pipeline on a small synthetic town: gold tables, accuracy, stable ids,
incremental runs equal to full runs, lineage and ``resolve``."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nominal.config import home as make_home
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.link import evaluate
from nominal.link.pipeline import link_lake, resolve, table_rows

from .conftest import new_home, partition
from .silver_from_synth import load_synth_into_home, silver_tables, write_silver

GOLD_COLUMNS = {
    "gold.nominal_records": [
        "record_key",
        "nominal_id",
        "dataset",
        "agency",
        "source_record_id",
        "cluster_probability",
        "linked_run",
    ],
    "gold.nominals": [
        "nominal_id",
        "nominal_pseudo",
        "given_name",
        "middle_names",
        "family_name",
        "date_of_birth",
        "sex",
        "ethnicity",
        "address_line_1",
        "town",
        "postcode",
        "uprn",
        "oa_code",
        "nhs_number",
        "ni_number",
        "police_id",
        "pupil_number",
        "household_id",
        "record_count",
        "agency_count",
        "agencies",
        "first_seen",
        "last_seen",
    ],
    "gold.nominal_lineage": [
        "change_id",
        "run_id",
        "kind",
        "from_nominal_id",
        "to_nominal_id",
        "changed_at",
    ],
    "gold.households": [
        "household_id",
        "household_pseudo",
        "address_key",
        "uprn",
        "address_line_1",
        "town",
        "postcode",
        "oa_code",
        "first_seen",
        "last_seen",
        "member_count",
    ],
    "gold.household_members": ["household_id", "nominal_id", "from_date", "to_date", "role"],
    "gold.relationships": ["nominal_id", "related_nominal_id", "relationship", "dataset"],
    "gold.nominal_provenance": [
        "nominal_id",
        "attribute",
        "value",
        "record_key",
        "dataset",
        "rule",
    ],
}


def _columns(home, table: str) -> list[str]:
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap, tables=[table])
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def test_gold_tables_have_the_interface_columns(linked) -> None:
    home, _summary = linked
    for table, columns in GOLD_COLUMNS.items():
        assert _columns(home, table) == columns, table
    events = _columns(home, "gold.events")
    silver = _columns(home, "silver.events")
    assert events[: len(silver)] == silver
    assert events[len(silver) :] == [
        "nominal_id",
        "nominal_pseudo",
        "household_id",
        "household_pseudo",
    ]
    pairs = _columns(home, "gold.pairs")
    assert {"record_key_l", "record_key_r", "match_weight", "mw_given_name"} <= set(pairs)


def test_every_record_is_in_exactly_one_nominal(linked) -> None:
    home, summary = linked
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap)
    silver = con.execute("SELECT count(DISTINCT record_key) FROM silver.identity").fetchall()[0][0]
    rows, keys = con.execute(
        "SELECT count(*), count(DISTINCT record_key) FROM gold.nominal_records"
    ).fetchall()[0]
    assert rows == keys == silver == summary["records"]
    live = con.execute(
        "SELECT count(*) FROM gold.nominal_records WHERE nominal_id NOT IN "
        "(SELECT nominal_id FROM gold.nominals)"
    ).fetchall()[0][0]
    assert live == 0
    # record_count agrees with the records attached
    bad = con.execute(
        """SELECT count(*) FROM gold.nominals n JOIN (SELECT nominal_id, count(*) c
           FROM gold.nominal_records GROUP BY 1) r USING (nominal_id)
           WHERE n.record_count <> r.c"""
    ).fetchall()[0][0]
    assert bad == 0


def test_accuracy_against_truth(linked, town: Path) -> None:
    home, _summary = linked
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap)
    evaluate.register_truth(con, town / "truth")
    metrics = evaluate.cluster_metrics(con, "gold.nominal_records")
    assert metrics["records"] > 3000
    assert metrics["f1"] >= 0.98, metrics
    assert metrics["bcubed_f1"] >= 0.98, metrics
    per_pair = evaluate.per_dataset_pair(con)
    assert {"datasets", "precision", "recall", "f1"} <= set(per_pair[0])


def test_pseudonyms_are_keyed_hmacs(linked) -> None:
    home, _summary = linked
    row = table_rows(home, "gold.nominals", "TRUE LIMIT 1")[0]
    expected = hmac.new(
        home.pseudonym_key, f"nominal|{row['nominal_id']}".encode(), hashlib.sha256
    ).hexdigest()[:32]
    assert row["nominal_pseudo"] == expected


def test_events_carry_nominal_and_household(linked) -> None:
    home, _summary = linked
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap)
    silver, gold, with_nominal, with_household = con.execute(
        """SELECT (SELECT count(*) FROM silver.events), count(*), count(nominal_id),
                  count(household_id) FROM gold.events"""
    ).fetchall()[0]
    assert gold == silver == with_nominal
    assert with_household > 0.9 * gold
    members = con.execute("SELECT count(*) FROM gold.household_members").fetchall()[0][0]
    relationships = con.execute(
        "SELECT relationship, count(*) FROM gold.relationships GROUP BY 1"
    ).fetchall()
    assert members > 0
    kinds = dict(relationships)
    assert kinds.get("parent", 0) == kinds.get("child", 0) > 0


def test_survivorship_keeps_provenance(linked) -> None:
    home, _summary = linked
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap)
    # every surviving value is backed by a record of that nominal holding it
    missing = con.execute(
        """SELECT count(*) FROM gold.nominal_provenance p
           LEFT JOIN gold.nominal_records r
             ON r.record_key = p.record_key AND r.nominal_id = p.nominal_id
           WHERE r.record_key IS NULL"""
    ).fetchall()[0][0]
    assert missing == 0
    mismatched = con.execute(
        """SELECT count(*) FROM gold.nominals n JOIN gold.nominal_provenance p
           ON p.nominal_id = n.nominal_id AND p.attribute = 'family_name'
           WHERE p.value <> n.family_name"""
    ).fetchall()[0][0]
    assert mismatched == 0


def test_rerun_keeps_every_id(linked) -> None:
    home, _summary = linked
    before = {r["record_key"]: r["nominal_id"] for r in table_rows(home, "gold.nominal_records")}
    summary = link_lake(home, mode="full")
    after = {r["record_key"]: r["nominal_id"] for r in table_rows(home, "gold.nominal_records")}
    assert after == before
    assert summary["lineage"] == {}
    assert summary["household_lineage"] == {}  # households keep their ids too
    again = link_lake(home, mode="incremental")
    assert again.get("new_records") == 0


@pytest.fixture(scope="module")
def split_silver(town: Path, tmp_path_factory) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """Silver identity/events split into 90% earlier and 10% later records."""
    key = b"k" * 32
    identity, events = silver_tables(town, key)
    keys = identity["record_key"].to_pylist()
    late_keys = {k for k in keys if int(hashlib.sha256(k.encode()).hexdigest(), 16) % 10 == 0}
    late = pa.array([k in late_keys for k in keys])
    late_events = pa.array([k in late_keys for k in events["record_key"].to_pylist()])
    return (
        identity.filter(pc.invert(late)),
        events.filter(pc.invert(late_events)),
        identity.filter(late),
        events.filter(late_events),
    )


def test_incremental_gives_the_same_clusters_as_full(split_silver, model_dir, tmp_path) -> None:
    early_id, early_ev, late_id, late_ev = split_silver
    inc = new_home(tmp_path / "inc", model_dir)
    write_silver(inc, early_id, early_ev)
    link_lake(inc, mode="full")
    before = {r["record_key"]: r["nominal_id"] for r in table_rows(inc, "gold.nominal_records")}
    earlier = Lake(inc.lake).require_current()
    write_silver(inc, late_id, late_ev, append=True)
    summary = link_lake(inc, mode="incremental")
    # no earlier record changed or went: the pairs and standardised records are
    # appended to, their earlier files kept as they were
    later = Lake(inc.lake).require_current()
    for table in ("gold.pairs", "link.standardised"):
        assert set(earlier.files(table)) < set(later.files(table)), table
    assert summary["mode"] == "incremental"
    assert summary["new_records"] == late_id.num_rows
    assert summary["affected_nominals"] < len(set(before.values()))
    # the delivery was appended: only its file was read whole
    assert summary["silver_since_last_run"] is True

    full = new_home(tmp_path / "full", model_dir)
    write_silver(full, early_id, early_ev)
    write_silver(full, late_id, late_ev, append=True)
    link_lake(full, mode="full")
    assert partition(inc) == partition(full)

    # earlier records keep their ids unless their nominal merged into another
    after = {r["record_key"]: r["nominal_id"] for r in table_rows(inc, "gold.nominal_records")}
    moved = {before[k] for k in before if after[k] != before[k]}
    for old in moved:
        assert resolve(old, inc) in set(after.values())
    # gold tables stay consistent after a delta write
    snap = Lake(inc.lake).require_current()
    con = duck.connect(snap)
    assert (
        con.execute("SELECT count(*) - count(DISTINCT nominal_id) FROM gold.nominals").fetchall()[
            0
        ][0]
        == 0
    )
    assert (
        con.execute("SELECT count(DISTINCT nominal_id) FROM gold.nominal_records").fetchall()[0][0]
        == con.execute("SELECT count(*) FROM gold.nominals").fetchall()[0][0]
    )
    assert (
        con.execute("SELECT count(*) FROM gold.events").fetchall()[0][0]
        == early_ev.num_rows + late_ev.num_rows
    )


# Columns naming the run that wrote a row (a full rebuild rewrites every row).
RUN_COLUMNS = {"linked_run", "run_id", "change_id", "changed_at"}
COMPARED = (
    "link.standardised",
    "link.facts",
    "gold.nominal_records",
    "gold.nominals",
    "gold.nominal_provenance",
    "gold.pairs",
    "gold.addresses",
    "gold.residence",
    "gold.households",
    "gold.household_members",
    "gold.relationships",
    "gold.events",
    "link.blocking_index",
)


def _rows(snap, table: str) -> list[tuple]:
    con = duck.connect(snap, tables=[table])
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        keep = ", ".join(f'"{c}"' for c in sorted(cols) if c not in RUN_COLUMNS)
        return con.execute(f"SELECT {keep} FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_incremental_gold_tables_equal_a_full_rebuild(split_silver, model_dir, tmp_path) -> None:
    """Every gold table an incremental run writes as deltas holds, row for row, what a
    full rebuild of the same home writes (the rebuild keeps the ids by overlap)."""
    early_id, early_ev, late_id, late_ev = split_silver
    home = new_home(tmp_path / "inc", model_dir)
    write_silver(home, early_id, early_ev)
    link_lake(home, mode="full")
    # one nominal loses a record as well: the delivery withdraws it
    gone = early_id["record_key"][0].as_py()
    keep = pc.invert(pc.equal(early_id["record_key"], gone))
    keep_ev = pc.invert(pc.equal(early_ev["record_key"], gone))
    write_silver(home, early_id.filter(keep), early_ev.filter(keep_ev))
    write_silver(home, late_id, late_ev, append=True)
    summary = link_lake(home, mode="incremental")
    assert summary["mode"] == "incremental"
    lake = Lake(home.lake)
    incremental = lake.require_current()
    link_lake(home, mode="full")
    rebuilt = lake.require_current()
    assert rebuilt.id != incremental.id
    for table in COMPARED:
        inc_rows, full_rows = _rows(incremental, table), _rows(rebuilt, table)
        assert len(inc_rows) == len(full_rows), table
        assert inc_rows == full_rows, table


def test_incremental_reading_only_new_silver_files_equals_a_full_rebuild(
    split_silver, model_dir, tmp_path
) -> None:
    """An incremental run after appended deliveries reads only the files delivered since
    the last run; a record re-sent with other details in them (a newer version) is
    re-linked, one re-sent as an older version keeps its current details, and every
    table equals a full rebuild's. A delivery that rewrote an earlier file makes the run
    read every silver key again, with the same result."""
    early_id, early_ev, late_id, late_ev = split_silver
    home = new_home(tmp_path / "inc", model_dir)
    write_silver(home, early_id, early_ev)
    link_lake(home, mode="full")

    def version(row: int, days: int, given: str) -> pa.Table:
        one = early_id.slice(row, 1)
        at = one.schema.get_field_index("received_at")
        shifted = pc.add(one["received_at"], pa.scalar(days * 86_400_000_000, pa.duration("us")))
        one = one.set_column(at, "received_at", pc.cast(shifted, one.schema.field(at).type))
        name = one.schema.get_field_index("given_name")
        return one.set_column(name, "given_name", pa.array([given], one.schema.field(name).type))

    newer, older = version(0, 30, "Zebedee"), version(1, -30, "Obadiah")
    delivery = pa.concat_tables([late_id, newer, older])
    write_silver(home, delivery, late_ev, append=True)
    summary = link_lake(home, mode="incremental")
    assert summary["silver_since_last_run"] is True
    assert summary["new_records"] == late_id.num_rows + 1  # the newer version re-linked
    lake = Lake(home.lake)
    incremental = lake.require_current()
    given = {
        r["record_key"]: r["value"]
        for r in table_rows(home, "gold.nominal_provenance", "attribute = 'given_name'")
    }
    assert "Zebedee" in given.values() and "Obadiah" not in given.values()
    link_lake(home, mode="full")
    rebuilt = lake.require_current()
    for table in COMPARED:
        assert _rows(incremental, table) == _rows(rebuilt, table), table

    # an earlier silver file rewritten (here: the same rows in a new file): every key read
    again = new_home(tmp_path / "again", model_dir)
    write_silver(again, early_id, early_ev)
    link_lake(again, mode="full")
    write_silver(again, early_id, early_ev)
    write_silver(again, delivery, late_ev, append=True)
    summary = link_lake(again, mode="incremental")
    assert summary["silver_since_last_run"] is False
    assert summary["new_records"] == late_id.num_rows + 1
    incremental = Lake(again.lake).require_current()
    link_lake(again, mode="full")
    rebuilt = Lake(again.lake).require_current()
    for table in COMPARED:
        assert _rows(incremental, table) == _rows(rebuilt, table), table


def test_incremental_without_a_saved_blocking_index(split_silver, model_dir, tmp_path) -> None:
    """A lake linked before the blocking index existed (or by Spark) has none: the
    incremental run blocks every earlier record's columns, writes what the indexed run
    writes, and saves the whole index afresh."""
    early_id, early_ev, late_id, late_ev = split_silver
    indexed = new_home(tmp_path / "indexed", model_dir)
    write_silver(indexed, early_id, early_ev)
    link_lake(indexed, mode="full")
    assert Lake(indexed.lake).require_current().rows("link.blocking_index") == early_id.num_rows
    # the same home (same keys, same run) without the index
    shutil.copytree(indexed.root, tmp_path / "plain")
    plain = make_home(tmp_path / "plain")
    with Lake(plain.lake).transaction("no index") as tx:
        tx.drop("link.blocking_index")
        tx.commit(dict(tx.base.summary) if tx.base else {})
    for home in (indexed, plain):
        write_silver(home, late_id, late_ev, append=True)
        link_lake(home, mode="incremental")
    snaps = {name: Lake(h.lake).require_current() for name, h in (("i", indexed), ("p", plain))}
    for table in COMPARED:
        assert _rows(snaps["i"], table) == _rows(snaps["p"], table), table
    # the indexed run appended the new records' keys; the other saved them all at once
    assert len(snaps["i"].files("link.blocking_index")) == 2
    assert len(snaps["p"].files("link.blocking_index")) == 1


def test_a_full_run_repeats_itself_row_for_row(split_silver, model_dir, tmp_path) -> None:
    """Relinking the same data (here with a different number of DuckDB threads, so sums
    and sorts run in another order) writes the same gold tables: every choice among
    equals (survivorship, addresses, household roles, an event's household) ends on a key.
    """
    early_id, early_ev, _, _ = split_silver
    home = new_home(tmp_path / "again", model_dir)
    write_silver(home, early_id, early_ev)
    lake = Lake(home.lake)
    link_lake(home, mode="full", threads=2)
    first = lake.require_current()
    link_lake(home, mode="full", threads=1)
    second = lake.require_current()
    assert second.id != first.id
    for table in COMPARED:
        assert _rows(first, table) == _rows(second, table), table


def test_removed_and_changed_records_keep_lineage(town: Path, model_dir, tmp_path) -> None:
    home = new_home(tmp_path / "home", model_dir)
    identity, events = load_synth_into_home(town, home)
    link_lake(home, mode="full")
    records = table_rows(home, "gold.nominal_records")
    by_nominal: dict[str, list[str]] = {}
    for r in records:
        by_nominal.setdefault(r["nominal_id"], []).append(r["record_key"])
    # a nominal with a single record whose record is withdrawn: its id is retired
    single = sorted(n for n, ks in by_nominal.items() if len(ks) == 1)[0]
    gone_key = by_nominal[single][0]
    keep = pc.invert(pc.is_in(identity["record_key"], pa.array([gone_key])))
    keep_ev = pc.invert(pc.is_in(events["record_key"], pa.array([gone_key])))
    write_silver(home, identity.filter(keep), events.filter(keep_ev))
    summary = link_lake(home, mode="incremental")
    assert summary["mode"] == "incremental"
    lineage = table_rows(home, "gold.nominal_lineage", f"from_nominal_id = '{single}'")
    assert [(r["kind"], r["to_nominal_id"]) for r in lineage] == [("forwarded", None)]
    assert resolve(single, home) is None
    assert not table_rows(home, "gold.nominals", f"nominal_id = '{single}'")


def test_quality_charts_are_written(linked) -> None:
    import json as _json

    home, summary = linked
    folder = home.reports / "linkage"
    for name in ("match_weights", "m_u_parameters", "cluster_sizes", "uncertain_pairs"):
        spec = _json.loads((folder / f"{name}.json").read_text())
        assert spec["data"]["values"], name
        html = (folder / f"{name}.html").read_text()
        assert "vegaEmbed" in html and "cdn" not in html.lower()
    assert summary["charts"]


def test_resolve_is_exported_from_the_package(linked) -> None:
    import nominal.link

    home, _summary = linked
    live = table_rows(home, "gold.nominals", "TRUE LIMIT 1")[0]["nominal_id"]
    assert nominal.link.resolve(live, home) == live
