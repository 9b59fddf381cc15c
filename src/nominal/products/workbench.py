"""The analyst workbench: read-only SQL over the pseudonymised content an analyst's
agreements allow, in the browser and from Python (``nominal.connect()``).

How the restriction holds (deny by default, three independent guards):

1. the connection is a fresh in-memory DuckDB holding only *copies* of the permitted
   content — events of the datasets the policy decision point allows for the purpose,
   with the nominal and household only as their keyed pseudonyms; nominals and
   households reduced to content columns (no names, dates of birth, addresses or
   identifiers); scores and cohorts by pseudonym; the reference geography;
2. file-system access is then switched off and the configuration locked, so no query
   can read the lake (or anything else) directly, change a setting or attach a file;
3. :func:`run_query` parses the SQL (SQLGlot, DuckDB dialect) and accepts one SELECT
   (or WITH … SELECT, UNION…) and nothing else, and every query is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from nominal.products.lakeview import ProductsError, has_table

MAX_ROWS = 10_000

# table name on the workbench -> (lake table, SELECT list, dataset-filtered?)
WORKBENCH_TABLES: dict[str, tuple[str, str, bool]] = {
    "events": (
        "gold.events",
        "event_key, record_key, nominal_pseudo, household_pseudo, dataset, partner, agency, "
        "event_type, event_date::DATE AS event_date, event_end_date::DATE AS event_end_date, "
        "event_status, oa_code, attributes",
        True,
    ),
    "nominals": (
        "gold.nominals",
        "nominal_pseudo, year(date_of_birth) AS birth_year, sex, ethnicity, oa_code, "
        "record_count, agency_count, agencies, first_seen::DATE AS first_seen, "
        "last_seen::DATE AS last_seen",
        False,
    ),
    "households": (
        "gold.households",
        "household_pseudo, oa_code, member_count, first_seen::DATE AS first_seen, "
        "last_seen::DATE AS last_seen",
        False,
    ),
    "scores": (
        "gold.scores",
        "model, unit_type, unit_pseudo, as_of, score, band, rank, reasons, model_version",
        False,
    ),
    "cohorts": (
        "gold.cohorts",
        "cohort, title, model, as_of, rank, unit_type, unit_pseudo, oa_code, score",
        False,
    ),
    "output_areas": (
        "reference.output_areas",
        "oa_code, ward_code, name, imd_score, imd_decile",
        False,
    ),
    "wards": ("reference.wards", "ward_code, name", False),
}

ALLOWED_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)


class QueryRejected(ProductsError):
    """The workbench accepts one read-only SELECT; this SQL was something else."""


def check_select(sql: str) -> exp.Expression:
    """Parse ``sql`` and return its tree if it is exactly one read-only query."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryRejected(f"the SQL does not parse: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise QueryRejected(f"write exactly one SELECT statement (found {len(statements)})")
    tree = statements[0]
    if not isinstance(tree, ALLOWED_ROOTS):
        raise QueryRejected(f"only SELECT queries are allowed, not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(
            node, exp.Command | exp.Insert | exp.Update | exp.Delete | exp.Create | exp.Drop
        ):
            raise QueryRejected(f"only SELECT queries are allowed ({node.key.upper()} found)")
    return tree


@dataclass
class Workbench:
    """A restricted connection and what it holds."""

    con: duckdb.DuckDBPyConnection
    tables: dict[str, int]
    datasets: tuple[str, ...]
    audit: Callable[[str, dict[str, Any]], None] | None = None
    queries: int = field(default=0)

    def run(self, sql: str, max_rows: int = MAX_ROWS) -> QueryResult:
        return run_query(self, sql, max_rows)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    seconds: float

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def restricted_connection(
    source: duckdb.DuckDBPyConnection, datasets: tuple[str, ...], threads: int = 2
) -> Workbench:
    """Copy the permitted content of ``source`` (a snapshot connection) into a fresh,
    locked in-memory DuckDB. ``datasets`` are the event datasets the analyst may see."""
    target = duckdb.connect(":memory:")
    target.execute(f"SET threads = {int(threads)}")
    counts: dict[str, int] = {}
    for name, (table, columns, by_dataset) in WORKBENCH_TABLES.items():
        if not has_table(source, table):
            continue
        query = f"SELECT {columns} FROM {table}"
        params: list[Any] = []
        if by_dataset:
            if not datasets:
                query += " WHERE FALSE"
            else:
                query += f" WHERE dataset IN ({', '.join('?' * len(datasets))})"
                params = list(datasets)
        try:
            data: pa.Table = source.sql(query, params=params).to_arrow_table()
        except duckdb.BinderException:
            continue  # an older lake without one of the columns: leave the table out
        target.register(f"_{name}", data)
        target.execute(f'CREATE TABLE "{name}" AS SELECT * FROM "_{name}"')
        target.unregister(f"_{name}")
        counts[name] = int(data.num_rows)
    target.execute("SET enable_external_access = false")
    target.execute("SET lock_configuration = true")
    return Workbench(target, counts, tuple(datasets))


