"""`nominal run`: stages in order, recorded in the control plane, resumed after a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.pipeline.models import PipelineRun, StageRun
from nominal.pipeline.runner import PipelineError, run_history, run_pipeline
from nominal.pipeline.stages import StageError, plan


def test_plan_orders_stages_by_dependency() -> None:
    assert [s.name for s in plan(["score", "ingest", "features"])] == [
        "ingest",
        "features",
        "score",
    ]
    assert [s.name for s in plan(None)][:4] == ["ingest", "link", "features", "score"]
    with pytest.raises(StageError, match="unknown stage 'nope'"):
        plan(["ingest", "nope"])


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


def test_failing_stage_then_resume(
    prepared_hub: Callable[[str | None], Home], database: str | None
) -> None:
    home = prepared_hub(database)
    bad = home.inbox / "npol_incidents_2025.csv"
    bad.write_bytes(b"\x00\x01\x02 not a csv \x00" * 10)
    control = ControlPlane(home.database_url)

    first = run_pipeline(home, ["features", "ingest"], control=control)
    assert first.status == "failed"
    assert [s["stage"] for s in first.stages] == ["ingest"]  # features never started
    assert "npol_incidents_2025.csv" in (first.error or "")
    # the good deliveries of the batch were committed and left the inbox
    snap = Lake(home.lake).require_current()
    accepted = snap.rows("silver.identity")
    assert accepted > 0
    assert bad.exists() and not (home.inbox / "npol_incidents_2024.csv").exists()
    assert first.stages[0]["outputs"]["silver.identity"] == accepted

    with pytest.raises(PipelineError, match="no pipeline run"):
        run_pipeline(home, resume="no-such-run", control=control)

    bad.unlink()  # the partner withdraws the broken file
    second = run_pipeline(home, resume=first.run_id, control=control)
    assert second.ok, second.error
    assert [s["stage"] for s in second.stages] == ["ingest", "features"]
    assert all(s["attempt"] == 2 for s in second.stages)

    snap = Lake(home.lake).require_current()
    with control.session() as session:
        run = session.get(PipelineRun, first.run_id)
        assert run is not None
        assert (run.status, run.attempts, run.stages) == ("succeeded", 2, ["ingest", "features"])
        rows = session.scalars(
            sa.select(StageRun).where(StageRun.run_id == first.run_id).order_by(StageRun.id)
        ).all()
        assert [(r.stage, r.attempt, r.status) for r in rows] == [
            ("ingest", 1, "failed"),
            ("ingest", 2, "succeeded"),
            ("features", 2, "succeeded"),
        ]
        assert "npol_incidents_2025.csv" in (rows[0].error or "")
        features = rows[2]
        assert features.outputs["gold.features_person"] == snap.rows("gold.features_person") > 0
        assert features.inputs["gold.events"] == snap.rows("gold.events")
        assert features.snapshot_after == snap.id != features.snapshot_before
        assert features.seconds is not None and features.seconds > 0
        assert features.summary["as_of"]

    with pytest.raises(PipelineError, match="already succeeded"):
        run_pipeline(home, resume=first.run_id, control=control)
    history = run_history(control)
    assert history[0]["run_id"] == first.run_id and len(history[0]["stage_runs"]) == 3
    control.dispose()


def test_missing_upstream_table_is_named(hub_home: Home) -> None:
    report = run_pipeline(hub_home, ["features"])
    assert report.status == "failed"
    assert "features needs gold.events, gold.nominals" in (report.error or "")


def test_cli_run_and_resume(prepared_hub: Callable[[str | None], Home]) -> None:
    home = prepared_hub(None)
    (home.inbox / "kht_ae_attendances_2099.csv").write_text("")  # empty: unreadable

    def cli(*args: str) -> tuple[int, dict]:
        done = subprocess.run(
            [sys.executable, "-m", "nominal.cli", *args, "--json"],
            capture_output=True,
            text=True,
            env={"NOMINAL_HOME": str(home.root), "PATH": "/usr/bin:/bin"},
            timeout=300,
            check=False,
        )
        return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])

    code, first = cli("run", "--stages", "ingest")
    assert code == 1 and first["status"] == "failed"
    assert "kht_ae_attendances_2099.csv" in first["error"]
    Path(home.inbox / "kht_ae_attendances_2099.csv").unlink()
    code, again = cli("run", "--resume", first["run_id"])
    assert code == 0 and again["ok"] and again["run_id"] == first["run_id"]
    code, listed = cli("runs")
    assert listed["runs"][0]["status"] == "succeeded"
