"""Fuzz targets shared by the atheris harnesses (fuzz/run.py) and the hypothesis tests.

Each target takes the raw bytes of one hostile delivery and either returns normally
or raises :class:`Finding` (an invariant broke) -- any other exception escaping is a
crash. The invariants are the ingest promises: a reader or validator refuses a bad
file only with a clear error naming the file (``ReadError`` / ``DocumentError`` /
``ContractError``), and whatever it accepts it reads as rows.

``full_pipeline`` runs the whole ``run_ingest`` on one file in a fresh home and checks
conservation: rows in = accepted + quarantined, and the committed snapshot holds
exactly those rows (silver.identity + superseded = accepted, silver.quarantine =
quarantined).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import yaml

from nominal.config import home as make_home
from nominal.contracts.model import Contract, ContractError, parse_contract
from nominal.ingest.documents import DocumentError, extract
from nominal.ingest.pipeline import _connect, run_ingest
from nominal.ingest.readers import ReadError, reader_for

# Seconds one delivery may take before a slow input counts as a hang.
HANG_SECONDS = 20.0

SUFFIX = {"csv": ".csv", "ndjson": ".ndjson", "xlsx": ".xlsx", "parquet": ".parquet"}


class Finding(AssertionError):
    """An ingest promise was broken by an input (a bug to fix, not a bad file)."""


def contract(kind: str) -> Contract:
    """A small feed contract of the given format, with typed and categorical fields."""
    if kind == "document":
        return parse_contract(
            {
                "feed": "fz-notes",
                "title": "Fuzz notes",
                "partner": {"code": "FZ", "name": "Fuzz"},
                "agency": "council",
                "dataset": "fz_notes",
                "agreement": "ISA-FZ",
                "deliveries": {"pattern": "fz_note_*"},
                "format": {"type": "document"},
                "retention": {"years": 10, "from": "received"},
            }
        )
    return parse_contract(
        {
            "feed": f"fz-{kind}",
            "title": f"Fuzz {kind}",
            "partner": {"code": "FZ", "name": "Fuzz"},
            "agency": "police",
            "dataset": f"fz_{kind}",
            "agreement": "ISA-FZ",
            "deliveries": {"pattern": f"fz_{kind}_*{SUFFIX[kind]}"},
            "format": {"type": kind, "date_format": "%Y-%m-%d"},
            "fields": {
                "record_id": {"source": "id", "required": True},
                "given_name": {"source": "forename"},
                "family_name": {"source": "surname"},
                "date_of_birth": {"source": "dob", "type": "date"},
                "postcode": {"source": "postcode"},
                "nhs_number": {"source": "nhs"},
                "event_date": {"source": "when", "type": "date", "required": True},
                "event_type": {"value": "fuzz"},
                "risk": {"source": "risk", "type": "category", "values": ["low", "high"]},
                "count": {"source": "n", "type": "integer"},
            },
            "retention": {"years": 100},
        }
    )


COLUMNS = ("id", "forename", "surname", "dob", "postcode", "nhs", "when", "risk", "n")


def _timed(started: float, what: str) -> None:
    spent = time.perf_counter() - started
    if spent > HANG_SECONDS:
        raise Finding(f"{what} took {spent:.1f}s (a hang)")


def reader_target(kind: str, data: bytes, work: Path) -> int | None:
    """Read ``data`` as a ``kind`` delivery; the row count, or None if refused clearly."""
    c = contract(kind)
    path = work / f"fz_{kind}_{uuid.uuid4().hex[:8]}{SUFFIX[kind]}"
    path.write_bytes(data)
    started = time.perf_counter()
    con = _connect(work)
    try:
        try:
            source = reader_for(kind)(con, path, c, work)
            row = con.execute(f"SELECT count(*) FROM {source}").fetchone()
        except ReadError as exc:
            if path.name not in str(exc):
                raise Finding(f"error does not name the file: {exc}") from None
            return None
        except duckdb.Error as exc:
            # The reader accepted the file but it fails on the full read: the pipeline
            # turns this into a clear failure naming the file (checked in full_pipeline).
            if "Conversion Error" in str(exc) or "Invalid Input" in str(exc):
                return None
            raise
        _timed(started, f"{kind} reader")
        return int(row[0]) if row else 0
    finally:
        con.close()
        path.unlink(missing_ok=True)


def document_target(suffix: str, data: bytes, work: Path) -> dict[str, Any] | None:
    """Extract a document; its info, or None if refused with a DocumentError."""
    path = work / f"fz_note_{uuid.uuid4().hex[:8]}{suffix}"
    path.write_bytes(data)
    started = time.perf_counter()
    try:
        return extract(path)
    except DocumentError as exc:
        if not str(exc):
            raise Finding("a document refused without a reason") from None
        return None
    finally:
        _timed(started, f"{suffix} document")
        path.unlink(missing_ok=True)


def contract_target(data: bytes) -> Contract | None:
    """Parse contract text; the contract, or None if refused with a ContractError."""
    try:
        text = data.decode("utf-8")
        loaded = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None  # not YAML at all: load_contract reports these as ContractError
    try:
        return parse_contract(loaded, "fuzz.yaml")
    except ContractError as exc:
        if "fuzz.yaml" not in str(exc):
            raise Finding(f"contract error does not name the file: {exc}") from None
        return None


def full_pipeline(kind: str, data: bytes, name: str | None = None) -> dict[str, Any]:
    """Run ``run_ingest`` on one delivery in a fresh home and check conservation."""
    from nominal.engines.lake import Lake

    c = contract("document" if kind.startswith(".") else kind)
    file_name = name or (
        f"fz_note_1{kind}" if kind.startswith(".") else f"fz_{kind}_1{SUFFIX[kind]}"
    )
    with tempfile.TemporaryDirectory(prefix="nominal-fuzz-") as tmp:
        h = make_home(Path(tmp) / "home").ensure()
        path = Path(tmp) / file_name
        path.write_bytes(data)
        started = time.perf_counter()
        summary = run_ingest(h, [path], [c])
        _timed(started, f"ingest of a {kind} delivery")
        (d,) = summary.deliveries
        if d.status not in ("ingested", "failed"):
            raise Finding(f"unexpected status {d.status}: {d.message}")
        if d.status == "failed":
            if not d.message.startswith(path.name):
                raise Finding(f"failure does not name the file first: {d.message!r}")
            if d.rows_accepted or d.rows_quarantined:
                raise Finding("a failed delivery accepted rows")
        if d.rows_in != d.rows_accepted + d.rows_quarantined:
            raise Finding(f"rows in {d.rows_in} != {d.rows_accepted} + {d.rows_quarantined}")
        snap = Lake(h.lake).require_current()
        kept = snap.rows("silver.documents" if c.format.type == "document" else "silver.identity")
        if kept + d.rows_superseded != d.rows_accepted:
            raise Finding(
                f"snapshot holds {kept} rows (+{d.rows_superseded} superseded) "
                f"but {d.rows_accepted} were accepted"
            )
        if snap.rows("silver.quarantine") != d.rows_quarantined:
            raise Finding(
                f"snapshot quarantine holds {snap.rows('silver.quarantine')} rows "
                f"but {d.rows_quarantined} were quarantined"
            )
        if d.rows_quarantined:
            q = snap.read("silver.quarantine").to_pylist()
            for row in q:
                if not row["reason"] or row["row_number"] is None or not row["file_name"]:
                    raise Finding(f"quarantine row without file/row/reason: {row}")
        return d.to_dict()
