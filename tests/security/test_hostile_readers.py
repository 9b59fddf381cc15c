"""Property tests: every reader and validator survives hostile input.

For each delivery format, hypothesis builds files that are well-formed but full of
hostile values (control characters, quotes, separators, formula prefixes, SQL, very
long and non-Latin text), and files that are arbitrary or mutated bytes. The whole
ingest runs on each: it must not crash or hang, a refused file must be named in the
error, and rows in = accepted + quarantined with the snapshot holding exactly those.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import date
from pathlib import Path

import hostile
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(300)

# Each example is a whole ingest run (~0.2 s): a few per property in the default suite,
# more with NOMINAL_HOSTILE_EXAMPLES=200 (the fuzzers in fuzz/ go much further).
EXAMPLES = int(os.environ.get("NOMINAL_HOSTILE_EXAMPLES", "8"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    # Each example is a whole ingest run; shrinking is left to a local re-run.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)

NASTY = [
    "=cmd|' /C calc'!A0", "+SUM(1,1)", "-2+3", "@SUM(A1)", "'; DROP TABLE x; --",
    "<script>alert(1)</script>", "../../etc/passwd", "\u202egnp.exe", "O'Neil-Smith",
    "ZZ99 9ZZ", "0000000000", "9434765919", "1900-02-29", "2024-02-30", "\t", "NaN",
    "nan", "NULL", "1e309", "-0", "\ufeff", "𝕏𝕐", "Ω" * 300,
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
)
DATES = st.one_of(st.dates(date(1850, 1, 1), date(2030, 12, 31)).map(str), TEXT)


def _row(draw_text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            "id": st.one_of(st.integers(0, 30).map(str), TEXT),
            "forename": draw_text,
            "surname": draw_text,
            "dob": DATES,
            "postcode": draw_text,
            "nhs": draw_text,
            "when": DATES,
            "risk": st.one_of(st.sampled_from(["low", "HIGH", "medium"]), draw_text),
            "n": st.one_of(st.integers(-(2**70), 2**70).map(str), draw_text),
        }
    )


ROWS = st.lists(_row(TEXT), min_size=1, max_size=12)


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, delete count, insert bytes) edits: a mutated valid file."""
    out = bytearray(data)
    for pos, delete, insert in edits:
        at = pos % (len(out) + 1)
        out[at : at + delete] = insert
    return bytes(out)


EDITS = st.lists(
    st.tuples(st.integers(0, 1 << 20), st.integers(0, 8), st.binary(max_size=8)),
    min_size=1,
    max_size=6,
)


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=hostile.COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


@SETTINGS
@given(rows=ROWS)
def test_csv_hostile_values_conserve_rows(rows: list[dict[str, str]]) -> None:
    d = hostile.full_pipeline("csv", _csv_bytes(rows))
    assert d["status"] == "ingested", d["message"]
    assert d["rows_in"] == len(rows)


@SETTINGS
@given(rows=ROWS, edits=EDITS)
def test_csv_mutated_bytes(rows: list[dict[str, str]], edits: list) -> None:
    hostile.full_pipeline("csv", _mutate(_csv_bytes(rows), edits))


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_csv_arbitrary_bytes(data: bytes) -> None:
    hostile.full_pipeline("csv", data)


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)


@SETTINGS
@given(
    rows=ROWS,
    odd=st.lists(st.tuples(st.sampled_from(hostile.COLUMNS), JSON_VALUE), max_size=6),
)
def test_ndjson_hostile_values_conserve_rows(rows: list[dict[str, object]], odd: list) -> None:
    for i, (column, value) in enumerate(odd):  # some values of the wrong JSON type
        rows[i % len(rows)][column] = value
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    d = hostile.full_pipeline("ndjson", data)
    if d["status"] == "ingested":
        assert d["rows_in"] == len(rows)


@SETTINGS
@given(rows=ROWS, edits=EDITS)
def test_ndjson_mutated_bytes(rows: list[dict[str, str]], edits: list) -> None:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    hostile.full_pipeline("ndjson", _mutate(data, edits))


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook()
    sheet = book.active
    sheet.append(list(hostile.COLUMNS))
    for row in rows:
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


XLSX_CELL = st.one_of(
    st.none(), TEXT, st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False),
    st.dates(date(1900, 3, 1), date(2100, 1, 1)), st.booleans(),
)  # fmt: skip
XLSX_ROWS = st.lists(st.lists(XLSX_CELL, min_size=9, max_size=9), min_size=1, max_size=10)


