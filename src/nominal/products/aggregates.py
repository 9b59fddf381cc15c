"""The demand dashboard's figures, pre-aggregated once per lake snapshot.

At a million people ``gold.events`` holds about seven million rows, and computing the
dashboard from them on every request took tens of seconds. So a pipeline step
(:func:`build`, stage ``products`` after ``link``; ``nominal products aggregate`` by
hand) writes small gold tables that keep exactly what the dashboard filters on —
dataset (the policy decision point's unit), agency, output area and ward, age band on
the as-of day — and the page only filters and sums them:

==============================  ===========================================================
``gold.demand_by_month``        events per dataset, agency, event type, month, age band
``gold.demand_by_area_month``   the same per output area and ward (for an area filter)
``gold.demand_by_area``         events per dataset, agency, age band, output area, ward
``gold.demand_nominals``        per nominal (all areas and ages; per age band; per output
                                area and age band): a bit mask of the (dataset, agency)
                                pairs it has events in, and events and last event per pair
``gold.demand_households``      the same per household
``gold.demand_open``            involvements open on the as-of day, earliest start per
                                nominal, household, dataset, agency, type, area, age band
``gold.demand_bits``            which bit of the masks is which (dataset, agency) pair
``gold.demand_meta``            the as-of day, the intervention types and age bands used,
                                and the data files of the inputs they were built from
==============================  ===========================================================

Every table is built from :func:`nominal.products.lakeview.scoped_events` with no
filter, the very SQL the direct computation uses, so the two cannot drift apart in
what an event's area or a person's age is. ``* `` in ``oa_code``/``age_band`` marks a
row that covers every area or every age.

**Freshness.** :meth:`Aggregates.load` compares the input files recorded in
``gold.demand_meta`` with the snapshot's own: any run that rewrote ``gold.events``,
``gold.nominals`` or ``reference.output_areas`` since (a re-link, an erasure, new
geography) makes them stale, and the dashboard then computes directly from the events
(correct, slower) until the next pipeline run rebuilds them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from nominal.config import Home
from nominal.engines import duck
from nominal.engines.lake import Lake, Snapshot
from nominal.products.lakeview import AGE_BANDS, Filters, as_of_date, has_table, run, scoped_events

INPUTS = ("gold.events", "gold.nominals", "reference.output_areas")
TABLES = (
    "gold.demand_by_month",
    "gold.demand_by_area_month",
    "gold.demand_by_area",
    "gold.demand_nominals",
    "gold.demand_households",
    "gold.demand_open",
    "gold.demand_bits",
    "gold.demand_meta",
)
ALL = "*"  # an oa_code / age_band that stands for every area / every age
MAX_PAIRS = 64  # the masks are UBIGINT: one bit per (dataset, agency) pair
UNIT_TABLES = {
    "nominal": ("gold.demand_nominals", "nominal_id", "nominal_pseudo"),
    "household": ("gold.demand_households", "household_id", "household_pseudo"),
}


def _intervention_types() -> tuple[str, ...]:
    from nominal.products.demand import INTERVENTION_EVENT_TYPES

    return INTERVENTION_EVENT_TYPES


def _fingerprint(snapshot: Snapshot) -> dict[str, list[str]]:
    """The data and deletion files of each input table: immutable, so the same lists mean
    the same data (an incremental link may only add a deletion file to a table)."""
    return {t: sorted(p.name for p in snapshot.files(t) + snapshot.deletes(t)) for t in INPUTS}


def _age_band_sql() -> str:
    arms = []
    for band, (low, high) in AGE_BANDS.items():
        upper = f" AND age <= {int(high)}" if high is not None else ""
        arms.append(f"WHEN age >= {int(low)}{upper} THEN '{band}'")
    return f"CASE {' '.join(arms)} END"


# -- building ---------------------------------------------------------------------------------
def _unit_table(con: duckdb.DuckDBPyConnection, key: str, pseudo: str) -> str:
    """SQL for one unit table: per-pair figures rolled up to every area/age grain."""
    return f"""
        WITH per_pair AS (
            SELECT {key}, any_value({pseudo}) AS {pseudo}, bit,
                   CASE WHEN grouping(oa_code) = 1 THEN '{ALL}' ELSE oa_code END AS oa_code,
                   CASE WHEN grouping(ward_code) = 1 THEN NULL ELSE ward_code END AS ward_code,
                   CASE WHEN grouping(age_band) = 1 THEN '{ALL}' ELSE age_band END AS age_band,
                   count(*) AS events, max(event_date) AS last_event
            FROM demand_events WHERE {key} IS NOT NULL
            GROUP BY GROUPING SETS (({key}, bit, oa_code, ward_code, age_band),
                                    ({key}, bit, age_band), ({key}, bit))
        )
        SELECT {key}, any_value({pseudo}) AS {pseudo}, oa_code, ward_code, age_band,
               bit_or(1::UBIGINT << bit::UBIGINT) AS mask,
               list({{'bit': bit, 'events': events, 'last_event': last_event}}) AS per_pair
        FROM per_pair GROUP BY {key}, oa_code, ward_code, age_band
        ORDER BY oa_code = '{ALL}' DESC, age_band = '{ALL}' DESC, ward_code, oa_code, {key}
    """


def build(home: Home, *, memory_limit: str = "3GB", threads: int = 2) -> dict[str, Any]:
    """Write the dashboard's aggregate tables for the current snapshot (a new snapshot).

    Returns the row count of each table and the as-of day.
    """
    lake = Lake(home.lake)
    types = _intervention_types()
    with lake.transaction("products aggregates") as tx:
        base = tx.base
        if base is None or not base.has("gold.events"):
            return {"skipped": "no gold.events yet"}
        con = duck.connect(base, threads=threads, memory_limit=memory_limit)
        try:
            as_of = as_of_date(con)
            events_sql, params = scoped_events(con, Filters(), as_of)
            pairs = con.execute(
                "SELECT DISTINCT dataset, agency FROM gold.events ORDER BY dataset, agency"
            ).fetchall()
            if len(pairs) > MAX_PAIRS:
                return {"skipped": f"{len(pairs)} dataset/agency pairs: more than {MAX_PAIRS}"}
            con.execute(
                "CREATE TEMP TABLE demand_bits (bit INTEGER, dataset VARCHAR, agency VARCHAR)"
            )
            con.executemany(
                "INSERT INTO demand_bits VALUES (?, ?, ?)",
                [(i, d, a) for i, (d, a) in enumerate(pairs)],
            )
            con.execute(
                f"""CREATE TEMP TABLE demand_events AS
                    SELECT e.nominal_id, e.nominal_pseudo, e.household_id, e.household_pseudo,
                           e.dataset, e.agency, e.event_type, e.event_date, e.event_end_date,
                           e.event_status, e.oa_code, e.ward_code, b.bit,
                           {_age_band_sql()} AS age_band
                    FROM ({events_sql}) e
                    JOIN demand_bits b ON b.dataset = e.dataset AND b.agency = e.agency""",
                params,
            )
            day = f"DATE '{as_of.isoformat()}'"
            marks = ", ".join("?" * len(types))
            queries: dict[str, tuple[str, list[Any]]] = {
                "gold.demand_by_month": (
                    """SELECT dataset, agency, event_type,
                              date_trunc('month', event_date)::DATE AS month, age_band,
                              count(*) AS events
                       FROM demand_events GROUP BY ALL""",
                    [],
                ),
                "gold.demand_by_area_month": (
                    """SELECT dataset, agency, event_type,
                              date_trunc('month', event_date)::DATE AS month, age_band,
                              oa_code, ward_code, count(*) AS events
                       FROM demand_events GROUP BY ALL ORDER BY ward_code, oa_code""",
                    [],
                ),
                "gold.demand_by_area": (
                    """SELECT dataset, agency, age_band, oa_code, ward_code, count(*) AS events
                       FROM demand_events GROUP BY ALL ORDER BY ward_code, oa_code""",
                    [],
                ),
                "gold.demand_nominals": (_unit_table(con, "nominal_id", "nominal_pseudo"), []),
                "gold.demand_households": (
                    _unit_table(con, "household_id", "household_pseudo"),
                    [],
                ),
                "gold.demand_open": (
                    f"""SELECT nominal_id, nominal_pseudo, household_id, household_pseudo,
                               dataset, agency, event_type, oa_code, ward_code, age_band,
                               min(event_date) AS since
                        FROM demand_events
                        WHERE event_type IN ({marks}) AND event_date <= {day}
                          AND ((event_end_date IS NULL
                                AND coalesce(event_status, 'open') <> 'closed')
                               OR event_end_date > {day})
                        GROUP BY ALL""",
                    list(types),
                ),
                "gold.demand_bits": ("SELECT * FROM demand_bits ORDER BY bit", []),
            }
            counts: dict[str, int] = {}
            for table, (sql, args) in queries.items():
                path = tx.new_file(table)
                con.execute(
                    f"COPY ({sql}) TO {duck.sql_literal(str(path))} "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)",
                    args,
                )
                tx.replace(table, [path])
                counts[table] = tx.rows(table)
            meta = {
                "as_of": as_of.isoformat(),
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "built_on_snapshot": base.id,
                "inputs": json.dumps(_fingerprint(base)),
                "intervention_types": json.dumps(list(types)),
                "age_bands": json.dumps({k: list(v) for k, v in AGE_BANDS.items()}),
            }
            import pyarrow as pa

            tx.replace(
                "gold.demand_meta",
                [tx.write_arrow("gold.demand_meta", pa.Table.from_pylist([meta]))],
            )
            counts["gold.demand_meta"] = 1
        finally:
            con.close()
        tx.commit({"products_aggregates": counts, "as_of": as_of.isoformat()})
    return {"as_of": as_of.isoformat(), "rows": counts}


# -- reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Aggregates:
    """The fresh aggregate tables of one snapshot, and their (dataset, agency) bits."""

    as_of: date
    bits: tuple[tuple[int, str, str], ...]  # (bit, dataset, agency)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> Aggregates | None:
        """The aggregates if ``snapshot`` has them and they were built from its own
        inputs with today's intervention types and age bands; None otherwise."""
        if not all(snapshot.has(t) for t in TABLES) or not has_table(con, "gold.demand_meta"):
            return None
        rows = run(con, "SELECT * FROM gold.demand_meta", [])
        if len(rows) != 1:
            return None
        meta = rows[0]
        current = {k: v for k, v in _fingerprint(snapshot).items()}
        if json.loads(meta["inputs"]) != current:
            return None
        if tuple(json.loads(meta["intervention_types"])) != _intervention_types():
            return None
        if json.loads(meta["age_bands"]) != {k: list(v) for k, v in AGE_BANDS.items()}:
            return None
        bits = con.execute(
            "SELECT bit, dataset, agency FROM gold.demand_bits ORDER BY bit"
        ).fetchall()
        return cls(date.fromisoformat(meta["as_of"]), tuple((int(b), d, a) for b, d, a in bits))

    @property
    def datasets(self) -> list[str]:
        return sorted({d for _, d, _ in self.bits})

    def agencies(self, datasets: Sequence[str]) -> list[str]:
        return sorted({a for _, d, a in self.bits if d in datasets})

    def serves(self, filters: Filters, as_of: date | None) -> bool:
        """Whether these figures answer ``filters`` on ``as_of`` (date ranges and other
        as-of days are computed directly)."""
        return (
            (as_of is None or as_of == self.as_of)
            and filters.start is None
            and filters.end is None
            and not filters.extra
        )

    def mask(self, filters: Filters) -> int:
        """The bits of the (dataset, agency) pairs ``filters`` allow."""
        out = 0
        for bit, dataset, agency in self.bits:
            if filters.datasets is not None and dataset not in filters.datasets:
                continue
            if filters.agencies and agency not in filters.agencies:
                continue
            out |= 1 << bit
        return out

    def agency_masks(self, mask: int) -> dict[str, int]:
        """Per agency, the bits of its pairs within ``mask``."""
        out: dict[str, int] = {}
        for bit, _, agency in self.bits:
            if mask >> bit & 1:
                out[agency] = out.get(agency, 0) | 1 << bit
        return out

    def agencies_in(self, mask: int) -> list[str]:
        return sorted({a for bit, _, a in self.bits if mask >> bit & 1})


