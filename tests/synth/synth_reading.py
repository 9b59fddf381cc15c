"""Reading a synthetic delivery the way its contract declares it (shared by the tests)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from openpyxl import load_workbook


def read_delivery(path: Path, contract: Any) -> list[dict[str, Any]]:
    """Rows of a delivery as its contract declares it (format, encoding, delimiter)."""
    fmt = contract.format
    if fmt.type == "csv":
        text = path.read_bytes().decode(fmt.encoding)
        assert not text.startswith("\ufeff"), "a BOM must be declared as utf-8-sig"
        return list(csv.DictReader(io.StringIO(text), delimiter=fmt.delimiter))
    if fmt.type == "ndjson":
        return [json.loads(line) for line in path.read_text(fmt.encoding).splitlines()]
    if fmt.type == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt.type == "xlsx":
        ws = load_workbook(path, read_only=True)[fmt.sheet]
        rows = list(ws.iter_rows(values_only=True))
        # empty trailing cells are not stored, so short rows are padded
        width = len(rows[0])
        return [dict(zip(rows[0], (*r, *[None] * (width - len(r))), strict=True)) for r in rows[1:]]
    raise AssertionError(fmt.type)
