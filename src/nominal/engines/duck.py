"""DuckDB sessions over a lake snapshot.

Each table ``layer.name`` of the snapshot becomes a view ``layer.name`` (a DuckDB
schema per layer) over exactly the files the snapshot lists, so SQL written against
the lake reads one consistent version however many runs happen meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from nominal.engines.lake import Snapshot

DEFAULT_MEMORY_LIMIT = "8GB"


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parquet_source(files: Iterable[Path]) -> str:
    listed = ", ".join(sql_literal(str(f)) for f in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def connect(
    snapshot: Snapshot | None = None,
    *,
    tables: Iterable[str] | None = None,
    database: str = ":memory:",
    threads: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view for each (or each chosen) table of ``snapshot``."""
    con = duckdb.connect(database)
    con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if snapshot is not None:
        attach_snapshot(con, snapshot, tables)
    return con


def attach_snapshot(
    con: duckdb.DuckDBPyConnection, snapshot: Snapshot, tables: Iterable[str] | None = None
) -> list[str]:
    """Create (or replace) the views of ``snapshot``'s tables on ``con``."""
    chosen = list(tables) if tables is not None else sorted(snapshot.tables)
    made: list[str] = []
    layers: set[str] = set()
    for table in chosen:
        files = snapshot.files(table)
        if not files:
            continue
        layer, _, _name = table.partition(".")
        if layer not in layers:  # once per layer: each statement is a round trip
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
            layers.add(layer)
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {live_rows_sql(snapshot, table)}")
        made.append(table)
    return made


def live_rows_sql(snapshot: Snapshot, table: str) -> str:
    """SELECT of the rows of ``table`` in ``snapshot``: its files less the rows its
    deletion files list (see :mod:`nominal.engines.lake`)."""
    files = snapshot.files(table)
    deletes = snapshot.deletes(table)
    if not deletes:
        return f"SELECT * FROM {parquet_source(files)}"
    listed = ", ".join(sql_literal(str(f)) for f in files)
    root = sql_literal(str(snapshot.lake_root) + "/")
    return f"""SELECT d.* EXCLUDE (filename, file_row_number)
        FROM read_parquet([{listed}], union_by_name = true, filename = true,
                          file_row_number = true) d
        ANTI JOIN (SELECT {root} || file AS file, pos FROM {parquet_source(deletes)}) x
          ON x.file = d.filename AND x.pos = d.file_row_number"""