def where(filters: Filters, *, area: bool = True, age: bool = True) -> tuple[str, list[Any]]:
    """WHERE conditions on an aggregate table's dataset, agency, area and age band."""
    conditions: list[str] = []
    params: list[Any] = []
    if filters.datasets is not None:
        if not filters.datasets:
            conditions.append("FALSE")
        else:
            conditions.append(f"dataset IN ({', '.join('?' * len(filters.datasets))})")
            params.extend(filters.datasets)
    if filters.agencies:
        conditions.append(f"agency IN ({', '.join('?' * len(filters.agencies))})")
        params.extend(filters.agencies)
    if area and filters.area:
        conditions.append("(oa_code = ? OR ward_code = ?)")
        params.extend([filters.area, filters.area])
    if age and filters.age_band:
        conditions.append("age_band = ?")
        params.append(filters.age_band)
    return " AND ".join(conditions) or "TRUE", params


def _unit_rows(filters: Filters) -> tuple[str, list[Any]]:
    """Which rows of a unit table answer ``filters``: the all-areas row for the age band
    (or all ages), else the rows of the area's output areas (of that age band)."""
    if not filters.area:
        return f"oa_code = '{ALL}' AND age_band = ?", [filters.age_band or ALL]
    rows = f"oa_code <> '{ALL}' AND (oa_code = ? OR ward_code = ?)"
    params: list[Any] = [filters.area, filters.area]
    if filters.age_band:
        rows += " AND age_band = ?"
        params.append(filters.age_band)
    return rows, params


