"""Opening the lake for the products, and the filters every product shares.

Every product query runs on a DuckDB connection over one lake snapshot (a view per
table named ``layer.table``); :func:`scoped_events` is the single place where the
datasets a user may see, the area, the age band and the agencies narrow the events,
so no page can forget one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from nominal.config import Home
from nominal.engines import duck
from nominal.engines.lake import Lake, Snapshot

# Age bands a manager recognises; the upper bound is inclusive (None: no upper bound).
AGE_BANDS: dict[str, tuple[int, int | None]] = {
    "0-17": (0, 17),
    "18-24": (18, 24),
    "25-44": (25, 44),
    "45-64": (45, 64),
    "65+": (65, None),
}


class ProductsError(ValueError):
    """Bad input to a product (an unknown age band, an empty lake...), said plainly."""


def open_snapshot(home: Home) -> tuple[duckdb.DuckDBPyConnection, Snapshot]:
    """A DuckDB connection over the current snapshot of ``home``'s lake."""
    snapshot = Lake(home.lake).current()
    if snapshot is None or not snapshot.has("gold.events"):
        raise ProductsError("the lake has no gold.events table yet: link the nominals first")
    return duck.connect(snapshot, threads=2, memory_limit="2GB"), snapshot


def first(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, reading the result to its end (DuckDB refuses other
    work on a connection with an unfinished result)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    layer, _, name = table.partition(".")
    found = first(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [layer, name],
        )
    )
    return bool(found and found[0])


@dataclass(frozen=True)
class Filters:
    """What a dashboard is narrowed to. Empty means everything the user may see.

    ``datasets`` is set by the caller from the policy decision point (the datasets the
    user's agreements allow for the purpose); ``None`` is used only by the CLI and
    benchmarks, which run as the hub itself.
    """

    area: str | None = None  # an output-area or ward code
    age_band: str | None = None
    agencies: tuple[str, ...] = ()
    datasets: tuple[str, ...] | None = None
    start: date | None = None
    end: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.age_band and self.age_band not in AGE_BANDS:
            raise ProductsError(
                f"unknown age band {self.age_band!r}: use one of {', '.join(AGE_BANDS)}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "age_band": self.age_band,
            "agencies": list(self.agencies),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


def as_of_date(con: duckdb.DuckDBPyConnection) -> date:
    """The day the data runs to (the last event date), so a synthetic town's dashboard is
    not empty when today is after its last delivery."""
    row = first(con.execute("SELECT max(event_date)::DATE FROM gold.events"))
    return row[0] if row and row[0] else date.today()


def scoped_events(
    con: duckdb.DuckDBPyConnection, filters: Filters, as_of: date | None = None
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for the events ``filters`` allow, with the nominal's
    age on ``as_of``, the output area and its ward.

    The area filter matches an output area or a ward; age is the person's age on the
    as-of day (the dashboard describes the caseload as it stands).
    """
    as_of = as_of or as_of_date(con)
    ward = "o.ward_code" if has_table(con, "reference.output_areas") else "NULL"
    join_oa = (
        "LEFT JOIN reference.output_areas o ON o.oa_code = coalesce(e.oa_code, n.oa_code)"
        if ward != "NULL"
        else ""
    )
    where: list[str] = []
    params: list[Any] = []
    day = f"DATE '{as_of.isoformat()}'"  # a date object, never user text
    if filters.datasets is not None:
        if not filters.datasets:
            where.append("FALSE")
        else:
            where.append(f"e.dataset IN ({', '.join('?' * len(filters.datasets))})")
            params.extend(filters.datasets)
    if filters.agencies:
        where.append(f"e.agency IN ({', '.join('?' * len(filters.agencies))})")
        params.extend(filters.agencies)
    if filters.area:
        where.append("(e.oa_code = ? OR e.ward_code = ?)")
        params.extend([filters.area, filters.area])
    if filters.start:
        where.append("e.event_date >= ?")
        params.append(filters.start)
    if filters.end:
        where.append("e.event_date <= ?")
        params.append(filters.end)
    if filters.age_band:
        low, high = AGE_BANDS[filters.age_band]
        where.append("age >= ?")
        params.append(low)
        if high is not None:
            where.append("age <= ?")
            params.append(high)
    sql = f"""
        SELECT * FROM (
            SELECT e.nominal_id, e.nominal_pseudo, e.household_id, e.household_pseudo,
                   e.dataset, e.agency, e.event_type, e.event_date::DATE AS event_date,
                   e.event_end_date::DATE AS event_end_date, e.event_status,
                   coalesce(e.oa_code, n.oa_code) AS oa_code, {ward} AS ward_code,
                   date_diff('year', n.date_of_birth::DATE, {day})
                     - CASE WHEN strftime(n.date_of_birth::DATE, '%m%d') > strftime({day}, '%m%d')
                            THEN 1 ELSE 0 END AS age
            FROM gold.events e
            LEFT JOIN gold.nominals n ON n.nominal_id = e.nominal_id
            {join_oa}
        ) e
        {"WHERE " + " AND ".join(where) if where else ""}
    """
    return sql, params


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Run parameterised SQL and return its rows as dicts."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
