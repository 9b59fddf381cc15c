"""Ground truth: consistent with itself and with what the feeds say."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from synth_reading import read_delivery

from nominal.contracts import load_contracts
from nominal.synth import SynthSummary


@pytest.fixture(scope="module")
def db(town: tuple[Path, SynthSummary]) -> duckdb.DuckDBPyConnection:
    out, _ = town
    con = duckdb.connect()
    for name in ("people", "households", "addresses", "residence", "relationships",
                 "records", "outcomes", "document_mentions"):  # fmt: skip
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/truth/{name}.parquet')"
        )
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_record_ids_resolve(db: duckdb.DuckDBPyConnection) -> None:
    assert (
        one(
            db, "SELECT count(*) FROM records WHERE person_id NOT IN (SELECT person_id FROM people)"
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM records WHERE household_id NOT IN (SELECT household_id FROM households)",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM records WHERE address_id NOT IN (SELECT address_id FROM addresses)",
        )
        == 0
    )
    for key in ("delivery_file, source_record_id", "dataset, source_record_id, version"):
        assert one(db, f"SELECT count(*) - count(DISTINCT ({key})) FROM records") == 0
    assert (
        one(
            db,
            "SELECT count(*) FROM residence WHERE address_id NOT IN (SELECT address_id FROM addresses)",
        )
        == 0
    )


def test_everyone_lives_somewhere_and_never_in_two_places(db: duckdb.DuckDBPyConnection) -> None:
    assert (
        one(
            db,
            "SELECT count(*) FROM people WHERE person_id NOT IN (SELECT person_id FROM residence)",
        )
        == 0
    )
    overlaps = one(
        db,
        """SELECT count(*) FROM (
             SELECT person_id, from_date, to_date,
                    lead(from_date) OVER (PARTITION BY person_id ORDER BY from_date) AS next_from
             FROM residence)
           WHERE next_from IS NOT NULL AND (to_date IS NULL OR to_date > next_from)""",
    )
    assert overlaps == 0
    # a person's record is made at the address they lived at on that day
    wrong = one(
        db,
        """SELECT count(*) FROM records r JOIN residence s
             ON s.person_id = r.person_id AND s.from_date <= r.event_date
            AND (s.to_date IS NULL OR s.to_date > r.event_date)
           WHERE s.address_id <> r.address_id""",
    )
    assert wrong == 0
    # everyone moves house sometimes, and some records carry the old address
    assert one(db, "SELECT count(*) FROM records WHERE recorded_address_id <> address_id") > 0


def test_families_make_sense(db: duckdb.DuckDBPyConnection) -> None:
    young_parents = one(
        db,
        """SELECT count(*) FROM relationships r
           JOIN people a ON a.person_id = r.person_id_a JOIN people b ON b.person_id = r.person_id_b
           WHERE r.relationship IN ('mother', 'father', 'step_father', 'grandparent')
             AND a.date_of_birth > b.date_of_birth - INTERVAL 14 YEAR""",
    )
    assert young_parents == 0
    twins = db.execute(
        """SELECT a.date_of_birth = b.date_of_birth, a.household_id_at_start = b.household_id_at_start
           FROM relationships r JOIN people a ON a.person_id = r.person_id_a
           JOIN people b ON b.person_id = r.person_id_b WHERE r.relationship = 'twin'"""
    ).fetchall()
    assert twins and all(d and h for d, h in twins)
    assert one(db, "SELECT count(*) FROM people WHERE named_after_father") > 0
    assert one(db, "SELECT count(*) FROM people WHERE name_change_date IS NOT NULL") > 0
    assert one(db, "SELECT count(*) FROM people WHERE family_name LIKE '%-%'") > 0
    kinds = {r[0] for r in db.execute("SELECT DISTINCT address_kind FROM addresses").fetchall()}
    assert {"house", "flat", "care_home", "hostel"} <= kinds
    # communal establishments are shared by many people at once
    assert (
        one(
            db,
            """SELECT max(n) FROM (SELECT address_id, count(*) n FROM residence
           WHERE to_date IS NULL GROUP BY 1)""",
        )
        > 5
    )
    groups = one(db, "SELECT count(DISTINCT ethnicity_code) FROM people")
    assert groups >= 10


def test_feed_values_agree_with_truth_except_where_an_error_was_recorded(
    town: tuple[Path, SynthSummary], db: duckdb.DuckDBPyConnection
) -> None:
    """In the police incidents feed, rows without a name or date-of-birth error carry the
    person's true name and date of birth; rows with a typo do not."""
    out, _ = town
    contract = next(c for c in load_contracts(out / "contracts") if c.feed == "npol-incidents")
    f = contract.fields
    rows = []
    for path in sorted((out / "feeds").glob("npol_incidents_*.csv")):
        rows += read_delivery(path, contract)
    truth = {
        r[0]: r[1:]
        for r in db.execute(
            """SELECT r.source_record_id, p.given_name, p.family_name, p.family_name_at_start,
                      strftime(p.date_of_birth, '%d/%m/%Y'), r.errors, r.event_date,
                      p.name_change_date
               FROM records r JOIN people p USING (person_id) WHERE r.feed = 'npol-incidents'"""
        ).fetchall()
    }
    from nominal.synth.render import BIT

    name_bits = sum(BIT[k] for k in ("typo", "nickname", "name_order_swapped", "initial_only",
                                     "partial_double_barrel", "diacritics_dropped",
                                     "former_family_name"))  # fmt: skip
    dob_bits = sum(BIT[k] for k in ("dob_day_month_swapped", "dob_digit_error", "dob_missing",
                                    "date_invalid", "required_missing"))  # fmt: skip
    clean = typo_rows = typo_differ = 0
    for row in rows:
        given, family, family_start, dob, errors, day, change = truth[row[f["record_id"].source]]
        family_then = family if change is None or day >= change else family_start
        recorded = (row[f["given_name"].source], row[f["family_name"].source])
        if errors & (name_bits | dob_bits) == 0:
            clean += 1
            assert recorded == (given, family_then)
            assert row[f["date_of_birth"].source] == dob
        if errors & BIT["typo"]:
            typo_rows += 1
            typo_differ += recorded != (given, family_then)
    assert clean > 0.8 * len(rows)
    assert typo_rows > 0 and typo_differ >= 0.9 * typo_rows


