"""Standardisation rules (DuckDB SQL): each recording error partners make is undone."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pytest

from nominal.link.standardise import nickname_rows, standardise

ROWS = [
    # key, given, family, dob, postcode, line1, line2, other
    ("a", "William", "Smith", "1980-03-04", "NX1 7WH", "12 Acacia Road", None, None),
    ("b", "Bill", "SMITH", "1980-04-03", "nx17wh", "12 Acacia Rd", None, None),
    ("c", "Peggy", "Wróblewska-Nowak", "1975-12-31", "NX1", "Flat 3", "9 Patel Ct", None),
    ("d", "M", "Nowak", None, "NX2 1AB", "9 Patel Court", None, "Wróblewska"),
    ("e", "  Mary-Jane ", "O'Brien", "2001-07-15", None, None, None, None),
]


@pytest.fixture(scope="module")
def std() -> dict[str, dict]:
    con = duckdb.connect()
    cols = [
        "record_key",
        "given_name",
        "family_name",
        "date_of_birth",
        "postcode",
        "address_line_1",
        "address_line_2",
        "other_names",
    ]
    table = pa.table({c: [r[i] for r in ROWS] for i, c in enumerate(cols)})
    con.register("raw", table)
    standardise(con, "raw", "out", present=set(cols))
    rel = con.sql("SELECT * FROM out")
    return {r[0]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}


def test_nicknames_map_to_their_full_names(std) -> None:
    assert "william" in std["b"]["given_groups"]
    assert std["a"]["given_canon"] == std["b"]["given_canon"] == "william"
    assert std["c"]["given_groups"] == ["margaret"]
    pairs = set(nickname_rows())
    assert {("bill", "william"), ("peggy", "margaret"), ("jack", "john")} <= pairs


def test_case_diacritics_and_double_barrelled_names(std) -> None:
    assert std["b"]["family_std"] == "smith"
    assert std["c"]["family_std"] == "wroblewskanowak"
    assert std["c"]["family_tokens"] == ["wroblewska", "nowak"]
    assert "nowak" in std["d"]["family_tokens"]
    assert std["d"]["other_std"] == "wroblewska"
    assert std["e"]["family_std"] == "obrien"
    assert std["e"]["given_std"] == "mary-jane"


def test_initials(std) -> None:
    assert std["d"]["given_std"] == "m"
    assert std["d"]["given_initial"] == "m"


def test_dates_of_birth_and_swapped_day_month(std) -> None:
    assert std["a"]["dob"] == date(1980, 3, 4)
    assert std["a"]["dob_str"] == "19800304"
    assert std["a"]["dob_swapped"] == std["b"]["dob"]
    assert std["c"]["dob_swapped"] is None  # day 31 cannot be a month
    assert std["d"]["dob"] is None


def test_postcodes_in_part(std) -> None:
    assert std["a"]["postcode_std"] == std["b"]["postcode_std"] == "NX17WH"
    assert std["a"]["postcode_sector"] == "NX17"
    assert std["a"]["postcode_district"] == "NX1"
    assert std["c"]["postcode_std"] is None and std["c"]["postcode_district"] == "NX1"
    assert std["e"]["postcode_district"] is None


def test_address_tokens_expand_abbreviations(std) -> None:
    assert std["a"]["address_std"] == std["b"]["address_std"] == "12 acacia road"
    assert std["c"]["address_std"] == "flat 3 9 patel court"
    assert std["d"]["house_number"] == "9"
    assert std["c"]["house_number"] == "3"
