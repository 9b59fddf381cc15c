"""The pre-aggregated demand tables give exactly the figures computed directly from the
events, for every kind of filter, and are set aside as soon as their inputs change."""

from __future__ import annotations

import itertools
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.pipeline.stages import plan, stages
from nominal.products import aggregates, areas, demand
from nominal.products.aggregates import Aggregates
from nominal.products.lakeview import Filters, open_snapshot


@pytest.fixture
def agg(con: duckdb.DuckDBPyConnection, gold_home: Home) -> Aggregates:
    found = Aggregates.load(con, Lake(gold_home.lake).require_current())
    assert found is not None, "the products' gold home should have fresh aggregates"
    return found


def _filters(con: duckdb.DuckDBPyConnection) -> list[Filters]:
    """Areas (a ward, an output area of another ward), age bands, agencies and dataset
    sets (all, a mix of agencies, none) in combination."""
    ward, oa = con.execute(
        "SELECT w.ward_code, o.oa_code FROM reference.output_areas w, reference.output_areas o "
        "WHERE w.ward_code <> o.ward_code ORDER BY 1, 2 LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    mixed = tuple(
        r[0]
        for r in con.execute(
            "SELECT min(dataset) FROM gold.events GROUP BY agency ORDER BY 1 LIMIT 4"
        ).fetchall()
    )
    combos = itertools.product(
        (None, ward, oa), (None, "0-17", "25-44", "65+"), ((), ("police",)), (None, mixed)
    )
    out = [
        Filters(area=a, age_band=b, agencies=g, datasets=d)
        for i, (a, b, g, d) in enumerate(combos)
        if i % 3 == 0 or (g == () and d is None)  # every unrestricted one, a third of the rest
    ]
    return [*out, Filters(datasets=()), Filters(datasets=mixed, area=ward, age_band="0-17")]


def _same(direct: demand.Dashboard, fast: demand.Dashboard) -> None:
    assert fast.precomputed and not direct.precomputed
    assert fast.as_of == direct.as_of
    assert fast.summary() | {"precomputed": None} == direct.summary() | {"precomputed": None}
    v, w = direct.volumes, fast.volumes

    def rows(x: list[dict]) -> list[tuple]:  # type: ignore[type-arg]
        return sorted(tuple(sorted((k, str(val)) for k, val in r.items())) for r in x)

    for part in ("by_agency", "by_event_type", "by_month", "by_area"):
        assert rows(getattr(w, part)) == rows(getattr(v, part)), part
    assert fast.top_people == direct.top_people
    assert fast.duplicates == direct.duplicates
    assert fast.household_duplicates == direct.household_duplicates


def test_every_dashboard_figure_equals_the_direct_computation(
    con: duckdb.DuckDBPyConnection, agg: Aggregates
) -> None:
    seen_nonzero = {"people": 0, "households": 0, "dups": 0, "filtered": 0}
    for filters in _filters(con):
        direct = demand.dashboard(con, filters)
        fast = demand.dashboard(con, filters, aggregates=agg)
        _same(direct, fast)
        seen_nonzero["people"] += direct.people_3plus > 0
        seen_nonzero["households"] += direct.households_3plus > 0
        seen_nonzero["dups"] += direct.duplicates_people > 0
        seen_nonzero["filtered"] += bool(filters.area and filters.age_band and direct.volumes.total)
    # the comparison is not vacuous: the filters leave figures to compare
    assert all(n >= 2 for n in seen_nonzero.values()), seen_nonzero


def test_map_measures_equal_the_direct_computation(
    con: duckdb.DuckDBPyConnection, agg: Aggregates
) -> None:
    for filters in _filters(con)[::3]:
        for measure in ("events", "people", "multi_agency"):
            direct = areas.area_measure(con, filters, measure)
            fast = areas.area_measure(con, filters, measure, aggregates=agg)
            assert fast == direct, (measure, filters)
    assert sum(areas.area_measure(con, Filters(), "multi_agency", aggregates=agg).values()) > 0
    # the map's click-through: events and people per agency in one output area
    busiest = con.execute(
        "SELECT oa_code FROM gold.events GROUP BY 1 ORDER BY count(*) DESC LIMIT 2"
    ).fetchall()
    for (oa,) in busiest:
        for filters in (Filters(), *_filters(con)[1::7]):
            direct = areas.area_details(con, oa, filters)
            fast = areas.area_details(con, oa, filters, aggregates=agg)
            assert fast == direct, (oa, filters)
        assert areas.area_details(con, oa, Filters(), aggregates=agg)["events"] > 0


def test_other_days_and_date_ranges_are_computed_directly(
    con: duckdb.DuckDBPyConnection, agg: Aggregates
) -> None:
    assert not agg.serves(Filters(start=date(2024, 1, 1)), None)
    board = demand.dashboard(con, Filters(), as_of=date(2000, 1, 1), aggregates=agg)
    assert not board.precomputed and board.duplicates_people == 0
    assert demand.duplicate_interventions(
        con, Filters(), "nominal", date(2000, 1, 1), aggregates=agg
    ) == (0, [])


def test_aggregates_go_stale_when_the_events_change_and_rebuild(
    gold_home: Home, tmp_path: Path
) -> None:
    copy = make_home(tmp_path / "home")
    shutil.copytree(gold_home.root, copy.root, dirs_exist_ok=True)
    hub = copy.ensure()
    lake = Lake(hub.lake)
    con, snapshot = open_snapshot(hub)
    assert Aggregates.load(con, snapshot) is not None
    dropped = con.execute(
        "SELECT dataset FROM gold.events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    before = demand.dashboard(con, Filters(), aggregates=Aggregates.load(con, snapshot))
    con.close()
    # a later run rewrites gold.events (as a re-link or an erasure would)
    with lake.transaction("drop a dataset") as tx:
        reader = duck.connect(tx.base, threads=1, memory_limit="1GB")  # type: ignore[arg-type]
        path = tx.new_file("gold.events")
        reader.execute(
            f"COPY (SELECT * FROM gold.events WHERE dataset <> ?) TO '{path}' (FORMAT parquet)",
            [dropped],
        )
        reader.close()
        tx.replace("gold.events", [path])
        tx.commit({})
    con, snapshot = open_snapshot(hub)
    assert Aggregates.load(con, snapshot) is None  # stale: the page computes directly
    direct = demand.dashboard(con, Filters(), aggregates=None)
    assert direct.volumes.total < before.volumes.total
    con.close()
    aggregates.build(hub)
    con, snapshot = open_snapshot(hub)
    fresh = Aggregates.load(con, snapshot)
    assert fresh is not None and dropped not in fresh.datasets
    _same(direct, demand.dashboard(con, Filters(), aggregates=fresh))
    con.close()


def test_the_pipeline_builds_them_after_linking() -> None:
    stage = stages()["products"]
    assert set(stage.outputs) == set(aggregates.TABLES)
    assert [s.name for s in plan(["link", "products"])] == ["link", "products"]
