"""Small feeds and contracts written on the fly for the ingest tests."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import yaml

from nominal.config import Home
from nominal.engines.duck import connect
from nominal.engines.lake import Lake

FIELDS: dict[str, Any] = {
    "record_id": {"source": "Ref", "required": True},
    "given_name": {"source": "Forename"},
    "family_name": {"source": "Surname"},
    "date_of_birth": {"source": "DOB", "type": "date"},
    "sex": {"source": "Sex", "mapping": {"1": "M", "2": "F"}},
    "postcode": {"source": "Postcode"},
    "nhs_number": {"source": "NHS"},
    "ni_number": {"source": "NINO"},
    "phone": {"source": "Phone"},
    "email": {"source": "Email"},
    "event_id": {"source": "EventRef"},
    "event_date": {"source": "EventDate", "type": "date", "required": True},
    "outcome": {"source": "Outcome", "type": "category", "values": ["open", "closed"]},
    "score": {"source": "Score", "type": "integer"},
    "ethnicity": {"source": "Ethnicity", "personal": True},
    "event_type": {"value": "test_event"},
}
COLUMNS = ["Ref", "Forename", "Surname", "DOB", "Sex", "Postcode", "NHS", "NINO", "Phone",
           "Email", "EventRef", "EventDate", "Outcome", "Score", "Ethnicity"]  # fmt: skip


def contract_dict(
    feed: str = "test-feed",
    pattern: str = "test_*.csv",
    fmt: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    retention_years: float = 50,
) -> dict[str, Any]:
    return {
        "contract_version": 1,
        "feed": feed,
        "title": "Test feed",
        "partner": {"code": "TST", "name": "Test Partner"},
        "agency": "police",
        "dataset": feed.replace("-", "_"),
        "agreement": "ISA-T2-TEST",
        "deliveries": {"pattern": pattern},
        "format": fmt or {"type": "csv", "date_format": "%d/%m/%Y"},
        "fields": copy.deepcopy(fields or FIELDS),
        "retention": {"years": retention_years, "from": "event_date"},
    }


def write_contract(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['feed']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def good_row(i: int) -> dict[str, str]:
    return {
        "Ref": f"R{i:06d}",
        "Forename": "mary  ann",
        "Surname": "o'NEIL-SMITH",
        "DOB": "01/02/1990",
        "Sex": "2",
        "Postcode": "nx12jw",
        "NHS": "943 476 5919",
        "NINO": "ab 12 34 56 c",
        "Phone": "07700 900123",
        "Email": "Mary.Smith@Example.COM",
        "EventRef": f"E{i:06d}",
        "EventDate": "15/03/2024",
        "Outcome": "Open",
        "Score": "3",
        "Ethnicity": "W1",
    }


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def query(home: Home, sql: str) -> list[tuple[Any, ...]]:
    con = connect(Lake(home.lake).require_current())
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
