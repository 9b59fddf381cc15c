"""Small DuckDB tables made from Python values, for the link run."""

from __future__ import annotations

from typing import Any

import duckdb


def lists_table(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[str, list[Any]]]
) -> None:
    """Create table ``name`` from Python lists (``column: (SQL type, values)``).

    DuckDB unnests list parameters; building an Arrow table from Python lists instead
    would import pandas (pyarrow checks its arguments against pandas types), about a
    second of a short incremental run.
    """
    if not columns:
        raise ValueError("no columns")
    cols = ", ".join(
        f"unnest(${i + 1}::{kind}[]) AS {col}" for i, (col, (kind, _)) in enumerate(columns.items())
    )
    first = next(iter(columns.values()))[1]
    if not first:
        typed = ", ".join(f"NULL::{kind} AS {col}" for col, (kind, _) in columns.items())
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {typed} LIMIT 0")
        return
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT {cols}",
        [values for _kind, values in columns.values()],
    )