def units_sql(agg: Aggregates, filters: Filters, unit: str) -> tuple[str, list[Any], int]:
    """SQL of (unit_id, unit_pseudo, m, agency_count, pairs): each unit with events that
    ``filters`` allow, ``m`` the bits of the pairs it has such events in and ``pairs``
    its per-pair figures; and the allowed mask.

    Without an area filter each unit has exactly one row of the grain asked for, so
    nothing is grouped; an area's rows (one per output area) are merged per unit."""
    table, key, pseudo = UNIT_TABLES[unit]
    allowed = agg.mask(filters)
    count = (
        " + ".join(
            f"(CASE WHEN m & {m}::UBIGINT <> 0 THEN 1 ELSE 0 END)"
            for m in agg.agency_masks(allowed).values()
        )
        or "0"
    )
    rows, params = _unit_rows(filters)
    if filters.area:
        source = f"""SELECT {key} AS unit_id, any_value({pseudo}) AS unit_pseudo,
                            bit_or(mask) & {allowed}::UBIGINT AS m, flatten(list(per_pair)) AS pairs
                     FROM {table} WHERE {rows} GROUP BY {key}"""
    else:
        source = f"""SELECT {key} AS unit_id, {pseudo} AS unit_pseudo,
                            mask & {allowed}::UBIGINT AS m, per_pair AS pairs
                     FROM {table} WHERE {rows}"""
    sql = f"SELECT *, {count} AS agency_count FROM ({source}) WHERE m <> 0"
    return sql, params, allowed


def pair_figures_sql(allowed: int, column: str = "pairs") -> tuple[str, str]:
    """SQL of a unit's events and last event over the allowed pairs of ``column``."""
    chosen = f"list_filter({column}, lambda x: (({allowed}::UBIGINT >> x.bit::UBIGINT) & 1::UBIGINT) = 1)"
    return (
        f"list_sum(list_transform({chosen}, lambda x: x.events))::BIGINT",
        f"list_max(list_transform({chosen}, lambda x: x.last_event))",
    )
