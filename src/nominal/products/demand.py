"""The demand dashboard: who is asking what of which agency, and where effort overlaps.

* volumes of events by agency, event type, month and output area;
* people and households known to three or more agencies;
* **duplicate interventions**: nominals (or households) with concurrent open
  involvement by two or more agencies on the as-of day — which agencies, and since
  when each has been involved and since when they have overlapped.

An *involvement* is an event that runs over time and is delivered by an agency (a
plan, an episode, supervision); one-off events (a crime, an A&E attendance) are demand
but not interventions. The list is :data:`INTERVENTION_EVENT_TYPES`; a deployment adds
its own event types there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from nominal.products import aggregates as agg_tables
from nominal.products.aggregates import Aggregates
from nominal.products.lakeview import Filters, as_of_date, run, scoped_events

INTERVENTION_EVENT_TYPES: tuple[str, ...] = (
    "cin_cp_plan",
    "early_help_episode",
    "mental_health_episode",
    "probation_supervision",
    "substance_misuse_episode",
)
UNITS = {
    "nominal": ("nominal_id", "nominal_pseudo"),
    "household": ("household_id", "household_pseudo"),
}


@dataclass
class Volumes:
    by_agency: list[dict[str, Any]]
    by_event_type: list[dict[str, Any]]
    by_month: list[dict[str, Any]]
    by_area: list[dict[str, Any]]
    total: int


Base = tuple[str, list[Any]]


def volumes(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    as_of: date | None = None,
    base: Base | None = None,
    aggregates: Aggregates | None = None,
) -> Volumes:
    """Event counts by agency, by event type, by month and agency, and by output area.

    With fresh ``aggregates`` that serve the filters, summed from the pre-aggregated
    tables instead of counted from the events."""
    if aggregates is not None and aggregates.serves(filters, as_of):
        return _volumes_precomputed(con, filters)
    base_sql, params = base or scoped_events(con, filters, as_of)

    def grouped(select: str, group: str, order: str) -> list[dict[str, Any]]:
        return run(
            con,
            f"SELECT {select}, count(*) AS events FROM ({base_sql}) GROUP BY {group} ORDER BY {order}",
            params,
        )

    by_month = grouped(
        "strftime(date_trunc('month', event_date), '%Y-%m') AS month, agency",
        "ALL",
        "month, agency",
    )
    by_agency = grouped("agency", "agency", "events DESC, agency")
    return Volumes(
        by_agency=by_agency,
        by_event_type=grouped("agency, event_type", "ALL", "events DESC, event_type"),
        by_month=by_month,
        by_area=grouped("oa_code, ward_code", "ALL", "events DESC, oa_code"),
        total=sum(int(r["events"]) for r in by_agency),
    )


def _volumes_precomputed(con: duckdb.DuckDBPyConnection, filters: Filters) -> Volumes:
    source = "gold.demand_by_area_month" if filters.area else "gold.demand_by_month"
    cond, params = agg_tables.where(filters)

    def grouped(table: str, select: str, order: str) -> list[dict[str, Any]]:
        return run(
            con,
            f"SELECT {select}, sum(events)::BIGINT AS events FROM {table} WHERE {cond} "
            f"GROUP BY ALL ORDER BY {order}",
            params,
        )

    by_agency = grouped(source, "agency", "events DESC, agency")
    return Volumes(
        by_agency=by_agency,
        by_event_type=grouped(source, "agency, event_type", "events DESC, event_type"),
        by_month=grouped(source, "strftime(month, '%Y-%m') AS month, agency", "month, agency"),
        by_area=grouped("gold.demand_by_area", "oa_code, ward_code", "events DESC, oa_code"),
        total=sum(int(r["events"]) for r in by_agency),
    )


def _known_to_many_precomputed(
    con: duckdb.DuckDBPyConnection,
    agg: Aggregates,
    filters: Filters,
    unit: str,
    min_agencies: int,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    units, params, allowed = agg_tables.units_sql(agg, filters, unit)
    events, last_event = agg_tables.pair_figures_sql(allowed)
    sql = f"""
        SELECT unit_id, unit_pseudo, agency_count, m, {events} AS events,
               {last_event} AS last_event, count(*) OVER () AS total
        FROM ({units}) WHERE agency_count >= {int(min_agencies)}
        ORDER BY agency_count DESC, events DESC, unit_id LIMIT {int(limit)}
    """
    rows = run(con, sql, params)
    total = int(rows[0]["total"]) if rows else 0
    out = []
    for row in rows:
        out.append(
            {
                "unit_id": row["unit_id"],
                "unit_pseudo": row["unit_pseudo"],
                "agency_count": row["agency_count"],
                "agencies": ", ".join(agg.agencies_in(int(row["m"]))),
                "events": row["events"],
                "last_event": row["last_event"],
            }
        )
    return total, out


def known_to_many(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    unit: str = "nominal",
    min_agencies: int = 3,
    as_of: date | None = None,
    limit: int = 200,
    base: Base | None = None,
    aggregates: Aggregates | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """How many nominals (or households) appear in events of ``min_agencies`` or more
    agencies, and the units with most agencies first (at most ``limit``)."""
    if aggregates is not None and aggregates.serves(filters, as_of):
        return _known_to_many_precomputed(con, aggregates, filters, unit, min_agencies, limit)
    key, pseudo = UNITS[unit]
    base_sql, params = base or scoped_events(con, filters, as_of)
    sql = f"""
        WITH u AS (
            SELECT {key} AS unit_id, any_value({pseudo}) AS unit_pseudo,
                   count(DISTINCT agency) AS agency_count,
                   string_agg(DISTINCT agency, ', ' ORDER BY agency) AS agencies,
                   count(*) AS events, max(event_date) AS last_event
            FROM ({base_sql}) WHERE {key} IS NOT NULL GROUP BY {key}
            HAVING count(DISTINCT agency) >= {int(min_agencies)}
        )
        SELECT *, count(*) OVER () AS total FROM u
        ORDER BY agency_count DESC, events DESC, unit_id LIMIT {int(limit)}
    """
    rows = run(con, sql, params)
    total = int(rows[0]["total"]) if rows else 0
    for row in rows:
        row.pop("total")
    return total, rows


def duplicate_interventions(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    unit: str = "nominal",
    as_of: date | None = None,
    event_types: tuple[str, ...] = INTERVENTION_EVENT_TYPES,
    limit: int = 500,
    base: Base | None = None,
    aggregates: Aggregates | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Units with open involvement by two or more agencies on ``as_of``.

    Each row: unit_id, unit_pseudo, agency_count, involvements (a list of
    ``{agency, event_type, since}``, the earliest open start per agency and type) and
    ``overlap_since`` (the day the second agency became involved: the latest of the
    agencies' earliest starts, so the overlap has lasted since then).
    """
    key, pseudo = UNITS[unit]
    if (
        aggregates is not None
        and aggregates.serves(filters, as_of)
        and event_types == INTERVENTION_EVENT_TYPES
    ):
        # gold.demand_open holds the involvements open on the aggregates' as-of day.
        cond, params = agg_tables.where(filters)
        open_now = f"""
            SELECT {key} AS unit_id, {pseudo} AS unit_pseudo, agency, event_type,
                   since AS event_date
            FROM gold.demand_open WHERE {key} IS NOT NULL AND {cond}"""
        return _duplicates(con, open_now, params, aggregates.as_of, limit)
    as_of = as_of or as_of_date(con)
    base_sql, params = base or scoped_events(con, filters, as_of)
    day = f"DATE '{as_of.isoformat()}'"
    types = ", ".join("?" * len(event_types))
    open_now = f"""
        SELECT {key} AS unit_id, {pseudo} AS unit_pseudo, agency, event_type, event_date
        FROM ({base_sql})
        WHERE {key} IS NOT NULL AND event_type IN ({types})
          AND event_date <= {day}
          AND ((event_end_date IS NULL AND coalesce(event_status, 'open') <> 'closed')
               OR event_end_date > {day})"""
    return _duplicates(con, open_now, [*params, *event_types], as_of, limit)


