"""Joint tasking and pathways on SQLite and PostgreSQL, with nominals and households
that are merged and split by later link runs (real gold.nominal_lineage and
gold.household_lineage tables in a real lake)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.insight.scoring import COHORT_SCHEMA
from nominal.products import pathways, tasking
from nominal.products.demand import duplicate_interventions
from nominal.products.lakeview import Filters
from nominal.products.lineage import Lineage
from nominal.products.models import EnrolmentStep, Task


@pytest.fixture
def relinked(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A lake where p1 was merged into p2, p3 was split into p3 and p4 (p3 keeps its
    id), p5 forwarded to p6 which was later merged into p7, and p9 was erased; and the
    same for households h1..h9."""
    home = make_home(tmp_path / "lineage-home").ensure()
    lake = Lake(home.lake)
    live = ["p2", "p3", "p4", "p7", "p8"]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    lineage = pa.table(
        {
            "change_id": ["c1", "c2", "c3", "c4", "c5"],
            "run_id": ["r2", "r2", "r2", "r3", "r3"],
            "kind": ["merged", "forwarded", "split", "forwarded", "forwarded"],
            "from_nominal_id": ["p1", "p1", "p3", "p5", "p6"],
            "to_nominal_id": ["p2", "p2", "p4", "p6", "p7"],
            "changed_at": [at, at, at, at, at + timedelta(days=1)],
        }
    )
    cohorts = pa.Table.from_pylist(
        [
            {
                "cohort": "top-risk",
                "title": "Top risk",
                "rule": "top k",
                "model": "m",
                "model_version": "1",
                "as_of": date(2026, 1, 1),
                "capacity": 3,
                "size": 3,
                "rank": i + 1,
                "unit_type": "nominal",
                "unit_id": uid,
                "unit_pseudo": f"x{uid}",
                "oa_code": "E00000001",
                "score": 0.9 - i / 10,
                "reasons": "[]",
            }
            for i, uid in enumerate(["p2", "p3", "p8"])
        ],
        schema=COHORT_SCHEMA,
    )
    households = pa.table(
        {
            "change_id": ["hc1", "hc2", "hc3", "hc4", "hc5", "hc6"],
            "run_id": ["r2", "r2", "r2", "r3", "r3", "r3"],
            "kind": ["merged", "forwarded", "split", "forwarded", "forwarded", "created"],
            "from_household_id": ["h1", "h1", "h3", "h5", "h6", None],
            "to_household_id": ["h2", "h2", "h4", "h6", "h7", "h8"],
            "changed_at": [at, at, at, at, at + timedelta(days=1), at],
        }
    )
    with lake.transaction("test") as tx:
        tx.replace(
            "gold.nominals", [tx.write_arrow("gold.nominals", pa.table({"nominal_id": live}))]
        )
        tx.replace("gold.nominal_lineage", [tx.write_arrow("gold.nominal_lineage", lineage)])
        tx.replace(
            "gold.households",
            [
                tx.write_arrow(
                    "gold.households",
                    pa.table({"household_id": [h.replace("p", "h") for h in live]}),
                )
            ],
        )
        tx.replace(
            "gold.household_lineage",
            [tx.write_arrow("gold.household_lineage", households)],
        )
        tx.replace("gold.cohorts", [tx.write_arrow("gold.cohorts", cohorts)])
        tx.commit({})
    return duck.connect(lake.require_current())


def test_lineage_follows_merges_and_chains(relinked: duckdb.DuckDBPyConnection) -> None:
    lin = Lineage.load(relinked)
    assert lin.resolve("p1") == "p2"
    assert lin.resolve("p3") == "p3"  # a split keeps the original id live
    assert lin.resolve("p5") == "p7"  # forwarded twice
    assert lin.resolve("p9") is None  # erased: no successor
    assert lin.aliases("p7") == {"p5", "p6", "p7"}


def test_tasks_survive_merges_and_splits(
    control: ControlPlane, relinked: duckdb.DuckDBPyConnection
) -> None:
    lin = Lineage.load(relinked)
    with control.session() as s:
        team = tasking.add_team(s, "police-nht", "Neighbourhood team", "POLICE")
        tasking.add_team(s, "eh", "Early help", "COUNCIL")
        tasking.create_task(
            s, unit_type="nominal", unit_id="p1", title="Visit", team=team, created_by="pat"
        )
        tasking.create_task(
            s,
            unit_type="nominal",
            unit_id="p5",
            title="Call",
            team="eh",
            created_by="pat",
            priority="urgent",
        )
        tasking.create_task(
            s, unit_type="nominal", unit_id="p3", title="Check", team=team, created_by="pat"
        )
    with control.session() as s:
        items = tasking.queue(s, lin)
        assert items[0].task.priority == "urgent"
        live = {i.task.unit_id: i.live_unit_id for i in items}
        assert live == {"p1": "p2", "p5": "p7", "p3": "p3"}
        # Tasks about the person now known as p2 include the one raised against p1.
        assert [i.task.title for i in tasking.queue(s, lin, unit_id="p2")] == ["Visit"]
        assert [i.task.title for i in tasking.queue(s, lin, team="eh")] == ["Call"]
        # The stored id is never rewritten: the history still shows p1.
        assert s.scalar(sa.select(Task.unit_id).where(Task.title == "Visit")) == "p1"


