"""Benefits realisation, system usage and the map's measures."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.audit import audit_log
from nominal.products import areas, benefits, usage
from nominal.products.lakeview import Filters, ProductsError


def test_shipped_unit_costs_load_and_name_their_source() -> None:
    costs = benefits.load_unit_costs()
    assert set(costs) == set(benefits.ALL_MEASURES)
    assert all(c.source and c.unit_cost_gbp > 0 for c in costs.values())


def test_bad_unit_cost_rows_name_file_row_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "costs.csv"
    bad.write_text(
        "measure,label,unit,unit_cost_gbp,price_year,target_change_pct,source\n"
        "asb,ASB,incident,740,2024,-15,x\n"
        "offending,Offences,offence,lots,2024,-15,x\n"
    )
    with pytest.raises(ProductsError, match=r"costs.csv: row 3: field unit_cost_gbp"):
        benefits.load_unit_costs(bad)
    bad.write_text("measure,label\nasb,ASB\n")
    with pytest.raises(ProductsError, match=r"row 1 \(header\): missing column"):
        benefits.load_unit_costs(bad)


def test_before_and_after_counts_and_confidence_intervals(con: duckdb.DuckDBPyConnection) -> None:
    result = benefits.realise(con)
    assert result.worked > 0 and 0 < result.with_followup <= result.worked
    assert result.matched == result.with_followup
    families = benefits.worked_families(con)
    eligible = families[families["start"].map(lambda s: s + timedelta(days=365) <= result.as_of)]
    # Recount one measure per family with plain SQL and recompute the t interval.
    changes = []
    for row in eligible.itertuples():
        before, after = con.execute(
            """SELECT count(*) FILTER (WHERE event_date::DATE < ?), count(*) FILTER (WHERE event_date::DATE >= ?)
               FROM gold.events WHERE household_id = ? AND dataset = 'domestic_abuse'
                 AND event_date::DATE >= ? - INTERVAL 365 DAY AND event_date::DATE < ? + INTERVAL 365 DAY""",
            [row.start, row.start, row.unit_id, row.start, row.start],
        ).fetchall()[0]
        changes.append(after - before)
    da = next(m for m in result.measures if m.measure == "domestic_abuse")
    values = np.array(changes[: da.families], dtype=float)
    assert da.change[0] == pytest.approx(values.mean())
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    assert da.change[1] == pytest.approx(values.mean() - half)
    assert da.effect is not None and da.rag in ("green", "amber", "red")
    if da.saving_gbp is not None and da.unit_cost is not None:
        assert da.saving_gbp == pytest.approx(
            -da.effect[0] * da.families * da.unit_cost.unit_cost_gbp
        )


def test_rag_rules() -> None:
    cost = benefits.UnitCost("asb", "ASB", "incident", 100, 2024, -10, "x")
    assert benefits.rag((-2.0, -3.0, -1.0), 10.0, cost) == "green"
    assert benefits.rag((-2.0, -5.0, 1.0), 10.0, cost) == "amber"  # CI includes no change
    assert benefits.rag((-0.5, -0.9, -0.1), 10.0, cost) == "amber"  # short of the target
    assert benefits.rag((1.0, 0.5, 1.5), 10.0, cost) == "red"


def test_usage_by_partner_role_and_week(hub_home: Home) -> None:
    control = ControlPlane(hub_home.database_url)
    try:
        log = audit_log(control, hub_home)
        now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday
        log.record("sign_in", "allowed", username="ana", at=now)
        log.record("sign_in", "denied", username="ana", at=now)
        log.record("search", "allowed", username="pat", at=now - timedelta(days=7))
        log.record("workbench_query", "allowed", username="ana", at=now)
        log.record("read", "allowed", username="ana", at=now)
        log.record("anchor", "allowed", username="system", at=now)
        with control.session() as s:
            rows = usage.usage(s, now=now + timedelta(hours=1))
        by = {(r.week, r.kind): (r.allowed, r.denied) for r in rows}
        monday = date(2026, 11, 23)
        assert by[(monday, "sign-ins")] == (1, 1)
        assert by[(monday - timedelta(days=7), "searches")] == (1, 0)
        assert by[(monday, "queries")] == (1, 0) and by[(monday, "views")] == (1, 0)
        assert all(r.kind in usage.KINDS for r in rows)
        weeks = usage.totals(rows, "week")
        assert weeks[monday.isoformat()]["sign-ins"] == 1
    finally:
        control.dispose()


def test_area_measures_and_geojson(con: duckdb.DuckDBPyConnection) -> None:
    values = areas.area_measure(con, Filters(), "events")
    expected = dict(con.execute("SELECT oa_code, count(*) FROM gold.events GROUP BY 1").fetchall())
    assert values == {k: float(v) for k, v in expected.items() if k}
    oas, wards = areas.geojson(con, values)
    n_oa = con.execute("SELECT count(*) FROM reference.output_areas").fetchall()[0][0]
    assert len(oas["features"]) == n_oa and wards["features"]
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in oas["features"])
    detail = areas.area_details(con, oas["features"][0]["properties"]["oa_code"], Filters())
    assert detail["events"] == values[detail["oa_code"]] and detail["ward_name"]
    assert areas.area_measure(con, Filters(), "cohort") == {}
    with pytest.raises(ProductsError, match="unknown measure"):
        areas.area_measure(con, Filters(), "vibes")
