"""Point-in-time correctness: a feature as of T uses only what the hub knew at T."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.engines.lake import Lake, Snapshot
from nominal.insight import features
from nominal.insight.oracle import GOLD_COLUMNS, future_copy

T = date(2023, 10, 31)
T_STAMP = datetime(2023, 10, 31)


def _copy(snapshot: Snapshot, target: Path, changes: dict[str, pa.Table]) -> Snapshot:
    """A new lake with the snapshot's gold/reference tables, some of them replaced."""
    hub = make_home(target).ensure()
    lake = Lake(hub.lake)
    with lake.transaction("copy") as tx:
        for name in GOLD_COLUMNS:
            table = changes.get(name, snapshot.read(name))
            tx.replace(name, [tx.write_arrow(name, table)])
        tx.commit()
    return lake.require_current()


@pytest.fixture(scope="module")
def lakes(oracle_home: Home, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Snapshot]:
    """The same town three ways: only what was known at T; everything; everything plus more."""
    snap = Lake(oracle_home.lake).require_current()
    events = snap.read("gold.events")
    members = snap.read("gold.household_members")
    known = pc.and_(
        pc.less(events["event_date"], pa.scalar(T, pa.date32())),
        pc.less_equal(events["received_at"], pa.scalar(T_STAMP, events["received_at"].type)),
    )
    past_members = members.filter(
        pc.less_equal(members["from_date"], pa.scalar(T, members["from_date"].type))
    ).to_pandas()
    # membership that ended after T was still open at T
    past_members.loc[past_members["to_date"] > pd.Timestamp(T).date(), "to_date"] = None
    past = _copy(
        snap,
        tmp_path_factory.mktemp("past") / "home",
        {
            "gold.events": events.filter(known),
            "gold.household_members": pa.Table.from_pandas(
                past_members, schema=members.schema, preserve_index=False
            ),
        },
    )
    # more future: last year's events again a year later (after T), and events dated
    # before T that only reached the hub after T (late deliveries)
    year_before = events.filter(
        pc.and_(
            pc.greater_equal(events["event_date"], pa.scalar(T - timedelta(days=365), pa.date32())),
            pc.less(events["event_date"], pa.scalar(T, pa.date32())),
        )
    )
    late = year_before.to_pandas()
    late["received_at"] = pd.Timestamp(T_STAMP) + pd.Timedelta(days=1)
    late["record_key"] = "late-" + late["record_key"]
    more = pa.concat_tables(
        [
            events,
            future_copy(year_before, 366),
            pa.Table.from_pandas(late, schema=events.schema, preserve_index=False),
        ]
    )
    future = _copy(snap, tmp_path_factory.mktemp("future") / "home", {"gold.events": more})
    return {"past": past, "full": snap, "future": future}


def _sorted(table: pa.Table, key: str) -> pd.DataFrame:
    return table.to_pandas().sort_values(key).reset_index(drop=True)


def test_no_future_event_changes_a_feature_as_of_t(lakes: dict[str, Snapshot]) -> None:
    past = features.build(lakes["past"], T)
    for name in ("full", "future"):
        other = features.build(lakes[name], T)
        for part, key in (
            ("person", "nominal_id"),
            ("household", "household_id"),
            ("area", "oa_code"),
        ):
            a = _sorted(getattr(past, part), key)
            b = _sorted(getattr(other, part), key)
            assert len(a) > 0
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{name} {part}")


def test_the_comparison_has_teeth(lakes: dict[str, Snapshot]) -> None:
    """A year later the extra events do change features, so the test above can fail."""
    later = T + timedelta(days=400)
    a = _sorted(features.build(lakes["full"], later).household, "household_id")
    b = _sorted(features.build(lakes["future"], later).household, "household_id")
    assert (a["h_events_3y"] != b["h_events_3y"]).sum() > 100


def test_counts_match_the_events(oracle_home: Home) -> None:
    snap = Lake(oracle_home.lake).require_current()
    fs = features.build(snap, T)
    person = fs.person.to_pandas().set_index("nominal_id")
    ev = snap.read("gold.events").to_pandas()
    ev = ev[(ev["event_date"] < T) & (ev["received_at"] <= pd.Timestamp(T_STAMP))]
    recent = ev[ev["event_date"] >= T - timedelta(days=365)]
    police = recent[recent["dataset"] == "police_incidents"].groupby("nominal_id").size()
    busiest = police.sort_values().index[-5:]
    for nominal in busiest:
        assert person.loc[nominal, "p_police_incidents_12m"] == police[nominal]
    agencies = (
        ev[ev["event_date"] >= T - timedelta(days=1095)].groupby("nominal_id")["agency"].nunique()
    )
    sample = agencies.index[:50]
    assert (person.loc[sample, "p_agencies_3y"].to_numpy() == agencies[sample].to_numpy()).all()
    high = (
        ev[
            (ev["dataset"] == "domestic_abuse")
            & ev["attributes"].map(lambda a: json.loads(a).get("dash_risk") == "high")
            & (ev["event_date"] >= T - timedelta(days=1095))
        ]
        .groupby("nominal_id")
        .size()
    )
    assert high.sum() > 0
    assert (person.loc[high.index, "p_da_high_5y"].to_numpy() == high.to_numpy()).all()


