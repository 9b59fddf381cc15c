"""Policy-filtered reads of the silver tables.

The SQL selects only the columns a :class:`~nominal.govern.policy.Decision` makes
visible (identity columns are not even read when they are withheld), and the result
goes through ``decision.apply`` as a second, independent guard. Restricted records
(a data subject's restriction of processing) are never returned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import duckdb

from nominal.contracts.model import IDENTITY_TABLE_FIELDS
from nominal.engines import duck
from nominal.engines.lake import Lake, Snapshot
from nominal.govern.policy import FIELD_COLUMNS, Decision

EVENT_COLUMNS: tuple[str, ...] = (
    "event_type",
    "event_date",
    "event_end_date",
    "event_status",
    "oa_code",
    "received_at",
    "feed",
    "partner",
    "agency",
)
IDENTITY_COLUMNS: tuple[str, ...] = ("source_record_id", *IDENTITY_TABLE_FIELDS)


class NoData(LookupError):
    """The lake has no silver tables yet."""


@dataclass
class LakeReader:
    """One DuckDB connection per lake snapshot, shared by request threads via cursors."""

    lake: Lake
    _con: duckdb.DuckDBPyConnection | None = None
    _snapshot_id: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _columns: dict[str, frozenset[str]] = field(default_factory=dict)

    def columns(self, table: str) -> frozenset[str]:
        """Column names of a table of the current snapshot (empty if it is absent)."""
        cur, snapshot = self.cursor()
        try:
            key = f"{snapshot.id}:{table}"
            if key not in self._columns:
                names: frozenset[str] = frozenset()
                if snapshot.has(table):
                    names = frozenset(r[0] for r in cur.execute(f"DESCRIBE {table}").fetchall())
                self._columns[key] = names
            return self._columns[key]
        finally:
            cur.close()

    def cursor(self) -> tuple[duckdb.DuckDBPyConnection, Snapshot]:
        """A cursor over the current snapshot (re-opened when a run has switched it)."""
        snapshot = self.lake.current()
        if snapshot is None or not snapshot.has("silver.events"):
            raise NoData("the lake has no silver.events table yet: run `nominal ingest` first")
        with self._lock:
            if self._con is None or self._snapshot_id != snapshot.id:
                if self._con is not None:
                    self._con.close()
                self._con = duck.connect(snapshot, threads=2, memory_limit="1GB")
                self._snapshot_id = snapshot.id
            return self._con.cursor(), snapshot


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_records(
    reader: LakeReader,
    decision: Decision,
    *,
    limit: int = 100,
    offset: int = 0,
    restricted: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The dataset's records as the decision allows: one row per event."""
    decision.require()
    identity_columns = reader.columns("silver.identity")
    event_columns = reader.columns("silver.events")
    cur, _snapshot = reader.cursor()
    try:
        columns = ["e.record_key AS record_key", "e.event_key AS event_key", "e.dataset AS dataset"]
        need_identity = False
        for name in decision.visible_fields:
            column = FIELD_COLUMNS.get(name, name)
            if column in EVENT_COLUMNS or name == "event_id":
                if column in event_columns:
                    columns.append(f"e.{_quote(column)} AS {_quote(column)}")
            elif column in IDENTITY_COLUMNS:
                if column in identity_columns:
                    need_identity = True
                    columns.append(f"i.{_quote(column)} AS {_quote(column)}")
            else:
                path = "$." + name
                columns.append(
                    f"json_extract_string(e.attributes, {duck.sql_literal(path)}) AS {_quote(name)}"
                )
        join = (
            " LEFT JOIN silver.identity i ON i.record_key = e.record_key" if need_identity else ""
        )
        where = "e.dataset = ?"
        params: list[Any] = [decision.dataset]
        if restricted:
            where += " AND e.record_key NOT IN (SELECT unnest(?))"
            params.append(sorted(restricted))
        sql = (
            f"SELECT {', '.join(columns)} FROM silver.events e{join} WHERE {where} "
            "ORDER BY e.event_date, e.event_key LIMIT ? OFFSET ?"
        )
        params.extend([int(limit), int(offset)])
        result = cur.execute(sql, params)
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    finally:
        cur.close()
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    return decision.apply(rows)


def identity_of(reader: LakeReader, record_key: str) -> dict[str, Any] | None:
    """The identity row of one record (for audited re-identification only)."""
    cur, snapshot = reader.cursor()
    try:
        if not snapshot.has("silver.identity"):
            return None
        result = cur.execute(
            "SELECT * FROM silver.identity WHERE record_key = ? LIMIT 1", [record_key]
        )
        names = [d[0] for d in result.description]
        row = result.fetchone()
    finally:
        cur.close()
    if row is None:
        return None
    out = dict(zip(names, row, strict=True))
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}
