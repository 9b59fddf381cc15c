"""The one-record standardisation search uses equals the linkage SQL, record by record."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from search_town import Town

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.link.standardise import INPUT_COLUMNS, register_nicknames, standardise_sql
from nominal.search.standard import standardise_record

AWKWARD: list[dict[str, Any]] = [
    {"given_name": "  Åsa-Marie  Jo ", "family_name": "O'Brien-Smith ", "date_of_birth": "1987-03-04",
     "postcode": "nx1 2bt", "street_number": "12A", "address_line_1": "Flat 3, High Rd",
     "town": "Kettleby", "nhs_number": "943 476 5919", "sex": "female"},
    {"given_name": "J", "postcode": "NX1"},
    {"family_name": "de la Cruz", "date_of_birth": "1990-12-12", "postcode": "75001",
     "address_line_1": "Kettleby Road", "town": "kettleby", "ni_number": "ab 12 34 56 c"},
    {"given_name": "Bill", "date_of_birth": "not a date", "postcode": "NX1 2", "sex": "m"},
    {},
]  # fmt: skip


def sql_standardised(con: Any, table: pa.Table) -> dict[str, dict[str, Any]]:
    con.register("raw_records", table)
    present = {"record_key", *[c for c in INPUT_COLUMNS if c in table.column_names]}
    rows = con.sql(standardise_sql("raw_records", present=present)).to_arrow_table().to_pylist()
    return {r["unique_id"]: r for r in rows}


def test_every_record_of_the_town_and_awkward_ones(town: Town) -> None:
    con = duck.connect(Lake(town.home.lake).require_current())
    register_nicknames(con)
    identity = con.sql("SELECT * FROM silver.identity").to_arrow_table()
    expected = sql_standardised(con, identity)
    assert len(expected) > 1000
    for record in identity.to_pylist():
        assert standardise_record(record, record["record_key"]) == expected[record["record_key"]]
    awkward = [
        {c: None for c in INPUT_COLUMNS} | {"record_key": f"a{i}"} | r
        for i, r in enumerate(AWKWARD)
    ]
    table = pa.Table.from_pylist(awkward)
    expected = sql_standardised(con, table)
    for record in awkward:
        assert standardise_record(record, record["record_key"]) == expected[record["record_key"]]
