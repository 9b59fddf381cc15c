"""The postcode and name rules' fast paths give what the general definitions give.

A postcode already in the standard form and a name already in title case are kept
after one pattern match; every other value takes the general path. Checked on
generated values (mostly near-misses) against the plain definitions, in real DuckDB,
for the value, the text an error names and whether the value is an error.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.contracts.model import Contract
from nominal.ingest.standardise import (
    MACROS,
    POSTCODE_FULL,
    POSTCODE_OUTWARD,
    field_sql,
)

from .helpers import contract_dict

_CONTRACT = Contract.model_validate(contract_dict())


def _con(values: list[str | None]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for macro in MACROS:
        con.execute(macro)
    con.register("raw", pa.table({"r": pa.array(values, pa.string())}))
    return con


def _rule(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[object, ...]]:
    f = field_sql(_CONTRACT, name, "r", "t", "v")
    return con.execute(
        f"SELECT t, v, {f.error} FROM (SELECT *, {f.value} AS v FROM "
        f"(SELECT {f.text} AS t FROM raw))"
    ).fetchall()


_POSTCODE = st.lists(
    st.one_of(
        st.none(),
        st.text(alphabet=st.sampled_from(list("NXSWA1290 aj-\t")), max_size=9),
        st.sampled_from(["NX1 2JW", "SW1A 1AA", "nx1 2jw", "NX12JW", "NX1  2JW", " NX1 2JW",
                         "NX1", "N1 1AA", "NX1 2J", "NX1 2JWW", "AB12 3CD", "A1A 1AA"]),
    ),
    max_size=40,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(values=_POSTCODE)
def test_postcode_rule_equals_the_general_definition(values: list[str | None]) -> None:
    con = _con(values)
    general_text = "upper(replace(r, ' ', ''))"
    general_value = (
        f"CASE WHEN regexp_full_match(t, '{POSTCODE_FULL}') "
        "THEN left(t, length(t) - 3) || ' ' || right(t, 3) "
        f"WHEN length(t) <= 4 AND regexp_full_match(t, '{POSTCODE_OUTWARD}') THEN t END"
    )
    expected = con.execute(
        f"SELECT t, v, CASE WHEN t IS NOT NULL AND v IS NULL THEN 'postcode_invalid: ''' || t "
        f"|| ''' is not a UK postcode' END FROM (SELECT *, {general_value} AS v FROM "
        f"(SELECT {general_text} AS t FROM raw))"
    ).fetchall()
    got = _rule(con, "postcode")
    assert [g[1:] for g in got] == [e[1:] for e in expected]  # value and error text


_NAMES = st.lists(
    st.one_of(
        st.none(),
        st.text(alphabet=st.sampled_from(list("aAbZé -'\t\n")), max_size=10),
        st.sampled_from(["Smith", "O'Neil-Hughes", "mary  ann", "o'NEIL-SMITH", "Ann Marie",
                         "Ann  Marie", "Ann\tMarie", "ANN", "Zoë", "de la Cruz", "A-B C'D"]),
    ),
    max_size=40,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(values=_NAMES)
def test_name_rule_equals_the_general_definition(values: list[str | None]) -> None:
    con = _con(values)
    expected = con.execute("SELECT nominal_title(nominal_squash(r)) FROM raw").fetchall()
    for name in ("given_name", "family_name"):
        assert [g[1] for g in _rule(con, name)] == [e[0] for e in expected]
