"""Output-area measures for the map, and each area's details.

The map is a choropleth of one measure per output area, drawn by Leaflet from the
GeoJSON this module builds out of ``reference.output_areas`` (ward outlines from
``reference.wards``). Boundaries come from ONS-format files loaded by
:func:`nominal.ingest.api.import_geography`, so a real deployment shows real
geography and the demo shows its synthetic town.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb

from nominal.products import aggregates as agg_tables
from nominal.products.aggregates import Aggregates
from nominal.products.lakeview import (
    Filters,
    ProductsError,
    as_of_date,
    first,
    has_table,
    run,
    scoped_events,
)

# measure -> (label, what it counts)
MEASURES: dict[str, tuple[str, str]] = {
    "events": ("Events", "events recorded in the area"),
    "people": ("People with events", "distinct nominals with an event in the area"),
    "multi_agency": ("People known to 3+ agencies", "nominals known to three or more agencies"),
    "cohort": ("Cohort members", "members of risk cohorts living in the area"),
    "risk": ("Mean risk score", "mean latest risk score of the area's nominals"),
}


def area_measure(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    measure: str = "events",
    as_of: date | None = None,
    cohort: str | None = None,
    aggregates: Aggregates | None = None,
) -> dict[str, float]:
    """``{oa_code: value}`` of ``measure`` for every output area with a value.

    Events, people and people known to 3+ agencies come from the pre-aggregated demand
    tables when ``aggregates`` are fresh and serve the filters."""
    if measure not in MEASURES:
        raise ProductsError(f"unknown measure {measure!r}: use one of {', '.join(MEASURES)}")
    fast = aggregates is not None and aggregates.serves(filters, as_of)
    if fast and aggregates is not None and measure in ("events", "people", "multi_agency"):
        sql, params = _precomputed_measure(aggregates, filters, measure)
        return {r["oa_code"]: float(r["v"]) for r in run(con, sql, params) if r["oa_code"]}
    as_of = as_of or as_of_date(con)
    base, params = scoped_events(con, filters, as_of)
    if measure == "events":
        sql = f"SELECT oa_code, count(*) AS v FROM ({base}) GROUP BY oa_code"
    elif measure == "people":
        sql = f"SELECT oa_code, count(DISTINCT nominal_id) AS v FROM ({base}) GROUP BY oa_code"
    elif measure == "multi_agency":
        sql = f"""SELECT n.oa_code, count(*) AS v FROM (
                    SELECT nominal_id FROM ({base}) GROUP BY nominal_id
                    HAVING count(DISTINCT agency) >= 3) m
                  JOIN gold.nominals n USING (nominal_id) GROUP BY n.oa_code"""
    elif measure == "cohort":
        if not has_table(con, "gold.cohorts"):
            return {}
        where = "WHERE cohort = ?" if cohort else ""
        sql = f"SELECT oa_code, count(*) AS v FROM gold.cohorts {where} GROUP BY oa_code"
        params = [cohort] if cohort else []
    else:  # risk
        if not has_table(con, "gold.scores"):
            return {}
        sql = """SELECT n.oa_code, avg(s.score) AS v FROM gold.scores s
                 JOIN gold.nominals n ON n.nominal_id = s.unit_id
                 WHERE s.unit_type IN ('nominal', 'person')
                 GROUP BY n.oa_code"""
        params = []
    return {r["oa_code"]: float(r["v"]) for r in run(con, sql, params) if r["oa_code"]}


def _precomputed_measure(agg: Aggregates, filters: Filters, measure: str) -> tuple[str, list[Any]]:
    if measure == "events":
        cond, params = agg_tables.where(filters)
        return (
            f"SELECT oa_code, sum(events) AS v FROM gold.demand_by_area WHERE {cond} "
            "GROUP BY oa_code",
            params,
        )
    if measure == "people":
        # per output area (and age band) rows: a nominal counts once per area it has an
        # allowed event in, as count(DISTINCT nominal_id) per event area does
        params = []
        cond = f"oa_code <> '{agg_tables.ALL}' AND mask & {agg.mask(filters)}::UBIGINT <> 0"
        if filters.area:
            cond += " AND (oa_code = ? OR ward_code = ?)"
            params.extend([filters.area, filters.area])
        if filters.age_band:
            cond += " AND age_band = ?"
            params.append(filters.age_band)
        return (
            f"SELECT oa_code, count(DISTINCT nominal_id) AS v FROM gold.demand_nominals "
            f"WHERE {cond} GROUP BY oa_code",
            params,
        )
    units, params, _ = agg_tables.units_sql(agg, filters, "nominal")
    return (
        f"""SELECT n.oa_code, count(*) AS v FROM ({units}) m
            JOIN gold.nominals n ON n.nominal_id = m.unit_id
            WHERE m.agency_count >= 3 GROUP BY n.oa_code""",
        params,
    )


def _area_agencies(
    con: duckdb.DuckDBPyConnection, agg: Aggregates, oa_code: str, filters: Filters
) -> list[dict[str, Any]]:
    """Events and distinct people per agency in one output area, from the aggregates."""
    scoped = Filters(
        age_band=filters.age_band, agencies=filters.agencies, datasets=filters.datasets
    )
    cond, params = agg_tables.where(scoped)
    events = {
        r["agency"]: int(r["events"])
        for r in run(
            con,
            f"SELECT agency, sum(events) AS events FROM gold.demand_by_area "
            f"WHERE oa_code = ? AND {cond} GROUP BY agency",
            [oa_code, *params],
        )
    }
    masks = agg.agency_masks(agg.mask(scoped))
    people: dict[str, int] = {}
    if masks:
        agencies = sorted(masks)
        counts = ", ".join(
            f"count(DISTINCT nominal_id) FILTER (WHERE mask & {masks[a]}::UBIGINT <> 0)"
            for a in agencies
        )
        age = " AND age_band = ?" if filters.age_band else ""
        row = first(
            con.execute(
                f"SELECT {counts} FROM gold.demand_nominals "
                f"WHERE oa_code = ? AND oa_code <> '{agg_tables.ALL}'{age}",
                [oa_code, *([filters.age_band] if filters.age_band else [])],
            )
        )
        people = dict(zip(agencies, (int(v) for v in row or ()), strict=False))
    rows = [{"agency": a, "events": n, "people": people.get(a, 0)} for a, n in events.items() if n]
    return sorted(rows, key=lambda r: (-r["events"], r["agency"]))


def geojson(
    con: duckdb.DuckDBPyConnection, values: dict[str, float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(output areas, wards) as GeoJSON FeatureCollections with each area's value.

    Areas without boundaries are left off the map (they still appear in the table).
    """
    areas, wards, _ = geojson_text(con, values)
    return json.loads(areas), json.loads(wards)


