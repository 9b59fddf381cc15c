"""Real XLSX, Parquet, NDJSON and legacy-encoded CSV deliveries; malformed files."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from nominal.cli import app
from nominal.config import Home
from nominal.engines.lake import Lake
from nominal.ingest import ingest_paths

from .helpers import COLUMNS, FIELDS, contract_dict, good_row, query, write_contract, write_csv


def _fields_without_types() -> dict[str, object]:
    return {k: v for k, v in FIELDS.items()}


def test_real_xlsx(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict(pattern="test_*.xlsx",
                                                 fmt={"type": "xlsx", "sheet": "Extract",
                                                      "date_format": "%d/%m/%Y"}))  # fmt: skip
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Extract"
    sheet.append(COLUMNS)
    r1 = good_row(1)
    values = [r1[c] for c in COLUMNS]
    values[COLUMNS.index("DOB")] = datetime(1990, 2, 1)  # a real date cell
    values[COLUMNS.index("Score")] = 3  # a number cell
    sheet.append(values)
    r2 = good_row(2)
    r2["NHS"] = "9434765918"
    sheet.append([r2[c] for c in COLUMNS])
    path = tmp_path / "in" / "test_1.xlsx"
    path.parent.mkdir()
    book.save(path)
    summary = ingest_paths(hub_home, [path], contracts=tmp_path / "c")
    d = summary.deliveries[0]
    assert (d.status, d.rows_in, d.rows_accepted, d.rows_quarantined) == ("ingested", 2, 1, 1)
    ((dob, name),) = query(hub_home, "SELECT date_of_birth, given_name FROM silver.identity")
    assert (dob, name) == (date(1990, 2, 1), "Mary Ann")
    ((attrs,),) = query(hub_home, "SELECT attributes FROM silver.events")
    assert json.loads(attrs)["score"] == 3
    ((row_number, field),) = query(hub_home, "SELECT row_number, field FROM silver.quarantine")
    assert (row_number, field) == (2, "nhs_number")


def test_real_parquet_with_typed_columns(hub_home: Home, tmp_path: Path) -> None:
    fields = dict(FIELDS)
    fields["score"] = {"source": "Score", "type": "integer"}
    write_contract(tmp_path / "c", contract_dict(pattern="test_*.parquet",
                                                 fmt={"type": "parquet"}, fields=fields))  # fmt: skip
    rows = [good_row(i) for i in range(3)]
    table = pa.table(
        {
            **{c: [r[c] for r in rows] for c in COLUMNS if c not in ("DOB", "EventDate", "Score")},
            "DOB": pa.array([date(1990, 2, 1), None, date(2001, 12, 31)], pa.date32()),
            "EventDate": pa.array(
                [datetime(2024, 3, 15, 10, 30), datetime(2024, 3, 16), None], pa.timestamp("us")
            ),
            "Score": pa.array([1, 2, 3], pa.int64()),
        }
    )
    path = tmp_path / "in" / "test_1.parquet"
    path.parent.mkdir()
    pq.write_table(table, path)
    summary = ingest_paths(hub_home, [path], contracts=tmp_path / "c")
    d = summary.deliveries[0]
    assert (d.rows_in, d.rows_accepted, d.rows_quarantined) == (3, 2, 1)
    got = sorted(query(hub_home, "SELECT event_date, attributes FROM silver.events"))
    assert [g[0] for g in got] == [date(2024, 3, 15), date(2024, 3, 16)]
    ((reason,),) = query(hub_home, "SELECT reason FROM silver.quarantine")
    assert reason == "event_date: required_missing"


def test_ndjson_and_cp1252(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict(feed="nd-feed", pattern="nd_*.ndjson",
                                                 fmt={"type": "ndjson", "date_format": "%d/%m/%Y"}))  # fmt: skip
    write_contract(tmp_path / "c", contract_dict(feed="cp-feed", pattern="cp_*.csv",
                                                 fmt={"type": "csv", "encoding": "cp1252",
                                                      "delimiter": ";", "date_format": "%d/%m/%Y"}))  # fmt: skip
    (tmp_path / "in").mkdir()
    nd = tmp_path / "in" / "nd_1.ndjson"
    r = good_row(1)
    nd.write_text(
        json.dumps({**r, "Score": 4}) + "\n" + json.dumps({**good_row(2), "Score": None}) + "\n"
    )
    cp = tmp_path / "in" / "cp_1.csv"
    r = good_row(3)
    r["Forename"] = "Zoë"
    r["Surname"] = "Lefèvre"
    lines = [";".join(COLUMNS), ";".join(r[c] for c in COLUMNS)]
    cp.write_bytes("\r\n".join(lines).encode("cp1252"))
    summary = ingest_paths(hub_home, [nd, cp], contracts=tmp_path / "c")
    assert summary.ok and summary.rows_accepted == 3
    names = {
        n
        for (n,) in query(hub_home, "SELECT given_name || ' ' || family_name FROM silver.identity")
    }
    assert "Zoë Lefèvre" in names


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"", "test_1.csv: the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "test_1.csv: line 1: binary data"),
        (b"Ref,EventDate\nR1,01/01/2024\n", "required column"),
        (b"Ref,EventDate\nR1,01/01/2024,extra,more\n", "line 2: expected 2 columns"),
        ("Ref,EventDate,Forename\nR1,01/01/2024,Zo\xeb\n".encode("latin-1"), "test_1.csv: line 2"),
    ],
    ids=["empty", "binary", "missing-column", "ragged", "wrong-encoding"],
)
def test_malformed_files_fail_clearly(
    hub_home: Home, tmp_path: Path, content: bytes, expect: str
) -> None:
    fields = {"record_id": {"source": "Ref", "required": True},
              "event_date": {"source": "EventDate", "type": "date", "required": True},
              "given_name": {"source": "Forename"},
              "nhs_number": {"source": "NHS", "required": True}}  # fmt: skip
    if expect != "required column":
        fields.pop("nhs_number")
    write_contract(tmp_path / "c", contract_dict(fields=fields))
    path = tmp_path / "in" / "test_1.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    summary = ingest_paths(hub_home, [path], contracts=tmp_path / "c")
    (d,) = summary.deliveries
    assert d.status == "failed"
    assert expect in d.message, d.message
    assert d.message.startswith("test_1.csv")
    assert "Zo" not in d.message  # row contents are personal data: never in messages
    if expect == "required column":
        assert "'NHS'" in d.message and "nhs_number" in d.message
    # the failure is on record, and nothing was half-written
    ((status, message),) = query(hub_home, "SELECT status, message FROM silver.deliveries")
    assert status == "failed" and message == d.message
    assert not Lake(hub_home.lake).require_current().has("silver.identity")


def test_cli_exit_code_and_message_without_traceback(hub_home: Home, tmp_path: Path) -> None:
    write_contract(tmp_path / "c", contract_dict())
    bad = tmp_path / "in" / "test_1.csv"
    bad.parent.mkdir()
    bad.write_bytes(b"")
    good = write_csv(tmp_path / "in" / "test_2.csv", [good_row(1)])
    stray = tmp_path / "in" / "unknown.txt"
    stray.write_text("hello")
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "in"), "--contracts", str(tmp_path / "c"), "--json"]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    statuses = {Path(d["file"]).name: d["status"] for d in summary["deliveries"]}
    assert statuses == {
        "test_1.csv": "failed",
        "test_2.csv": "ingested",
        "unknown.txt": "no_contract",
    }
    assert summary["rows_in"] == summary["rows_accepted"] + summary["rows_quarantined"] == 1
    assert good.exists()  # files outside the inbox are never moved
