"""The fast text and name expressions give exactly what the plain definitions give.

``text_sql`` trims and tests null markers only where it can matter, and
``nominal_title`` skips counting separators in names that have none; both are checked
against the straightforward definitions on generated values, in real DuckDB.
"""

from __future__ import annotations

import unicodedata

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.contracts.model import FormatSpec
from nominal.ingest.standardise import MACROS, TITLED_NAME, one_of, text_sql

# Few characters, so that spaces, markers and separators come up often.
_CHARS = st.sampled_from([" ", " ", "a", "N", "U", "L", "l", "/", "A", "n", "-", "'", "\t",
                          "é", "É", "ß", "İ", "ǆ", "e\u0301", "\u00a0", "\u3000", "\u2003"])  # fmt: skip
_VALUES = st.lists(st.one_of(st.none(), st.lists(_CHARS, max_size=8).map("".join)), max_size=40)
_MARKERS = st.lists(st.lists(_CHARS, max_size=5).map("".join), max_size=4).map(tuple)


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for macro in MACROS:
        con.execute(macro)
    return con


def _trim(value: str) -> str:
    """DuckDB's ``trim``: Unicode space separators (category Zs) off both ends."""
    spaces = "".join({c for c in value if unicodedata.category(c) == "Zs"})
    return value.strip(spaces) if spaces else value


def _reference_text(value: str | None, markers: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    trimmed = _trim(value)
    return None if trimmed in (markers or ("",)) else trimmed


@settings(max_examples=30, deadline=None)
@given(values=_VALUES, markers=_MARKERS)
def test_text_sql_is_trim_then_null_markers(
    values: list[str | None], markers: tuple[str, ...]
) -> None:
    con = _con()
    con.register("t", pa.table({"s": pa.array(values, pa.string())}))
    plain = f"CASE WHEN {one_of('trim(s)', markers or ('',))} THEN NULL ELSE trim(s) END"
    got = con.execute(f"SELECT {text_sql('s', markers)}, {plain} FROM t").fetchall()
    assert [g[0] for g in got] == [g[1] for g in got]  # the plain SQL definition
    assert [g[0] for g in got] == [_reference_text(v, markers) for v in values]


def test_text_sql_default_markers() -> None:
    con = _con()
    values = ["N/A", " null ", "  x  ", "", "   ", "NULLS", "n/a ", None, "Smith"]
    con.register("t", pa.table({"s": pa.array(values, pa.string())}))
    got = [
        r[0]
        for r in con.execute(
            f"SELECT {text_sql('s', FormatSpec(type='csv').null_values)} FROM t"
        ).fetchall()
    ]
    assert got == [None, None, "x", None, None, "NULLS", None, None, "Smith"]


@settings(max_examples=30, deadline=None)
@given(values=_VALUES)
def test_title_case_equals_the_general_definition(values: list[str | None]) -> None:
    con = _con()
    con.register("t", pa.table({"s": pa.array(values, pa.string())}))
    general = (
        "nominal_title2(s, length(s) - length(translate(s, ' -''', '')), "
        "strpos(translate(s, '-''', '  '), ' '))"
    )
    got = con.execute(f"SELECT nominal_title(s), {general} FROM t").fetchall()
    assert [g[0] for g in got] == [g[1] for g in got]


def test_title_case_examples() -> None:
    con = _con()
    got = con.execute(
        "SELECT nominal_title('smith'), nominal_title('o''NEIL-SMITH'), "
        "nominal_title('mary ann'), nominal_title('éLODIE'), nominal_title(NULL)"
    ).fetchone()
    assert got == ("Smith", "O'Neil-Smith", "Mary Ann", "Élodie", None)


def test_names_already_in_title_case_take_the_fast_path_unchanged() -> None:
    """Names matching TITLED_NAME are returned as they are; the general form agrees."""
    con = _con()
    values = ["Smith", "O'Neil-Hughes", "Mary Ann", "A", "Ab-", "A--B", "McDonald", "Smith ",
              "ÉLodie", "Van Der Berg", "D'Arcy", "Al'", None]  # fmt: skip
    con.register("t", pa.table({"s": pa.array(values, pa.string())}))
    general = (
        "nominal_title2(s, length(s) - length(translate(s, ' -''', '')), "
        "strpos(translate(s, '-''', '  '), ' '))"
    )
    got = con.execute(
        f"SELECT s, nominal_title(s), {general}, regexp_full_match(s, ?) FROM t", [TITLED_NAME]
    ).fetchall()
    assert [g[1] for g in got] == [g[2] for g in got]
    fast = {g[0] for g in got if g[3]}
    assert fast == {"Smith", "O'Neil-Hughes", "Mary Ann", "A", "Van Der Berg", "D'Arcy"}
    assert all(g[1] == g[0] for g in got if g[3])