def test_cases_closing_later_are_resent_closed_under_the_same_id(
    town: tuple[Path, SynthSummary], db: duckdb.DuckDBPyConnection
) -> None:
    out, _ = town
    contract = next(c for c in load_contracts(out / "contracts") if c.feed == "kcc-cin-cp")
    f = contract.fields
    versions = {}
    for path in sorted((out / "feeds").glob("kcc_cin_cp_*.csv")):
        for row in read_delivery(path, contract):
            versions.setdefault(row[f["record_id"].source], []).append((path.name, row))
    resent = {k: v for k, v in versions.items() if len(v) > 1}
    assert resent
    expected = one(db, "SELECT count(*) FROM records WHERE feed = 'kcc-cin-cp' AND version = 2")
    assert len(resent) == expected
    for (first_file, first), (second_file, second) in resent.values():
        assert first_file < second_file
        assert first[f["event_status"].source] == "open"
        assert first[f["event_end_date"].source] == ""
        assert second[f["event_status"].source] == "closed"
        assert second[f["event_end_date"].source] != ""
        assert first[f["given_name"].source] == second[f["given_name"].source]


def test_partner_styles_and_duplicate_nominals(town: tuple[Path, SynthSummary]) -> None:
    out, _ = town
    contracts = {c.feed: c for c in load_contracts(out / "contracts")}
    dwp = contracts["dwp-claims"]
    rows = read_delivery(sorted((out / "feeds").glob("dwp_claims_*.csv"))[-1], dwp)
    surnames = [r[dwp.fields["family_name"].source] for r in rows]
    assert surnames and all(s == s.upper() for s in surnames)
    fire = contracts["nfrs-hfsv"]
    lines = []
    for path in sorted((out / "feeds").glob("nfrs_hfsv_*.csv")):
        lines += [r[fire.fields["address_line_1"].source] for r in read_delivery(path, fire)]
    assert not any(line.endswith(" Road") for line in lines)
    assert any(line.endswith(" Rd") for line in lines)
    # some people have two police nominal ids
    police = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    from nominal.synth.render import BIT

    dup = police[
        (police.feed == "npol-incidents") & ((police.errors & BIT["duplicate_nominal"]) > 0)
    ]
    assert len(dup) > 0