@SETTINGS
@given(rows=XLSX_ROWS)
def test_xlsx_hostile_cells_conserve_rows(rows: list[list[object]]) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    d = hostile.full_pipeline("xlsx", _xlsx_bytes(rows))
    assert d["status"] == "ingested", d["message"]

    def blank(v: object) -> bool:
        return v is None or (isinstance(v, str) and ILLEGAL_CHARACTERS_RE.sub("", v) == "")

    assert d["rows_in"] == sum(1 for r in rows if not all(blank(v) for v in r))


@SETTINGS
@given(rows=XLSX_ROWS, edits=EDITS)
def test_xlsx_mutated_bytes(rows: list[list[object]], edits: list) -> None:
    hostile.full_pipeline("xlsx", _mutate(_xlsx_bytes(rows), edits))


def _parquet_bytes(rows: list[dict[str, str]], typed: bool) -> bytes:
    columns: dict[str, pa.Array] = {
        c: pa.array([r[c] for r in rows], pa.string()) for c in hostile.COLUMNS
    }
    if typed:  # a partner sending real types, not text
        columns["dob"] = pa.array([date(2000, 1, 1)] * len(rows), pa.date32())
        columns["n"] = pa.array(range(len(rows)), pa.int64())
        columns["nhs"] = pa.array([b"\x00\xff"] * len(rows), pa.binary())
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


@SETTINGS
@given(rows=ROWS, typed=st.booleans())
def test_parquet_hostile_values_conserve_rows(rows: list[dict[str, str]], typed: bool) -> None:
    d = hostile.full_pipeline("parquet", _parquet_bytes(rows, typed))
    assert d["status"] == "ingested", d["message"]
    assert d["rows_in"] == len(rows)


@SETTINGS
@given(rows=ROWS, edits=EDITS)
def test_parquet_mutated_bytes(rows: list[dict[str, str]], edits: list) -> None:
    hostile.full_pipeline("parquet", _mutate(_parquet_bytes(rows, False), edits))


def _pdf_bytes(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 8, text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def _docx_bytes(text: str) -> bytes:
    from docx import Document
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    doc = Document()
    doc.add_paragraph(ILLEGAL_CHARACTERS_RE.sub("", text))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


@SETTINGS
@given(
    suffix=st.sampled_from([".pdf", ".docx", ".txt"]),
    text=st.text(min_size=1, max_size=200).filter(lambda t: "\x00" not in t),
    edits=st.one_of(st.just([]), EDITS),
)
def test_documents_mutated(suffix: str, text: str, edits: list) -> None:
    make = {
        ".pdf": _pdf_bytes,
        ".docx": _docx_bytes,
        ".txt": lambda t: t.encode("utf-8", "replace"),
    }
    d = hostile.full_pipeline(
        suffix, _mutate(make[suffix](text), edits) if edits else make[suffix](text)
    )
    assert d["rows_in"] == 1
    if not edits and suffix != ".txt":
        assert d["rows_accepted"] == 1, d["message"]


CONTRACT_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=10 * EXAMPLES, deadline=None, derandomize=True)
@given(
    base=st.sampled_from(["csv", "xlsx", "document"]),
    changes=st.lists(
        st.tuples(
            st.sampled_from(
                ["feed", "dataset", "partner", "format", "fields", "retention", "deliveries",
                 "agency", "reliability", "contract_version", "extra"]
            ),
            CONTRACT_VALUE,
        ),
        max_size=4,
    ),
)  # fmt: skip
def test_contract_validator_rejects_clearly(base: str, changes: list) -> None:
    raw = hostile.contract(base).model_dump(mode="json", by_alias=True, exclude_none=True)
    for key, value in changes:
        raw[key] = value
    found = hostile.contract_target(json.dumps(raw).encode())
    if found is not None:  # an accepted contract is internally consistent
        assert found.format.type in ("csv", "ndjson", "xlsx", "parquet", "fhir", "document")


@settings(max_examples=10 * EXAMPLES, deadline=None, derandomize=True)
@given(data=st.binary(max_size=500) | st.text(max_size=300).map(str.encode))
def test_contract_text_never_crashes(data: bytes) -> None:
    hostile.contract_target(data)


def test_contract_file_errors_name_the_file() -> None:
    from nominal.contracts.model import ContractError, load_contract

    with tempfile.TemporaryDirectory() as tmp:
        for body in (b"\xff\xfe\x00", b"feed: [unclosed", b"- a list", b"feed: x\n"):
            path = Path(tmp, "bad-contract.yaml")
            path.write_bytes(body)
            with pytest.raises(ContractError, match=r"bad-contract\.yaml"):
                load_contract(path)
