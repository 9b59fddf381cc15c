"""The bronze copy's scan of a CSV file, and the cheaper text level it allows.

``TextScan`` calls a file clean only if no value of it can begin or end with a space or
hold a non-ASCII character; standardisation then skips the per-value trim test
(``text_sql(..., clean=True)``). Checked on generated files parsed by the real reader,
in chunks of every size, and by ingesting the same deliveries both ways.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nominal.config import home as make_home
from nominal.contracts.model import Contract, FormatSpec
from nominal.ingest import hmac_native, ingest_paths
from nominal.ingest.readers import TextScan, read_csv
from nominal.ingest.standardise import text_sql

from .helpers import contract_dict, good_row, query, write_contract, write_csv

pytestmark = pytest.mark.skipif(not hmac_native.available(), reason="no C compiler")

_CELL = st.text(alphabet=st.sampled_from(list("ab Z09 ,\"'\n\r\t-é")), max_size=6)


def _contract(**fmt: str) -> Contract:
    data = contract_dict(fmt={"type": "csv", "date_format": "%d/%m/%Y", **fmt})
    return Contract.model_validate(data)


def _scan(data: bytes, contract: Contract, chunk: int) -> bool:
    scan = TextScan.for_contract(contract)
    assert scan is not None
    for i in range(0, len(data), chunk):
        scan.update(data[i : i + chunk])
    return scan.clean


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=8),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    delimiter=st.sampled_from([",", ";", "|"]),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_a_clean_file_has_no_value_that_trimming_changes(
    rows: list[list[str]], quoting: int, delimiter: str, chunk: int
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(["A", "B", "C"])
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    contract = _contract(delimiter=delimiter)
    clean = _scan(data, contract, chunk)
    assert clean == _scan(data, contract, len(data))  # chunk edges change nothing
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_1.csv"
        path.write_bytes(data)
        con = duckdb.connect()
        try:
            values = con.execute(f"SELECT * FROM {read_csv(con, path, contract, Path(tmp))}")
            cells = [v for row in values.fetchall() for v in row if v is not None]
        except duckdb.Error:
            return  # a file DuckDB refuses is never standardised
        finally:
            con.close()
    if clean:
        assert all(v.isascii() and v == v.strip(" ") for v in cells)
    if any(v != v.strip(" ") or not v.isascii() for v in cells):
        assert not clean


@pytest.mark.parametrize(
    ("data", "clean"),
    [
        (b"A,B\nx,y\n", True),
        (b"A,B\nx y,z\n", True),  # a space inside a value
        (b"A,B\nx ,y\n", False),  # before the delimiter
        (b"A,B\nx, y\n", False),  # after it
        (b"A,B\nx,y \n", False),  # before the line end
        (b"A,B\r\nx,y \r\n", False),
        (b"A,B\n x,y\n", False),  # at the start of a line
        (b' A,B\nx,"y"\n', False),  # at the start of the file
        (b"A,B\nx,y ", False),  # at the very end
        (b'A,B\n"x ",y\n', False),  # inside quotes
        (b'A,B\n" x",y\n', False),
        (b"A,B\nx,Zo\xc3\xab\n", False),  # not ASCII
    ],
)
def test_scan_cases(data: bytes, clean: bool) -> None:
    contract = _contract()
    for chunk in range(1, len(data) + 1):
        assert _scan(data, contract, chunk) is clean, chunk


def test_scan_only_for_csv_in_an_ascii_compatible_encoding() -> None:
    assert TextScan.for_contract(_contract(encoding="cp1252")) is not None
    assert TextScan.for_contract(_contract(encoding="utf-16")) is None
    ndjson = Contract.model_validate(contract_dict(fmt={"type": "ndjson"}))
    assert TextScan.for_contract(ndjson) is None


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.sampled_from(list("aNUL/ln -'\t")), max_size=6).map(
                lambda s: s.strip(" ")
            ),
        ),
        max_size=40,
    ),
    markers=st.lists(st.text(alphabet=st.sampled_from(list("aNUL/ l")), max_size=4), max_size=3),
)
def test_clean_text_sql_equals_the_full_test_on_clean_values(
    values: list[str | None], markers: list[str]
) -> None:
    con = duckdb.connect()
    con.register("t", pa.table({"s": pa.array(values, pa.string())}))
    full, fast = text_sql("s", tuple(markers)), text_sql("s", tuple(markers), clean=True)
    got = con.execute(f"SELECT {full}, {fast} FROM t").fetchall()
    assert [g[0] for g in got] == [g[1] for g in got]
    con.register("d", pa.table({"s": pa.array(["N/A", "x", "", None, "null"], pa.string())}))
    markers_csv = FormatSpec(type="csv").null_values
    assert [r[0] for r in con.execute(f"SELECT {text_sql('s', markers_csv, clean=True)} FROM d")
            .fetchall()] == [None, "x", None, None, None]  # fmt: skip


_SILVER = {
    "silver.identity": "SELECT * EXCLUDE (received_at) FROM silver.identity ORDER BY row_number",
    "silver.events": "SELECT * EXCLUDE (received_at) FROM silver.events ORDER BY record_key",
    "silver.quarantine": "SELECT * EXCLUDE (quarantined_at) FROM silver.quarantine "
    "ORDER BY row_number",
}


def _ingest(root: Path, feed: Path, *, scan: bool, monkeypatch: pytest.MonkeyPatch) -> dict:
    home = make_home(root / ("scan" if scan else "noscan")).ensure()
    shared = make_home(root / "scan").ensure()  # one pseudonym key for both homes
    if home.root != shared.root:
        shared.secret("pseudonym")  # generated on first use
        (home.keys / "pseudonym.key").write_bytes((shared.keys / "pseudonym.key").read_bytes())
    with monkeypatch.context() as m:
        if not scan:
            m.setattr(TextScan, "for_contract", classmethod(lambda cls, contract: None))
        summary = ingest_paths(home, [feed], contracts=root / "contracts")
    assert summary.ok
    return {table: query(home, sql) for table, sql in _SILVER.items()}


@pytest.mark.parametrize("padded", [False, True])
def test_silver_is_the_same_with_and_without_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, padded: bool
) -> None:
    rows = [good_row(i) for i in range(40)]
    rows[3]["Postcode"] = "NX1-HR9"  # quarantined
    rows[5]["EventDate"] = "N/A"  # a null marker: required, so quarantined
    rows[7]["Forename"] = "NULL"
    if padded:
        rows[11]["Surname"] = " Smith  "  # trimmed either way
        rows[12]["Email"] = "n/a "
    write_contract(tmp_path / "contracts", contract_dict())
    feed = write_csv(tmp_path / "in" / "test_1.csv", rows)
    contract = Contract.model_validate(contract_dict())
    assert _scan(feed.read_bytes(), contract, 1 << 22) is not padded
    with_scan = _ingest(tmp_path, feed, scan=True, monkeypatch=monkeypatch)
    without = _ingest(tmp_path, feed, scan=False, monkeypatch=monkeypatch)
    assert with_scan == without
    assert len(with_scan["silver.identity"]) == 38 and len(with_scan["silver.quarantine"]) == 2
    names = {r[0] for r in query(make_home(tmp_path / "scan"), "SELECT family_name FROM "
                                 "silver.identity")}  # fmt: skip
    assert ("Smith" in names) is padded and all(n == n.strip() for n in names)


def test_silver_columns_past_the_dictionary_limit_are_written_plainly(tmp_path: Path) -> None:
    """Near-unique columns are stored plainly, few-valued ones dictionary-encoded.

    ``DICTIONARY_SIZE_LIMIT`` (4,096 entries) stops the writer building a dictionary
    it would drop; 5,000 distinct record keys in one row group pass it, the names and
    the delivery constants stay far below it. The values read back are the same.
    """
    import pyarrow.parquet as pq

    from nominal.engines.lake import Lake
    from nominal.ingest.pipeline import DICTIONARY_SIZE_LIMIT

    rows = [good_row(i) for i in range(DICTIONARY_SIZE_LIMIT + 904)]
    write_contract(tmp_path / "contracts", contract_dict())
    feed = write_csv(tmp_path / "in" / "test_1.csv", rows)
    home = make_home(tmp_path / "home").ensure()
    assert ingest_paths(home, [feed], contracts=tmp_path / "contracts").ok
    (path,) = Lake(home.lake).require_current().files("silver.identity")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    names = [meta.column(i).path_in_schema for i in range(meta.num_columns)]

    def encodings(column: str) -> set[str]:
        return set(meta.column(names.index(column)).encodings)

    assert not any("DICTIONARY" in e for e in encodings("record_key"))
    assert not any("DICTIONARY" in e for e in encodings("source_record_id"))
    assert any("DICTIONARY" in e for e in encodings("given_name"))
    assert any("DICTIONARY" in e for e in encodings("feed"))
    ids = query(home, "SELECT source_record_id FROM silver.identity ORDER BY row_number")
    assert [r[0] for r in ids] == [r["Ref"] for r in rows]
