"""Every validation and standardisation rule, through the real pipeline and lake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nominal.config import Home
from nominal.ingest import ingest_paths
from nominal.ingest.pseudonym import pseudonym

from .helpers import contract_dict, good_row, query, write_contract, write_csv


def _ingest(home: Home, tmp_path: Path, rows: list[dict[str, str]], **kw: object):
    contracts = tmp_path / "contracts"
    write_contract(contracts, contract_dict(**kw))  # type: ignore[arg-type]
    feed = write_csv(tmp_path / "in" / "test_1.csv", rows)
    return ingest_paths(home, [feed], contracts=contracts)


def test_standardises_a_good_row(hub_home: Home, tmp_path: Path) -> None:
    summary = _ingest(hub_home, tmp_path, [good_row(1)])
    assert summary.ok and summary.rows_accepted == 1 and summary.rows_quarantined == 0
    (row,) = query(
        hub_home,
        "SELECT given_name, family_name, date_of_birth::VARCHAR, sex, postcode, nhs_number,"
        " ni_number, phone, email, source_record_id, record_key, personal_attributes, row_number"
        " FROM silver.identity",
    )
    assert row[:10] == (
        "Mary Ann", "O'Neil-Smith", "1990-02-01", "F", "NX1 2JW", "9434765919",
        "AB123456C", "+447700900123", "mary.smith@example.com", "R000001",
    )  # fmt: skip
    assert row[10] == pseudonym(hub_home.pseudonym_key, "test_feed|R000001")
    assert json.loads(row[11]) == {"ethnicity": "W1"}
    assert row[12] == 1
    (event,) = query(
        hub_home,
        "SELECT event_key, event_type, event_date::VARCHAR, attributes FROM silver.events",
    )
    assert event[0] == pseudonym(hub_home.pseudonym_key, "test_feed|E000001")
    assert event[1:3] == ("test_event", "2024-03-15")
    assert json.loads(event[3]) == {"outcome": "open", "score": 3}


@pytest.mark.parametrize(
    ("column", "value", "field", "code"),
    [
        ("NHS", "9434765918", "nhs_number", "nhs_number_invalid"),  # check digit wrong
        ("NHS", "94347659", "nhs_number", "nhs_number_invalid"),  # too short
        ("Postcode", "NX1-HR9", "postcode", "postcode_invalid"),
        ("EventDate", "30/02/2024", "event_date", "date_invalid"),
        ("EventDate", "", "event_date", "required_missing"),
        ("DOB", "1990-13-45", "date_of_birth", "date_invalid"),
        ("DOB", "01/01/0202", "date_of_birth", "date_invalid"),  # impossible year
        ("NINO", "DA123456C", "ni_number", "ni_number_invalid"),  # D never a first letter
        ("NINO", "GB123456A", "ni_number", "ni_number_invalid"),  # never-issued prefix
        ("Phone", "12345", "phone", "phone_invalid"),
        ("Email", "not-an-email", "email", "email_invalid"),
        ("Sex", "Q", "sex", "sex_invalid"),
        ("Outcome", "pending", "outcome", "category_invalid"),
        ("Score", "three", "score", "integer_invalid"),
        ("Ref", "", "record_id", "required_missing"),
    ],
)
def test_each_rule_quarantines_with_file_row_field_and_reason(
    hub_home: Home, tmp_path: Path, column: str, value: str, field: str, code: str
) -> None:
    bad = good_row(2)
    bad[column] = value
    summary = _ingest(hub_home, tmp_path, [good_row(1), bad, good_row(3)])
    assert (summary.rows_in, summary.rows_accepted, summary.rows_quarantined) == (3, 2, 1)
    ((file_name, row_number, qfield, reason, raw),) = query(
        hub_home, "SELECT file_name, row_number, field, reason, raw FROM silver.quarantine"
    )
    assert (file_name, row_number, qfield) == ("test_1.csv", 2, field)
    assert reason.startswith(f"{field}: {code}")
    assert json.loads(raw)[column] == (value or None)


@pytest.mark.parametrize(
    ("column", "value", "identity_column", "expected"),
    [
        ("Postcode", "NX1", "postcode", "NX1"),  # outward code only is kept
        ("Postcode", " sw1a 1aa ", "postcode", "SW1A 1AA"),
        ("Postcode", "", "postcode", None),
        ("Phone", "+44 7700 900123", "phone", "+447700900123"),
        ("Phone", "(0113) 496 0000", "phone", "+441134960000"),
        ("Sex", "female", "sex", "F"),
        ("Sex", "1", "sex", "M"),
        ("Sex", "unknown", "sex", None),
        ("Forename", "  JEAN-luc   ", "given_name", "Jean-Luc"),
        ("NINO", "qq123456c", "ni_number", None),  # see the quarantine test: invalid
    ][:-1],
)
def test_standardisation_of_accepted_values(
    hub_home: Home, tmp_path: Path, column: str, value: str, identity_column: str, expected: str
) -> None:
    row = good_row(1)
    row[column] = value
    summary = _ingest(hub_home, tmp_path, [row])
    assert summary.rows_accepted == 1, summary.deliveries[0]
    ((got,),) = query(hub_home, f"SELECT {identity_column} FROM silver.identity")
    assert got == expected


def test_every_failing_field_is_named(hub_home: Home, tmp_path: Path) -> None:
    row = good_row(1)
    row["NHS"] = "1234567890"
    row["Postcode"] = "???"
    row["EventDate"] = ""
    _ingest(hub_home, tmp_path, [row])
    ((field, reason),) = query(hub_home, "SELECT field, reason FROM silver.quarantine")
    assert field == "postcode"  # the first failing field in contract order
    for part in ("postcode: postcode_invalid", "nhs_number: nhs_number_invalid",
                 "event_date: required_missing"):  # fmt: skip
        assert part in reason


def test_contract_date_format_is_used(hub_home: Home, tmp_path: Path) -> None:
    row = good_row(1)
    row["EventDate"] = "03/15/2024"  # US format
    row["DOB"] = "02/01/1990"
    summary = _ingest(hub_home, tmp_path, [row], fmt={"type": "csv", "date_format": "%m/%d/%Y"})
    assert summary.rows_accepted == 1
    ((dob, ev),) = query(
        hub_home,
        "SELECT i.date_of_birth::VARCHAR, e.event_date::VARCHAR FROM silver.identity i "
        "JOIN silver.events e USING (record_key)",
    )
    assert (dob, ev) == ("1990-02-01", "2024-03-15")


def test_retention_expired_rows_are_quarantined_without_their_contents(
    hub_home: Home, tmp_path: Path
) -> None:
    old = good_row(2)
    old["EventDate"] = "01/01/2001"
    summary = _ingest(hub_home, tmp_path, [good_row(1), old], retention_years=7)
    assert (summary.rows_accepted, summary.rows_quarantined) == (1, 1)
    assert summary.deliveries[0].rows_expired == 1
    ((field, reason, raw),) = query(hub_home, "SELECT field, reason, raw FROM silver.quarantine")
    assert field == "event_date" and reason.startswith("retention_expired")
    assert raw is None  # data past its retention is not kept anywhere in silver


@pytest.mark.parametrize("mode", ["on", "numba", "off"])
def test_compiled_pseudonyms_equal_the_sql_ones(
    hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A delivery pseudonymised by either compiled HMAC (C: "on"; numba) or the SQL form
    ("off") gets exactly the keys of ``hmac``."""
    monkeypatch.setenv("NOMINAL_COMPILED_HMAC", mode)
    rows = [good_row(i) for i in range(1, 301)]
    rows[5]["EventRef"] = ""  # no event id: the event key is the record key
    summary = _ingest(hub_home, tmp_path, rows)
    assert summary.ok and summary.rows_accepted == 300
    key = hub_home.pseudonym_key
    got = query(
        hub_home,
        "SELECT i.source_record_id, i.record_key, e.event_key FROM silver.identity i "
        "JOIN silver.events e USING (record_key) ORDER BY 1",
    )
    assert len(got) == 300
    for record_id, record_key, event_key in got:
        assert record_key == pseudonym(key, f"test_feed|{record_id}")
        event_id = "E" + record_id[1:]
        expected_event = (
            record_key if record_id == "R000006" else pseudonym(key, f"test_feed|{event_id}")
        )
        assert event_key == expected_event
