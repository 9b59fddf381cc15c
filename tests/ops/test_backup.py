"""`nominal backup create|restore`: a round trip of lake and control plane, per database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from nominal.config import Home
from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.ops.backup import BackupError, create_backup, restore_backup
from nominal.pipeline.models import PipelineRun
from nominal.pipeline.runner import run_pipeline


def populate(home: Home) -> None:
    """A lake with two snapshots and a bronze delivery; runs, partners and audit entries."""
    lake = Lake(home.lake)
    for n in (3, 5):
        with lake.transaction("t") as tx:
            tx.replace(
                "silver.events", [tx.write_arrow("silver.events", pa.table({"x": list(range(n))}))]
            )
            tx.commit()
    bronze = lake.bronze / "police_incidents" / ("ab" * 32) / "npol_incidents_2025.csv"
    bronze.parent.mkdir(parents=True)
    bronze.write_text("PersonRef,IncidentDate\nP1,01/01/2025\n")
    (home.root / "contracts").mkdir(exist_ok=True)
    (home.root / "contracts" / "npol.yaml").write_text("feed: npol-incidents\n")
    run_pipeline(home, ["features"])  # a failed run, recorded
    from nominal.govern import admin
    from nominal.govern.audit import audit_log

    control = ControlPlane(home.database_url)
    with control.session() as s:
        admin.add_partner(s, "NPOL", "Northshire Police", "police")
    log = audit_log(control, home, anchor_every=2)
    for i in range(5):
        log.record("test.read", "allowed", username=f"user{i}")
    control.dispose()


def state(home: Home) -> dict:
    control = ControlPlane(home.database_url)
    from nominal.govern.audit import audit_log
    from nominal.govern.models import Partner

    with control.session() as s:
        runs = sorted(r.id for r in s.scalars(sa.select(PipelineRun)))
        partners = sorted(p.code for p in s.scalars(sa.select(Partner)))
    verified = audit_log(control, home, anchor_every=2).verify()
    control.dispose()
    snap = Lake(home.lake).require_current()
    return {
        "snapshot": snap.id,
        "rows": snap.read("silver.events").num_rows,
        "runs": runs,
        "partners": partners,
        "audit_ok": verified.ok,
        "audit_entries": verified.entries,
        "bronze": sorted(p.name for p in Lake(home.lake).bronze.rglob("*.csv")),
        "pseudonym_key": home.pseudonym_key.hex(),
    }


def damage(home: Home) -> None:
    """After the backup: another run, another snapshot, a partner removed."""
    run_pipeline(home, ["features"])
    lake = Lake(home.lake)
    with lake.transaction("t") as tx:
        tx.replace("silver.events", [tx.write_arrow("silver.events", pa.table({"x": [1]}))])
        tx.commit()
    control = ControlPlane(home.database_url)
    from nominal.govern.models import Partner

    with control.session() as s:
        s.execute(sa.delete(Partner))
    control.dispose()


def test_sqlite_round_trip_into_a_new_home(
    hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(hub_home)
    before = state(hub_home)
    assert before["audit_ok"] and before["rows"] == 5
    manifest = create_backup(hub_home, tmp_path / "backups")
    assert manifest["control_method"] == "sqlite-backup-api"
    assert manifest["lake"]["snapshot"] == before["snapshot"]
    # the machine is lost: restore on a new one
    new_root = tmp_path / "new-home"
    monkeypatch.setenv("NOMINAL_HOME", str(new_root))
    new = make_home(new_root).ensure()
    restore_backup(new, Path(manifest["path"]))
    assert state(new) == before
    # a restored lake is usable: the next write builds on the restored snapshot
    with Lake(new.lake).transaction("after") as tx:
        tx.commit()
    assert Lake(new.lake).require_current().parent == before["snapshot"]
    with pytest.raises(BackupError, match="already has a lake"):
        restore_backup(new, Path(manifest["path"]))


def test_damaged_backup_is_refused(hub_home: Home, tmp_path: Path) -> None:
    populate(hub_home)
    manifest = create_backup(hub_home, tmp_path / "b")
    keyfile = next((Path(manifest["path"]) / "keys").iterdir())
    keyfile.write_text("0" * 64)
    with pytest.raises(BackupError, match="missing or damaged"):
        restore_backup(hub_home, Path(manifest["path"]), force=True)


@pytest.mark.parametrize("method", ["pg_dump", "sql-copy"])
def test_postgres_round_trip(
    hub_home: Home, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    if method == "pg_dump" and shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is not installed")
    monkeypatch.setenv("NOMINAL_DATABASE_URL", postgres_url)
    populate(hub_home)
    before = state(hub_home)
    manifest = create_backup(hub_home, tmp_path / "backups", method=method)
    assert manifest["control_method"] == method
    damage(hub_home)
    assert state(hub_home) != before
    if method == "sql-copy":
        with pytest.raises(BackupError, match="needs an empty database"):
            restore_backup(hub_home, Path(manifest["path"]), force=True)
        # the database server is lost: restore into a new, empty one
        schema = postgres_url.rsplit("%3D", 1)[1]
        admin_engine = sa.create_engine(postgres_url.split("?")[0], isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as con:
            con.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin_engine.dispose()
    restore_backup(hub_home, Path(manifest["path"]), force=True)
    assert state(hub_home) == before
    # sequences continue after the restored rows
    control = ControlPlane(hub_home.database_url)
    from nominal.govern import admin

    with control.session() as s:
        admin.add_partner(s, "KCC", "Kettleby County Council")
    control.dispose()


def test_cli_backup_and_config(hub_home: Home, tmp_path: Path) -> None:
    populate(hub_home)
    config = tmp_path / "nominal.toml"
    config.write_text(f'[nominal]\nhome = "{hub_home.root}"\nlog_level = "debug"\nport = 8443\n')
    env = {"PATH": "/usr/bin:/bin", "NOMINAL_CONFIG": str(config), "NOMINAL_PORT": "9000"}

    def cli(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "nominal.cli", *args, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    shown = cli("config")
    # the file sets the home and level; the environment wins over the file for the port
    assert (shown["home"], shown["log_level"], shown["port"]) == (str(hub_home.root), "debug", 9000)
    assert str(config) in shown["source"] and "NOMINAL_PORT" in shown["source"]
    made = cli("backup", "create", "--to", str(tmp_path / "b"))
    assert made["lake"]["snapshot"] == Lake(hub_home.lake).require_current().id
    config.write_text("[nominal]\nprot = 1\n")
    bad = subprocess.run(
        [sys.executable, "-m", "nominal.cli", "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "unknown setting 'prot'" in bad.stderr
