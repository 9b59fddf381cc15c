"""Hostile files: oversized deliveries, zip bombs, malicious PDFs, traversal in names.

Each test builds the hostile file itself and runs the real ingest on it; the outcome
must be a refusal or quarantine with a reason, quickly, never a crash or a hang.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import hostile
import pytest

from nominal.config import Home
from nominal.contracts.model import ContractError, parse_contract
from nominal.engines.lake import Lake, LakeError
from nominal.ingest.pipeline import expand_paths, run_ingest

pytestmark = pytest.mark.timeout(120)

GOOD_CSV = b"id,forename,surname,dob,postcode,nhs,when,risk,n\r\n1,Ann,Lee,2000-01-01,,,2024-05-01,low,1\r\n"


def _quarantined(d: dict, reason: str) -> None:
    assert d["status"] == "ingested", d["message"]
    assert (d["rows_in"], d["rows_accepted"], d["rows_quarantined"]) == (1, 0, 1), d
    assert reason in d["message"], d["message"]


# -- oversized deliveries -------------------------------------------------------------


def test_oversized_delivery_is_refused_before_it_is_copied(
    hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMINAL_MAX_DELIVERY_BYTES", "4096")
    big = tmp_path / "fz_csv_big.csv"
    big.write_bytes(GOOD_CSV + b"2,Bo,Ng,2001-02-03,,,2024-05-02,high,2\r\n" * 200)
    small = tmp_path / "fz_csv_small.csv"
    small.write_bytes(GOOD_CSV)
    summary = run_ingest(hub_home, [big, small], [hostile.contract("csv")])
    refused, taken = summary.deliveries
    assert refused.status == "failed"
    assert refused.message.startswith("fz_csv_big.csv: ")
    assert "delivery size limit of 4,096 bytes" in refused.message
    assert refused.rows_in == refused.rows_accepted == 0
    assert taken.status == "ingested" and taken.rows_accepted == 1
    # the oversized file never reached the bronze layer
    assert not list(Path(hub_home.lake, "bronze").rglob("fz_csv_big.csv"))
    assert Lake(hub_home.lake).require_current().rows("silver.identity") == 1


# -- zip bombs (XLSX and DOCX are zip archives) ----------------------------------------


def _rezip(base: bytes, member: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, payload if info.filename == member else src.read(info))
    return out.getvalue()


def _bomb_sheet(megabytes: int) -> bytes:
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet '
        b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    )
    return head + b"<row/>" * (megabytes * (1 << 20) // 6) + b"</sheetData></worksheet>"


def test_xlsx_zip_bomb_is_refused_without_inflating() -> None:
    from test_hostile_readers import _xlsx_bytes

    base = _xlsx_bytes([["1", "Ann", "Lee", "2000-01-01", "", "", "2024-05-01", "low", "1"]])
    bomb = _rezip(base, "xl/worksheets/sheet1.xml", _bomb_sheet(64))
    assert len(bomb) < 200_000  # a small file declaring 64 MiB of XML
    started = time.perf_counter()
    d = hostile.full_pipeline("xlsx", bomb)
    assert time.perf_counter() - started < 10
    assert d["status"] == "failed"
    assert d["message"].startswith("fz_xlsx_1.xlsx: ")
    assert "zip bomb" in d["message"]


def test_xlsx_total_expansion_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_hostile_readers import _xlsx_bytes

    monkeypatch.setenv("NOMINAL_MAX_UNZIPPED_BYTES", "2000")
    d = hostile.full_pipeline("xlsx", _xlsx_bytes([["1"] * 9]))
    assert d["status"] == "failed"
    assert "more than the limit of 2,000" in d["message"]


def test_docx_zip_bomb_is_quarantined() -> None:
    from test_hostile_readers import _docx_bytes

    payload = b'<?xml version="1.0"?>' + b"<!-- -->" * (48 * (1 << 20) // 8)
    bomb = _rezip(_docx_bytes("case note"), "word/document.xml", payload)
    d = hostile.full_pipeline(".docx", bomb)
    _quarantined(d, "zip bomb")


def test_python_zipfile_never_inflates_past_the_declared_size() -> None:
    """The premise of the zip-bomb check: a member lying about its size fails its CRC."""
    import struct

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.xml", b"\x00" * 5_000_000)
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)  # declared uncompressed size
    struct.pack_into("<I", data, 22, 100)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z, pytest.raises(zipfile.BadZipFile):
        z.open("a.xml").read()


# -- malicious PDFs ---------------------------------------------------------------------


def _pdf_writer():  # type: ignore[no-untyped-def]
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    return writer


def _written(writer) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_pdf_with_javascript_is_quarantined() -> None:
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = _pdf_writer()
    script = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('hello');"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(script)
    d = hostile.full_pipeline(".pdf", _written(writer))
    _quarantined(d, "active content (/J")


def test_pdf_with_launch_action_is_quarantined() -> None:
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = _pdf_writer()
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/Launch"),
            NameObject("/F"): TextStringObject("cmd.exe"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    _quarantined(hostile.full_pipeline(".pdf", _written(writer)), "active content (/Launch)")


def test_pdf_with_embedded_file_is_quarantined() -> None:
    writer = _pdf_writer()
    writer.add_attachment("payload.exe", b"MZ\x90\x00")
    _quarantined(hostile.full_pipeline(".pdf", _written(writer)), "active content (/Embedded")


def _raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF assembled by hand, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def _page_pdf(content: bytes, filters: bytes = b"") -> bytes:
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
            b"<< /Length %d %s >>\nstream\n" % (len(content), filters) + content + b"\nendstream",
        ]
    )


def test_pdf_with_huge_compressed_stream_finishes_quickly() -> None:
    import zlib

    bomb = zlib.compress(b"0 0 m " * (40 << 20), 9)  # 240 MiB of content in ~250 KB
    started = time.perf_counter()
    d = hostile.full_pipeline(".pdf", _page_pdf(bomb, b"/Filter /FlateDecode"))
    assert time.perf_counter() - started < 30
    assert d["rows_in"] == 1 and d["status"] == "ingested"
    if d["rows_quarantined"]:
        assert "not a readable PDF" in d["message"]


def test_pdf_with_broken_xref_is_recovered_or_quarantined() -> None:
    good = _page_pdf(b"BT /F1 12 Tf 10 10 Td (hello) Tj ET")
    broken = good.replace(b"0000000009 00000 n", b"0000099999 00000 n").replace(
        b"startxref\n", b"startxref\n9"
    )
    d = hostile.full_pipeline(".pdf", broken)
    assert d["rows_in"] == 1 and d["rows_accepted"] + d["rows_quarantined"] == 1


def test_pdf_with_deep_nesting_is_quarantined_not_crashing() -> None:
    nested = b"[" * 200_000 + b"]" * 200_000
    pdf = _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Deep 3 0 R >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            nested,
        ]
    )
    d = hostile.full_pipeline(".pdf", pdf)
    assert d["rows_in"] == 1 and d["rows_accepted"] + d["rows_quarantined"] == 1


def test_pdf_claiming_a_billion_pages_is_quarantined() -> None:
    pdf = _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        ]
    )
    started = time.perf_counter()
    d = hostile.full_pipeline(".pdf", pdf)
    assert time.perf_counter() - started < 30
    assert d["rows_in"] == 1 and d["rows_accepted"] + d["rows_quarantined"] == 1


# -- path traversal in delivered file names -----------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "fz_csv_..csv",
        "fz_csv_..%2f..%2fetc%2fpasswd.csv",
        "fz_csv_-rf --no-preserve-root.csv",
        "fz_csv_\u202egnp.exe.csv",
        "fz_csv_line\nbreak.csv",
        "fz_csv_" + "x" * 200 + ".csv",
    ],
)
def test_delivered_file_names_stay_inside_bronze(name: str, hub_home: Home, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(GOOD_CSV)
    summary = run_ingest(hub_home, [path], [hostile.contract("csv")])
    (d,) = summary.deliveries
    assert d.status == "ingested", d.message
    bronze = Path(hub_home.lake, "bronze").resolve()
    stored = list(bronze.rglob("*"))
    files = [p for p in stored if p.is_file()]
    assert len(files) == 1 and files[0].name == name
    assert files[0].resolve().parent.parent.parent == bronze


def test_inbox_symlink_to_a_file_outside_is_not_taken_in(hub_home: Home, tmp_path: Path) -> None:
    secret = tmp_path / "outside.csv"
    secret.write_bytes(GOOD_CSV.replace(b"Ann", b"Secret"))
    link = hub_home.inbox / "fz_csv_link.csv"
    os.symlink(secret, link)
    (hub_home.inbox / "fz_csv_real.csv").write_bytes(GOOD_CSV)
    assert [p.name for p in expand_paths([hub_home.inbox])] == ["fz_csv_real.csv"]


@pytest.mark.parametrize("bad", ["../../etc", "a/b", "..", ".hidden", "x\ny", ""])
def test_contract_names_cannot_traverse(bad: str) -> None:
    raw = hostile.contract("csv").model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in ("dataset", "feed"):
        with pytest.raises(ContractError, match=key):
            parse_contract({**raw, key: bad}, "evil.yaml")
    with pytest.raises(ContractError, match="partner"):
        parse_contract({**raw, "partner": {"code": bad, "name": "x"}}, "evil.yaml")


def test_lake_refuses_to_remove_outside_bronze(hub_home: Home) -> None:
    lake = Lake(hub_home.lake)
    canary = hub_home.root / "canary.txt"
    canary.write_text("still here")
    for rel in ("../canary.txt", "bronze/../../canary.txt", "/etc/passwd"):
        with pytest.raises(LakeError):
            lake.remove_bronze(rel)
    assert canary.read_text() == "still here"


# -- parse time limit: a file that keeps a parser busy fails, named, and nothing is lost ---


def _slow_xlsx() -> bytes:
    """A 5 KB workbook whose one stray cell at XFD1048576 makes the sheet 16384 x 1048576.

    openpyxl's streaming reader yields every empty row of that range; reading it takes
    minutes (the fuzzer found a mutated row number doing this).
    """
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(list(hostile.COLUMNS))
    sheet.append(["1", "Ann", "Lee", "2000-01-01", "", "", "2024-05-01", "low", "1"])
    sheet.cell(row=1_048_576, column=16_384, value="x")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


@pytest.mark.timeout(900)
def test_slow_xlsx_fails_at_the_parse_time_limit_and_nothing_is_lost(
    hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas  # noqa: F401 -- imported lazily by pyarrow; not inside the timed parse
    from test_hostile_readers import _xlsx_bytes

    # The slow workbook needs minutes; 20 s leaves the good one room on a loaded machine.
    monkeypatch.setenv("NOMINAL_PARSE_SECONDS", "20")
    slow = tmp_path / "fz_xlsx_slow.xlsx"
    slow.write_bytes(_slow_xlsx())
    assert slow.stat().st_size < 10_000
    good = tmp_path / "fz_xlsx_good.xlsx"
    good.write_bytes(
        _xlsx_bytes([["2", "Bo", "Ng", "2001-02-03", "", "", "2024-05-02", "high", 2]])
    )
    summary = run_ingest(hub_home, [slow, good], [hostile.contract("xlsx")])
    stopped, taken = summary.deliveries
    assert stopped.status == "failed"
    assert stopped.message.startswith(
        "fz_xlsx_slow.xlsx: parsing took longer than the limit of 20 s"
    )
    assert "NOMINAL_PARSE_SECONDS" in stopped.message
    assert taken.status == "ingested" and taken.rows_accepted == 1, taken.message
    # nothing lost: the bytes are kept in bronze and the failure is on the delivery record
    snap = Lake(hub_home.lake).require_current()
    assert [p.name for p in Path(hub_home.lake, "bronze").rglob("fz_xlsx_slow.xlsx")]
    from nominal.engines import duck

    con = duck.connect(snap)
    rows = con.execute(
        "SELECT file_name, status, message FROM silver.deliveries ORDER BY file_name"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("fz_xlsx_good.xlsx", "ingested"),
        ("fz_xlsx_slow.xlsx", "failed"),
    ]
    assert "parsing took longer than the limit" in rows[1][2]
    assert snap.rows("silver.identity") == 1
    con.close()


@pytest.mark.timeout(900)
def test_any_duckdb_reader_is_interrupted_at_the_limit(
    hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CSV, NDJSON and Parquet are parsed by DuckDB in-process: a timer interrupts it."""
    big = tmp_path / "fz_csv_big.csv"
    big.write_bytes(GOOD_CSV + b"2,Bo,Ng,2001-02-03,,,2024-05-02,high,2\r\n" * 300_000)
    monkeypatch.setenv("NOMINAL_PARSE_SECONDS", "0.001")
    summary = run_ingest(hub_home, [big], [hostile.contract("csv")])
    (stopped,) = summary.deliveries
    assert stopped.status == "failed"
    assert stopped.message.startswith("fz_csv_big.csv: parsing took longer than the limit")
    # the same file under the default limit is read in full
    monkeypatch.delenv("NOMINAL_PARSE_SECONDS")
    (again,) = run_ingest(hub_home, [big], [hostile.contract("csv")]).deliveries
    assert again.status == "ingested" and again.rows_in == 300_001