def geojson_text(con: duckdb.DuckDBPyConnection, values: dict[str, float]) -> tuple[str, str, int]:
    """:func:`geojson` as JSON text, and the number of areas with boundaries.

    The boundaries are stored as GeoJSON text already, so they are spliced in as they
    are rather than parsed and written again (thousands of output areas at scale)."""
    features: list[str] = []
    if has_table(con, "reference.output_areas"):
        for oa, ward, name, decile, geometry in con.execute(
            "SELECT oa_code, ward_code, name, imd_decile, geometry FROM reference.output_areas "
            "WHERE geometry IS NOT NULL ORDER BY oa_code"
        ).fetchall():
            properties = {
                "oa_code": oa,
                "ward_code": ward,
                "name": name or oa,
                "imd_decile": decile,
                "value": values.get(oa, 0.0),
            }
            features.append(_feature(properties, geometry))
    ward_features: list[str] = []
    if has_table(con, "reference.wards"):
        for code, name, geometry in con.execute(
            "SELECT ward_code, name, geometry FROM reference.wards WHERE geometry IS NOT NULL"
        ).fetchall():
            ward_features.append(_feature({"ward_code": code, "name": name}, geometry))
    return _collection(features), _collection(ward_features), len(features)


def _feature(properties: dict[str, Any], geometry: str) -> str:
    # ``geometry`` was written by the geography importer with json.dumps: valid JSON
    return (
        '{"type": "Feature", "properties": '
        + json.dumps(properties)
        + ', "geometry": '
        + geometry
        + "}"
    )


def _collection(features: list[str]) -> str:
    return '{"type": "FeatureCollection", "features": [' + ", ".join(features) + "]}"


def area_table(con: duckdb.DuckDBPyConnection, values: dict[str, float]) -> list[dict[str, Any]]:
    """One row per output area (with boundaries or with a value), for the map's table view."""
    rows: dict[str, dict[str, Any]] = {}
    if has_table(con, "reference.output_areas"):
        for oa, ward, name, decile in con.execute(
            "SELECT oa_code, ward_code, name, imd_decile FROM reference.output_areas"
        ).fetchall():
            rows[oa] = {"oa_code": oa, "ward_code": ward, "name": name, "imd_decile": decile}
    for oa in values:
        rows.setdefault(oa, {"oa_code": oa, "ward_code": None, "name": oa, "imd_decile": None})
    for oa, row in rows.items():
        row["value"] = values.get(oa, 0.0)
    return sorted(rows.values(), key=lambda r: (-r["value"], r["oa_code"]))


def area_details(
    con: duckdb.DuckDBPyConnection,
    oa_code: str,
    filters: Filters,
    as_of: date | None = None,
    aggregates: Aggregates | None = None,
) -> dict[str, Any]:
    """What the map's click-through shows: the area, its ward, deprivation and its demand
    (from the pre-aggregated tables when ``aggregates`` are fresh and serve the filters)."""
    info: dict[str, Any] = {"oa_code": oa_code, "ward_code": None, "name": oa_code}
    if has_table(con, "reference.output_areas"):
        found = first(
            con.execute(
                "SELECT ward_code, name, imd_score, imd_decile FROM reference.output_areas "
                "WHERE oa_code = ?",
                [oa_code],
            )
        )
        if found:
            info.update(ward_code=found[0], name=found[1], imd_score=found[2], imd_decile=found[3])
    if has_table(con, "reference.wards") and info.get("ward_code"):
        ward = first(
            con.execute("SELECT name FROM reference.wards WHERE ward_code = ?", [info["ward_code"]])
        )
        info["ward_name"] = ward[0] if ward else None
    info["by_agency"] = []
    if aggregates is not None and aggregates.serves(filters, as_of):
        info["by_agency"] = _area_agencies(con, aggregates, oa_code, filters)
    elif has_table(con, "gold.events"):
        scoped = Filters(
            area=oa_code,
            age_band=filters.age_band,
            agencies=filters.agencies,
            datasets=filters.datasets,
        )
        base, params = scoped_events(con, scoped, as_of)
        info["by_agency"] = run(
            con,
            f"SELECT agency, count(*) AS events, count(DISTINCT nominal_id) AS people "
            f"FROM ({base}) WHERE oa_code = ? GROUP BY agency ORDER BY events DESC, agency",
            [*params, oa_code],
        )
    info["events"] = sum(int(r["events"]) for r in info["by_agency"])
    if has_table(con, "gold.households"):
        row = first(
            con.execute("SELECT count(*) FROM gold.households WHERE oa_code = ?", [oa_code])
        )
        info["households"] = int(row[0]) if row else 0
    return info