def run_query(bench: Workbench, sql: str, max_rows: int = MAX_ROWS) -> QueryResult:
    """Run one checked SELECT, at most ``max_rows`` rows back; audited when the bench
    has an audit hook (every query, rejected ones too)."""
    started = time.perf_counter()
    try:
        check_select(sql)
        cursor = bench.con.cursor()
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(max_rows + 1)
    except QueryRejected as exc:
        if bench.audit:
            bench.audit("workbench_query", {"sql": sql, "outcome": "rejected", "reason": str(exc)})
        raise
    except duckdb.Error as exc:
        if bench.audit:
            bench.audit("workbench_query", {"sql": sql, "outcome": "error", "reason": str(exc)})
        raise QueryRejected(str(exc).splitlines()[0]) from exc
    bench.queries += 1
    result = QueryResult(
        columns, rows[:max_rows], len(rows) > max_rows, time.perf_counter() - started
    )
    if bench.audit:
        bench.audit(
            "workbench_query",
            {"sql": sql, "outcome": "ok", "rows": len(result.rows), "truncated": result.truncated},
        )
    return result


def connect(
    token: str | None = None,
    *,
    username: str | None = None,
    purpose: str | None = None,
    home: Any = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for an analyst, restricted to what their agreements allow.

    Identify with an API token (``token=`` or ``$NOMINAL_TOKEN``; the token fixes the
    purpose) or, on the hub's own machine, with ``username=`` and ``purpose=``. The
    connection holds the tables of :data:`WORKBENCH_TABLES` (events only from
    permitted datasets), cannot read files, and opening it is audited.
    """
    import os

    from nominal.config import home as default_home
    from nominal.db import ControlPlane
    from nominal.govern import auth
    from nominal.govern.admin import get_purpose, get_user
    from nominal.govern.audit import audit_log
    from nominal.govern.policy import decide
    from nominal.products.access import permitted_datasets
    from nominal.products.lakeview import open_snapshot

    chosen = home or default_home()
    token = token or os.environ.get("NOMINAL_TOKEN")
    control = ControlPlane(chosen.database_url)
    try:
        with control.session() as session:
            if token:
                found = auth.check_token(session, token)
                if found is None:
                    raise ProductsError("the API token is invalid, expired or revoked")
                user, purpose_obj = found.user, found.purpose
            elif username and purpose:
                user, purpose_obj = get_user(session, username), get_purpose(session, purpose)
            else:
                raise ProductsError(
                    "give an API token (or $NOMINAL_TOKEN), or username and purpose"
                )
            source, snapshot = open_snapshot(chosen)
            permitted = permitted_datasets(
                source, lambda ds, fields: decide(session, user, purpose_obj, ds, fields)
            )
            log = audit_log(control, chosen)
            if not permitted.datasets:
                log.record(
                    "workbench_connect",
                    "denied",
                    user=user,
                    purpose=purpose_obj.code,
                    detail={"reason": "no dataset is shared with you for this purpose"},
                )
                raise ProductsError(
                    f"no dataset is shared with {user.username} for {purpose_obj.code}"
                )
            bench = restricted_connection(source, permitted.datasets)
            source.close()
            log.record(
                "workbench_connect",
                "allowed",
                user=user,
                purpose=purpose_obj.code,
                detail={
                    "datasets": list(permitted.datasets),
                    "tables": bench.tables,
                    "agreements": list(permitted.agreements),
                    "snapshot": snapshot.id,
                },
            )
    finally:
        control.dispose()
    return bench.con