def _duplicates(
    con: duckdb.DuckDBPyConnection, open_now: str, params: list[Any], as_of: date, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """Units of ``open_now`` (unit_id, unit_pseudo, agency, event_type, event_date of
    involvements open on ``as_of``) involved with two or more agencies."""
    sql = f"""
        WITH open_now AS ({open_now}),
        per_agency AS (
            SELECT unit_id, any_value(unit_pseudo) AS unit_pseudo, agency,
                   -- string_agg(DISTINCT .. ORDER BY ..) is many times slower
                   array_to_string(list_sort(list_distinct(list(event_type))), ', ')
                     AS event_types,
                   min(event_date) AS since
            FROM open_now GROUP BY unit_id, agency
        ),
        units AS (
            SELECT unit_id, any_value(unit_pseudo) AS unit_pseudo, count(*) AS agency_count,
                   max(since) AS overlap_since,
                   list({{'agency': agency, 'event_types': event_types, 'since': since}}
                        ORDER BY since, agency) AS involvements
            FROM per_agency GROUP BY unit_id HAVING count(*) >= 2
        )
        SELECT *, count(*) OVER () AS total FROM units
        ORDER BY agency_count DESC, overlap_since, unit_id LIMIT {int(limit)}
    """
    rows = run(con, sql, params)
    total = int(rows[0]["total"]) if rows else 0
    for row in rows:
        row.pop("total")
        row["days_overlapping"] = (as_of - row["overlap_since"]).days
    return total, rows


@dataclass
class Dashboard:
    as_of: date
    filters: Filters
    volumes: Volumes
    people_3plus: int
    households_3plus: int
    top_people: list[dict[str, Any]]
    duplicates_people: int
    duplicates_households: int
    duplicates: list[dict[str, Any]]
    household_duplicates: list[dict[str, Any]]
    precomputed: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "filters": self.filters.to_json(),
            "events": self.volumes.total,
            "people_known_to_3_plus_agencies": self.people_3plus,
            "households_known_to_3_plus_agencies": self.households_3plus,
            "people_with_duplicate_interventions": self.duplicates_people,
            "households_with_duplicate_interventions": self.duplicates_households,
            "precomputed": self.precomputed,
        }


