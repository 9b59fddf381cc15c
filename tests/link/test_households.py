"""Households keep their ids across link runs; merges and splits leave lineage.

A hand-made street (so every household is known in advance), linked with the shared
trained model through real link runs:

- 1 Acacia Avenue: the Smiths (2010-2012, then they move to 9 Elm Road) and later the
  Joneses (from 2016): two households at one address;
- run 2 adds a lodger who lived with the Smiths from 2009 -- the Smiths' household
  starts earlier but keeps its id;
- run 3 adds a person recorded at Acacia Avenue in 2011 and still there: the two
  households become one (one id kept, the other merged and forwarded);
- run 4 withdraws that person's records: the household splits again (the kept id
  stays with one part, the other part gets a new id recorded as a split).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import nominal.link
from nominal.config import Home
from nominal.link.pipeline import link_lake, table_rows

from .conftest import new_home
from .silver_from_synth import EVENT_SCHEMA, IDENTITY_SCHEMA, write_silver

ACACIA = ("1 Acacia Avenue", "AB1 2CD")
ELM = ("9 Elm Road", "AB3 4EF")
HOLLY = ("4 Holly Lane", "AB5 6GH")

# key: (given, family, dob, sex, address, [event dates])
PEOPLE: dict[str, tuple[str, str, str, str, tuple[str, str], list[str]]] = {
    "alice-1": ("Alice", "Smith", "1970-03-14", "F", ACACIA, ["2010-01-10", "2012-06-01"]),
    "alice-2": ("Alice", "Smith", "1970-03-14", "F", ELM, ["2015-02-01", "2019-05-05"]),
    "bob-1": ("Robert", "Smith", "1968-11-02", "M", ACACIA, ["2010-02-01", "2012-05-20"]),
    "bob-2": ("Robert", "Smith", "1968-11-02", "M", ELM, ["2015-03-01"]),
    "carol-1": ("Carol", "Jones", "1981-07-23", "F", ACACIA, ["2016-04-01", "2020-01-01"]),
    "dan-1": ("Daniel", "Jones", "2005-09-30", "M", ACACIA, ["2016-04-02", "2021-03-03"]),
}
LODGER = {
    "eve-1": ("Evelyn", "Okafor", "1990-01-05", "F", ACACIA, ["2009-06-01", "2011-01-01"]),
    "eve-2": ("Evelyn", "Okafor", "1990-01-05", "F", HOLLY, ["2013-01-01"]),
}
BRIDGE = {
    "frank-1": ("Francis", "Mbeki", "1975-12-12", "M", ACACIA, ["2011-08-01", "2018-08-01"]),
}


def _silver(people: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
    received = datetime(2024, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    identity, events = [], []
    for key, (given, family, dob, sex, (line, postcode), dates) in sorted(people.items()):
        identity.append(
            {
                "record_key": f"hh:{key}",
                "dataset": "housing",
                "feed": "housing",
                "partner": "council",
                "agency": "council",
                "received_at": received,
                "source_record_id": key,
                "given_name": given,
                "family_name": family,
                "date_of_birth": date.fromisoformat(dob),
                "sex": sex,
                "address_line_1": line,
                "town": "Exampleton",
                "postcode": postcode,
            }
        )
        for i, day in enumerate(dates):
            events.append(
                {
                    "record_key": f"hh:{key}",
                    "event_key": f"hh:{key}:{i}",
                    "dataset": "housing",
                    "feed": "housing",
                    "partner": "council",
                    "agency": "council",
                    "received_at": received,
                    "event_type": "tenancy",
                    "event_date": date.fromisoformat(day),
                }
            )
    return (
        pa.Table.from_pylist(identity, schema=IDENTITY_SCHEMA),
        pa.Table.from_pylist(events, schema=EVENT_SCHEMA),
    )


def _households(home: Home) -> dict[str, tuple[str, frozenset[str]]]:
    """household_id -> (first address line, the people who are its members)."""
    people = {
        r["nominal_id"]: r["source_record_id"].split("-")[0]
        for r in table_rows(home, "gold.nominal_records")
    }
    members: dict[str, set[str]] = {}
    for row in table_rows(home, "gold.household_members"):
        members.setdefault(row["household_id"], set()).add(people[row["nominal_id"]])
    return {
        r["household_id"]: (r["address_line_1"], frozenset(members[r["household_id"]]))
        for r in table_rows(home, "gold.households")
    }


def _id(households: dict[str, tuple[str, frozenset[str]]], line: str, *people: str) -> str:
    """The id of the household at ``line`` whose members are ``people``."""
    found = [h for h, (at, m) in households.items() if at == line and m == frozenset(people)]
    assert len(found) == 1, (line, people, households)
    return found[0]


def _lineage(home: Home) -> list[tuple[str, str | None, str | None]]:
    return sorted(
        (r["kind"], r["from_household_id"], r["to_household_id"])
        for r in table_rows(home, "gold.household_lineage")
    )


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_household_ids_are_stable_and_changes_have_lineage(
    model_dir: Path, tmp_path: Path, mode: str
) -> None:
    home = new_home(tmp_path / "home", model_dir)
    write_silver(home, *_silver(PEOPLE))
    link_lake(home, mode="full")
    first = _households(home)
    acacia, elm, holly = ACACIA[0], ELM[0], HOLLY[0]
    smiths_acacia = _id(first, acacia, "alice", "bob")
    joneses = _id(first, acacia, "carol", "dan")
    smiths_elm = _id(first, elm, "alice", "bob")
    assert len(first) == 3
    assert _lineage(home) == sorted(("created", None, h) for h in first)

    # Re-running changes nothing.
    link_lake(home, mode=mode)
    assert _households(home) == first

    # A lodger from before the Smiths arrived: same household, same id, one more member.
    write_silver(home, *_silver(PEOPLE | LODGER))
    link_lake(home, mode=mode)
    second = _households(home)
    assert _id(second, acacia, "alice", "bob", "eve") == smiths_acacia
    assert _id(second, acacia, "carol", "dan") == joneses
    assert _id(second, elm, "alice", "bob") == smiths_elm
    created = {h for k, _f, h in _lineage(home) if k == "created"}
    assert created == set(first) | {_id(second, holly, "eve")}

    # Someone at Acacia Avenue from 2011 to now bridges the two: one household.
    write_silver(home, *_silver(PEOPLE | LODGER | BRIDGE))
    link_lake(home, mode=mode)
    third = _households(home)
    merged = _id(third, acacia, "alice", "bob", "eve", "carol", "dan", "frank")
    assert merged in {smiths_acacia, joneses}
    gone = ({smiths_acacia, joneses} - {merged}).pop()
    assert gone not in third
    assert ("merged", gone, merged) in _lineage(home)
    assert ("forwarded", gone, merged) in _lineage(home)
    assert nominal.link.resolve_household(gone, home) == merged
    assert nominal.link.resolve_household(merged, home) == merged
    # nominals and events point at live households only
    live = set(third)
    assert {r["household_id"] for r in table_rows(home, "gold.nominals")} <= live | {None}
    assert {r["household_id"] for r in table_rows(home, "gold.events")} <= live | {None}

    # That person's records are withdrawn: the household splits again; the kept id
    # stays with one part, the other part is a new household split from it.
    write_silver(home, *_silver(PEOPLE | LODGER))
    link_lake(home, mode=mode)
    fourth = _households(home)
    parts = {_id(fourth, acacia, "alice", "bob", "eve"), _id(fourth, acacia, "carol", "dan")}
    assert merged in parts
    other = (parts - {merged}).pop()
    assert other not in {smiths_acacia, joneses}  # a retired id is never reused
    assert ("split", merged, other) in _lineage(home)
    assert _id(fourth, elm, "alice", "bob") == smiths_elm  # untouched elsewhere


def test_nothing_is_carried_over_on_a_first_run(model_dir: Path, tmp_path: Path) -> None:
    home = new_home(tmp_path / "home", model_dir)
    write_silver(home, *_silver(PEOPLE))
    link_lake(home, mode="full")
    assert nominal.link.resolve_household("Hnot-a-household", home) is None
    kinds = {k for k, _f, _t in _lineage(home)}
    assert kinds == {"created"}