def test_household_lineage_follows_merges_splits_and_chains(
    relinked: duckdb.DuckDBPyConnection,
) -> None:
    lin = Lineage.load(relinked)
    assert lin.resolve("h1", "household") == "h2"
    assert lin.resolve("h3", "household") == "h3"
    assert lin.resolve("h4", "household") == "h4"
    assert lin.resolve("h5", "household") == "h7"
    assert lin.resolve("h9", "household") is None  # gone without a successor
    assert lin.aliases("h7", "household") == {"h5", "h6", "h7"}
    # the two kinds of unit never mix
    assert lin.resolve("h1") is None and lin.resolve("p1", "household") is None


def test_household_tasks_and_pathways_follow_household_relinking(
    control: ControlPlane, relinked: duckdb.DuckDBPyConnection
) -> None:
    lin = Lineage.load(relinked)
    start = date(2026, 1, 5)
    with control.session() as s:
        team = tasking.add_team(s, "eh", "Early help", "COUNCIL")
        pathways.install_examples(s, escalation_team=team)
        for unit_id, title in (("h1", "Family visit"), ("h5", "Family call"), ("h3", "Check")):
            tasking.create_task(
                s, unit_type="household", unit_id=unit_id, title=title, team=team, created_by="pat"
            )
        tasking.create_task(
            s, unit_type="household", unit_id="h9", title="Old", team=team, created_by="pat"
        )
        # a nominal task under an id that is also a household's never mixes in
        tasking.create_task(
            s, unit_type="nominal", unit_id="p2", title="Person", team=team, created_by="pat"
        )
        enrolment = pathways.enrol(s, "early-help-family", "h1", by="pat", started_on=start)
        assert enrolment.unit_type == "household"
    with control.session() as s:
        live = {
            i.task.unit_id: i.live_unit_id
            for i in tasking.queue(s, lin)
            if i.task.unit_type == "household"
        }
        assert live == {"h1": "h2", "h5": "h7", "h3": "h3", "h9": None}
        merged = tasking.queue(s, lin, unit_id="h2", unit_type="household")
        assert [i.task.title for i in merged] == ["Family visit"]
        assert [
            i.task.title for i in tasking.queue(s, lin, unit_id="h7", unit_type="household")
        ] == ["Family call"]
        # the split-off household h4 does not take over the tasks of h3, which lives on
        assert tasking.queue(s, lin, unit_id="h4", unit_type="household") == []
        status = pathways.compliance(s, lin, today=start, unit_id="h2", unit_type="household")
        assert len(status) == 1 and status[0].live_unit_id == "h2"
        assert status[0].enrolment.unit_id == "h1"  # the stored id is never rewritten
        # the meeting view lists the merged household's work under its live id
        cases = tasking.meeting_view(s, relinked_events(relinked), lin)
        ids = {(c["unit_type"], c["unit_id"]) for c in cases}
        assert ("household", "h2") in ids and ("household", "h1") not in ids
        assert ("household", "h7") in ids and ("nominal", "p2") in ids


