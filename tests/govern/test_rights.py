"""Data-subject rights and retention against a real lake and both control-plane databases."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from govern.lakes import build_silver
from nominal.cli import app
from nominal.config import Home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.govern import admin, rights
from nominal.govern.audit import audit_log
from nominal.govern.models import Dataset, RightsRequest
from nominal.govern.policy import Decision
from nominal.govern.reads import LakeReader, read_records


@pytest.fixture
def hub(hub_home: Home, control: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("NOMINAL_DATABASE_URL", control.url)
    build_silver(hub_home)
    with control.session() as s:
        admin.add_partner(s, "NPOL", "Northshire Police")
        admin.add_partner(s, "NFRS", "Northshire Fire")
        for code, partner, years in (("crimes", "NPOL", 7), ("fire_incidents", "NFRS", 10)):
            d = Dataset(
                code=code,
                title=code,
                partner_id=admin.get_partner(s, partner).id,
                retention_years=years,
            )
            d.fields = ["event_date", "given_name"]
            s.add(d)
    return hub_home


def _all_lake_text(home: Home) -> str:
    files = [str(p) for p in (home.lake / "data").rglob("*.parquet")]
    con = duckdb.connect()
    rows = con.execute("SELECT * FROM read_parquet(?, union_by_name = true)", [files]).fetchall()
    return json.dumps(rows, default=str)


def test_subject_access(hub: Home, control: ControlPlane) -> None:
    log = audit_log(control, hub)
    log.record("read", "allowed", username="pat", purpose="safeguarding", record_keys=["a" * 32])
    log.record("read", "allowed", username="sam", record_keys=["b" * 32])
    with control.session() as s:
        report = rights.subject_access(hub, s, log, nominal_id="N1")
    assert sorted(r["record_key"] for r in report["records"]) == ["a" * 32, "c" * 32]
    assert {r["given_name"] for r in report["records"]} == {"Alice", "Carol"}
    assert len(report["events"]) == 2
    assert report["nominal"]["nominal_id"] == "N1"
    assert [(a["username"], a["purpose"]) for a in report["accesses"]] == [("pat", "safeguarding")]


def test_erasure_removes_rows_everywhere_and_is_remembered(
    hub: Home, control: ControlPlane
) -> None:
    assert "Bob" in _all_lake_text(hub)
    with control.session() as s:
        request = rights.open_request(s, "erasure", "N2", by="iris")
        result = rights.erase(hub, s, [], request, nominal_id="N2")
    assert result.record_keys == ["b" * 32]
    assert result.rows_removed == {
        "gold.nominal_records": 1,
        "gold.nominals": 1,
        "silver.events": 2,
        "silver.identity": 1,
    }
    lake = Lake(hub.lake)
    assert len(list(lake.snapshots_dir.glob("*.json"))) == 1  # older snapshots vacuumed
    text = _all_lake_text(hub)
    assert "Bob" not in text and "b" * 32 not in text
    assert "Alice" in text  # nobody else was touched
    assert rights.erased_record_keys(hub) == {"b" * 32}
    with control.session() as s:
        assert s.scalar(sa.select(RightsRequest.status)) == "completed"


def test_restriction_withholds_records(hub: Home, control: ControlPlane) -> None:
    reader = LakeReader(Lake(hub.lake))
    decision = Decision(True, (), ("event_date",), (), dataset="crimes", purpose="p")
    assert len(read_records(reader, decision)) == 4
    with control.session() as s:
        rights.restrict(s, ["a" * 32])
    with control.session() as s:
        restricted = rights.restricted_record_keys(s)
        rows = read_records(reader, decision, restricted=restricted)
        assert len(rows) == 3 and all(r["record_key"] != "a" * 32 for r in rows)
        assert rights.lift_restriction(s, ["a" * 32]) == 1
    with control.session() as s:
        assert rights.restricted_record_keys(s) == frozenset()


def test_retention_sweep(hub: Home, control: ControlPlane) -> None:
    with control.session() as s:
        report = rights.retention_sweep(hub, s, today=date(2026, 6, 1))
    by = {r["dataset"]: r for r in report}
    # crimes: 7 years -> before 2019-06-01: Bob's 2010 crime and Dan's 2008 one; Dan has
    # nothing left, so his identity goes too. Fire: 10 years, nothing that old.
    assert (by["crimes"]["events_removed"], by["crimes"]["records_removed"]) == (2, 1)
    assert (by["fire_incidents"]["events_removed"], by["fire_incidents"]["records_removed"]) == (
        0,
        0,
    )
    snap = Lake(hub.lake).require_current()
    assert snap.rows("silver.events") == 3 and snap.rows("silver.identity") == 3
    assert "Dan" not in _all_lake_text(hub)


def test_cli_audit_verify_names_the_bad_entry(hub: Home, control: ControlPlane) -> None:
    log = audit_log(control, hub)
    for i in range(5):
        log.record("read", "allowed", username=f"u{i}")
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1])["entries"] == 5
    with control.engine.begin() as con:
        if control.engine.dialect.name == "postgresql":
            con.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            con.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        con.execute(sa.text("UPDATE audit_log SET username = 'someone' WHERE seq = 3"))
    bad = runner.invoke(app, ["audit", "verify", "--json"])
    assert bad.exit_code == 1
    summary = json.loads(bad.stdout.strip().splitlines()[-1])
    assert summary["first_bad_seq"] == 3 and "altered" in summary["problem"]
    out = Path(str(hub.root)) / "audit.jsonl"
    exported = runner.invoke(app, ["audit", "export", str(out)])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 5