def test_age_is_completed_years(oracle_home: Home) -> None:
    snap = Lake(oracle_home.lake).require_current()
    person = features.build(snap, T).person.to_pandas()
    dob = pd.to_datetime(person["date_of_birth"]).dt.date
    expected = [T.year - d.year - ((T.month, T.day) < (d.month, d.day)) for d in dob]
    assert person["p_age"].tolist() == expected
    assert (dob < T).all()  # nobody born after T is a unit as of T


def test_a_history_loaded_in_bulk_is_detected(
    oracle_home: Home, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Feeds backfilled in one load would look empty as of any past date; training notices."""
    snap = Lake(oracle_home.lake).require_current()
    assert not features.backfilled(snap, T)
    events = snap.read("gold.events").to_pandas()
    events["received_at"] = pd.Timestamp("2026-12-01 09:00")
    bulk = _copy(
        snap,
        tmp_path_factory.mktemp("bulk") / "home",
        {
            "gold.events": pa.Table.from_pandas(
                events, schema=snap.read("gold.events").schema, preserve_index=False
            )
        },
    )
    assert features.backfilled(bulk, T)
    waiting = features.build(bulk, T, respect_received=True).household.to_pandas()
    assert waiting["h_events_3y"].sum() == 0
    dated = features.build(bulk, T, respect_received=False).household.to_pandas()
    assert dated["h_events_3y"].sum() > 1000
    # left to itself, the feature build notices the bulk load
    auto = features.build(bulk, T).household.to_pandas()
    pd.testing.assert_frame_equal(auto, dated)


def test_a_period_summary_counts_only_once_the_period_is_over(
    oracle_home: Home, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A school year's attendance, dated at the year's start, says nothing known at T
    until the year is over -- even if a feed delivered it early."""
    snap = Lake(oracle_home.lake).require_current()
    events = snap.read("gold.events").to_pandas()
    running = (
        (events["dataset"] == "school_attendance")
        & (events["event_date"] < T)
        & (events["event_end_date"] >= T)
    )
    assert running.sum() > 100
    early = events.copy()
    early.loc[running, "received_at"] = pd.to_datetime(early.loc[running, "event_date"])
    schema = snap.read("gold.events").schema
    delivered = _copy(
        snap,
        tmp_path_factory.mktemp("early") / "home",
        {"gold.events": pa.Table.from_pandas(early, schema=schema, preserve_index=False)},
    )
    without = _copy(
        snap,
        tmp_path_factory.mktemp("without") / "home",
        {
            "gold.events": pa.Table.from_pandas(
                events[~running], schema=schema, preserve_index=False
            )
        },
    )
    for respect in (True, False):
        a = features.build(delivered, T, respect_received=respect).person.to_pandas()
        b = features.build(without, T, respect_received=respect).person.to_pandas()
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # once the year is over the same records do count
    later = date(T.year + 1, 8, 31)
    a = features.build(delivered, later, respect_received=False).person.to_pandas()
    b = features.build(without, later, respect_received=False).person.to_pandas()
    assert (a["p_absence_rate_5y"] != b["p_absence_rate_5y"]).sum() > 100


def test_a_population_includes_children_no_service_knows(oracle_home: Home) -> None:
    """Units with no recorded event have zero counts, not NULLs that drop them from a
    model's population (a child unknown to services is still a child not on a plan)."""
    from nominal.engines.duck import connect
    from nominal.insight import dataset
    from nominal.insight.specs import SPECS

    snap = Lake(oracle_home.lake).require_current()
    con = connect(
        snap,
        tables=[
            "gold.events",
            "gold.nominals",
            "gold.household_members",
            "gold.households",
            "reference.output_areas",
        ],
    )
    person = features.build(snap, T, con=con).person.to_pandas()
    rows = dataset.unit_rows(con, SPECS["cin_cp_escalation"], T)
    expected = person[(person["p_age"] < 18) & (person["p_on_plan"] == 0)]
    assert set(rows["unit_id"]) == set(expected["nominal_id"])
    assert (expected["p_events_3y"] == 0).sum() > 100


def test_yearly_rates_count_each_domestic_abuse_incident_once(oracle_home: Home) -> None:
    """A household's yearly DA rate is its distinct incidents known before T over the
    years of history, so an incident naming a victim and a suspect of one household
    counts once, and the history runs from the feeds' start to T."""
    from nominal.engines.duck import connect

    as_of = date(2025, 10, 31)
    snapshot = Lake(oracle_home.lake).require_current()
    built = features.build(snapshot, as_of)
    hh = built.household.to_pandas().set_index("household_id")
    con = connect(snapshot, tables=["gold.events", "gold.household_members"])
    firsts = con.execute(
        "SELECT min(event_date) FROM gold.events WHERE event_date < DATE '2025-10-31' "
        "GROUP BY dataset"
    ).fetchall()
    start = features.history_start([r[0] for r in firsts])
    assert start is not None
    years = (as_of - start).days / 365.25
    assert hh["h_history_years"].iloc[0] == pytest.approx(years)
    # households whose DA records outnumber their incidents (victim and suspect both members)
    rows = hh["h_domestic_abuse_per_year"] * years
    incidents = hh["h_da_incidents_per_year"] * years
    assert (incidents <= rows + 1e-9).all()
    assert (incidents < rows - 0.5).any() and (incidents > 0.5).any()
    # a rate is never negative, and no household has more incidents than records
    assert (hh.filter(like="_per_year") >= 0).all().all()