def relinked_events(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The relinked lake with an (empty) gold.events, as the meeting view reads it."""
    con.execute(
        """CREATE SCHEMA IF NOT EXISTS gold;
           CREATE OR REPLACE VIEW gold.events AS SELECT
             NULL::VARCHAR AS nominal_id, NULL::VARCHAR AS nominal_pseudo,
             NULL::VARCHAR AS household_id, NULL::VARCHAR AS household_pseudo,
             NULL::VARCHAR AS dataset, NULL::VARCHAR AS agency, NULL::VARCHAR AS event_type,
             NULL::DATE AS event_date, NULL::DATE AS event_end_date,
             NULL::VARCHAR AS event_status WHERE FALSE"""
    )
    return con


def test_task_lifecycle_and_validation(control: ControlPlane) -> None:
    with control.session() as s:
        team = tasking.add_team(s, "fire", "Prevention", "FIRE")
        other = tasking.add_team(s, "hsg", "Housing", "COUNCIL")
        task = tasking.create_task(
            s,
            unit_type="household",
            unit_id="h1",
            title="Fire safety visit",
            team=team,
            created_by="pat",
            note="Smoke alarm missing",
        )
        with pytest.raises(tasking.TaskingError, match="outcome"):
            tasking.update_task(s, task, by="pat", status="done")
        tasking.update_task(
            s, task, by="pat", status="in_progress", team=other, note="Housing lead"
        )
        tasking.update_task(s, task, by="pat", status="done", outcome="Alarms fitted")
        assert task.status == "done" and task.closed_at is not None and task.team.code == "hsg"
        texts = [n.text for n in task.notes]
        assert texts[0] == "Smoke alarm missing"
        assert "status open → in_progress" in texts[1] and "reassigned to Housing" in texts[1]
        assert "outcome recorded" in texts[2]
        for bad in (
            {"unit_type": "street"},
            {"kind": "memo"},
            {"priority": "asap"},
            {"title": " "},
        ):
            args = {
                "unit_type": "nominal",
                "unit_id": "p1",
                "title": "t",
                "team": team,
                "created_by": "pat",
                **bad,
            }
            with pytest.raises(tasking.TaskingError):
                tasking.create_task(s, **args)  # type: ignore[arg-type]
        with pytest.raises(tasking.TaskingError, match="unknown team"):
            tasking.create_task(
                s, unit_type="nominal", unit_id="p1", title="t", team="nope", created_by="x"
            )
    with control.session() as s, pytest.raises(sa.exc.IntegrityError):
        # The database itself refuses a status the application would never write.
        s.execute(sa.text("UPDATE product_tasks SET status = 'lost'"))


def test_tasks_from_a_cohort_once(
    control: ControlPlane, relinked: duckdb.DuckDBPyConnection
) -> None:
    with control.session() as s:
        tasking.add_team(s, "eh", "Early help", "COUNCIL")
        made = tasking.tasks_from_cohort(
            s, relinked, "top-risk", team="eh", created_by="pat", title="Review"
        )
        assert sorted(t.unit_id for t in made) == ["p2", "p3", "p8"]
        assert {t.source for t in made} == {"cohort:top-risk"}
        again = tasking.tasks_from_cohort(
            s, relinked, "top-risk", team="eh", created_by="pat", title="Review"
        )
        assert again == []
        with pytest.raises(tasking.TaskingError, match="no members"):
            tasking.tasks_from_cohort(s, relinked, "nobody", team="eh", created_by="pat", title="x")


def test_pathway_compliance_and_escalation(
    control: ControlPlane, relinked: duckdb.DuckDBPyConnection
) -> None:
    lin = Lineage.load(relinked)
    start = date(2026, 1, 5)
    with control.session() as s:
        team = tasking.add_team(s, "police-dm", "Police decision maker", "POLICE")
        made = pathways.install_examples(s, escalation_team=team)
        assert {p.code for p in made} == {"pretrial-diversion", "early-help-family"}
        assert pathways.install_examples(s, escalation_team=team) == []
        enrolment = pathways.enrol(s, "pretrial-diversion", "p1", by="pat", started_on=start)
        assert [st.due_on for st in enrolment.steps] == [
            start + timedelta(days=d) for d in (7, 14, 56, 112)
        ]
        pathways.record_step(s, enrolment.steps[0], "complied", on=start + timedelta(days=3))
        # Day 20: the needs assessment (due day 14) is overdue but not yet escalated.
        status = pathways.compliance(s, lin, today=start + timedelta(days=20), unit_id="p2")
        assert len(status) == 1 and status[0].live_unit_id == "p2"
        assert (status[0].complied, status[0].overdue, status[0].status) == (1, 1, "amber")
        escalated = pathways.escalate_overdue(s, today=start + timedelta(days=20), by="system")
        assert len(escalated) == 1 and escalated[0].status == "missed"
        assert enrolment.status == "escalated"
        task = s.get(Task, escalated[0].escalation_task_id)
        assert task is not None and task.priority == "urgent" and task.unit_id == "p1"
        assert task.team.code == "police-dm" and "Needs assessment" in task.title
        # Running escalation again raises nothing new.
        assert pathways.escalate_overdue(s, today=start + timedelta(days=20)) == []
        assert pathways.compliance(s, lin, today=start + timedelta(days=20))[0].status == "red"
        with pytest.raises(pathways.PathwayError):
            pathways.record_step(s, enrolment.steps[2], "pending")
        with pytest.raises(pathways.PathwayError, match="at least one step"):
            pathways.define_pathway(s, "empty", "Empty", [])
    with control.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(EnrolmentStep)) == 4


def test_meeting_view_lists_every_agencys_involvement(
    control: ControlPlane, con: duckdb.DuckDBPyConnection
) -> None:
    lin = Lineage.load(con)
    _, dups = duplicate_interventions(con, Filters(), "nominal")
    person = dups[0]["unit_id"]
    with control.session() as s:
        tasking.add_team(s, "mash", "MASH", "COUNCIL")
        tasking.create_task(
            s, unit_type="nominal", unit_id=person, title="Discuss", team="mash", created_by="pat"
        )
        cases = tasking.meeting_view(s, con, lin)
        assert len(cases) == 1 and cases[0]["unit_id"] == person
        open_agencies = {i["agency"] for i in cases[0]["involvement"] if i["open"]}
        assert open_agencies == {i["agency"] for i in dups[0]["involvements"]}
        restricted = tasking.meeting_view(s, con, lin, datasets=("crimes",))
        assert all(i["agency"] == "police" for i in restricted[0]["involvement"])
