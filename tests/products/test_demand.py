"""The demand dashboard against the same figures computed independently in pandas
from the gold tables (no shared SQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import duckdb
import pandas as pd
import pytest

from nominal.products import demand
from nominal.products.lakeview import AGE_BANDS, Filters, ProductsError, as_of_date


@pytest.fixture
def frames(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    events = con.execute("SELECT * FROM gold.events").df()
    nominals = con.execute("SELECT * FROM gold.nominals").df()
    areas = con.execute("SELECT oa_code, ward_code FROM reference.output_areas").df()
    for col in ("event_date", "event_end_date"):
        events[col] = pd.to_datetime(events[col]).dt.date
    return events, nominals, areas


def _age(dob: pd.Timestamp, on: date) -> int:
    d = dob.date()
    return on.year - d.year - ((on.month, on.day) < (d.month, d.day))


def test_volumes_add_up_to_every_event(con: duckdb.DuckDBPyConnection, frames) -> None:  # type: ignore[no-untyped-def]
    events, _, _ = frames
    v = demand.volumes(con, Filters())
    assert v.total == len(events)
    assert {r["agency"]: r["events"] for r in v.by_agency} == events.groupby(
        "agency"
    ).size().to_dict()
    assert sum(r["events"] for r in v.by_month) == len(events)
    assert sum(r["events"] for r in v.by_area) == len(events)
    types = events.groupby(["agency", "event_type"]).size().to_dict()
    assert {(r["agency"], r["event_type"]): r["events"] for r in v.by_event_type} == types


def test_filters_by_agency_area_and_age(con: duckdb.DuckDBPyConnection, frames) -> None:  # type: ignore[no-untyped-def]
    events, nominals, areas = frames
    as_of = as_of_date(con)
    ward = areas["ward_code"].iloc[0]
    in_ward = set(areas.loc[areas["ward_code"] == ward, "oa_code"])
    dob = nominals.set_index("nominal_id")["date_of_birth"]
    ages = events["nominal_id"].map(lambda n: _age(dob[n], as_of))
    low, high = AGE_BANDS["0-17"]
    expected = events[
        events["oa_code"].isin(in_ward)
        & (ages >= low)
        & (ages <= high)
        & (events["agency"] == "police")
    ]
    got = demand.volumes(con, Filters(area=ward, age_band="0-17", agencies=("police",)))
    assert got.total == len(expected) > 0
    one_oa = sorted(in_ward)[0]
    assert demand.volumes(con, Filters(area=one_oa)).total == int(
        (events["oa_code"] == one_oa).sum()
    )


def test_datasets_not_shared_are_never_counted(con: duckdb.DuckDBPyConnection, frames) -> None:  # type: ignore[no-untyped-def]
    events, _, _ = frames
    shared = ("crimes", "domestic_abuse")
    v = demand.volumes(con, Filters(datasets=shared))
    assert v.total == int(events["dataset"].isin(shared).sum())
    assert {r["agency"] for r in v.by_agency} == {"police"}
    assert demand.volumes(con, Filters(datasets=())).total == 0


def test_known_to_three_or_more_agencies(con: duckdb.DuckDBPyConnection, frames) -> None:  # type: ignore[no-untyped-def]
    events, _, _ = frames
    per_person = events.groupby("nominal_id")["agency"].nunique()
    per_household = events.groupby("household_id")["agency"].nunique()
    total, top = demand.known_to_many(con, Filters(), "nominal", limit=10)
    assert total == int((per_person >= 3).sum())
    assert top[0]["agency_count"] == per_person.max()
    hh_total, _ = demand.known_to_many(con, Filters(), "household")
    assert hh_total == int((per_household >= 3).sum())


def test_duplicate_interventions_match_an_independent_interval_check(
    con: duckdb.DuckDBPyConnection,
    frames,  # type: ignore[no-untyped-def]
) -> None:
    events, _, _ = frames
    as_of = as_of_date(con)
    iv = events[events["event_type"].isin(demand.INTERVENTION_EVENT_TYPES)]
    since: dict[str, dict[str, date]] = defaultdict(dict)
    for row in iv.itertuples():
        end = row.event_end_date if not pd.isna(row.event_end_date) else None
        still_open = (end is None and row.event_status != "closed") or (
            end is not None and end > as_of
        )
        if row.event_date <= as_of and still_open:
            prev = since[row.nominal_id].get(row.agency)
            since[row.nominal_id][row.agency] = (
                min(prev, row.event_date) if prev else row.event_date
            )
    expected = {n: a for n, a in since.items() if len(a) >= 2}
    total, rows = demand.duplicate_interventions(con, Filters(), "nominal", as_of)
    assert total == len(expected) > 0, "the synthetic town should have some overlapping involvement"
    for row in rows:
        agencies = expected[row["unit_id"]]
        assert {i["agency"]: i["since"] for i in row["involvements"]} == agencies
        assert row["overlap_since"] == max(agencies.values())
        assert row["days_overlapping"] == (as_of - max(agencies.values())).days
    # On a day before every involvement began there is no overlap at all.
    assert demand.duplicate_interventions(con, Filters(), "nominal", date(2000, 1, 1))[0] == 0


def test_household_duplicates_include_every_person_level_one(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _, people = demand.duplicate_interventions(con, Filters(), "nominal")
    _, households = demand.duplicate_interventions(con, Filters(), "household")
    hh = {r["unit_id"] for r in households}
    person_households = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT household_id FROM gold.events WHERE nominal_id IN (SELECT unnest(?))",
            [[p["unit_id"] for p in people]],
        ).fetchall()
    }
    # Each overlapping person's household overlaps too (events carry the household at the time).
    assert len(hh) >= 1 and len(person_households & hh) >= 1


def test_unknown_age_band_is_a_clear_error() -> None:
    with pytest.raises(ProductsError, match="unknown age band"):
        Filters(age_band="teen")


def test_dashboard_summary(con: duckdb.DuckDBPyConnection) -> None:
    board = demand.dashboard(con, Filters())
    summary = board.summary()
    assert summary["events"] == board.volumes.total
    assert summary["people_with_duplicate_interventions"] == board.duplicates_people