def dashboard(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    as_of: date | None = None,
    aggregates: Aggregates | None = None,
) -> Dashboard:
    """Everything the demand dashboard shows, for one set of filters.

    With fresh ``aggregates`` (:mod:`nominal.products.aggregates`) that serve the
    filters, every figure comes from the small pre-aggregated tables. Otherwise the
    filtered events (joined once to the nominals and output areas) are kept in a
    temporary table for the dashboard's nine queries, instead of re-joining per query.
    """
    if aggregates is not None and aggregates.serves(filters, as_of):
        people, top = known_to_many(con, filters, "nominal", limit=50, aggregates=aggregates)
        households, _ = known_to_many(con, filters, "household", limit=1, aggregates=aggregates)
        dup_people, dups = duplicate_interventions(con, filters, "nominal", aggregates=aggregates)
        dup_households, hh_dups = duplicate_interventions(
            con, filters, "household", aggregates=aggregates
        )
        return Dashboard(
            as_of=aggregates.as_of,
            filters=filters,
            volumes=volumes(con, filters, aggregates=aggregates),
            people_3plus=people,
            households_3plus=households,
            top_people=top,
            duplicates_people=dup_people,
            duplicates_households=dup_households,
            duplicates=dups,
            household_duplicates=hh_dups,
            precomputed=True,
        )
    as_of = as_of or as_of_date(con)
    sql, params = scoped_events(con, filters, as_of)
    name = f"scoped_{uuid.uuid4().hex}"
    con.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
    base: Base = (f"SELECT * FROM {name}", [])
    try:
        people, top = known_to_many(con, filters, "nominal", as_of=as_of, limit=50, base=base)
        households, _ = known_to_many(con, filters, "household", as_of=as_of, limit=1, base=base)
        dup_people, dups = duplicate_interventions(con, filters, "nominal", as_of, base=base)
        dup_households, hh_dups = duplicate_interventions(
            con, filters, "household", as_of, base=base
        )
        vols = volumes(con, filters, as_of, base=base)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return Dashboard(
        as_of=as_of,
        filters=filters,
        volumes=vols,
        people_3plus=people,
        households_3plus=households,
        top_people=top,
        duplicates_people=dup_people,
        duplicates_households=dup_households,
        duplicates=dups,
        household_duplicates=hh_dups,
    )
