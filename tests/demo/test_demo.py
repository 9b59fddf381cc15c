"""`nominal demo --no-serve` builds the hub end to end, and a second run re-uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nominal.config import Home
from nominal.engines.lake import Lake

DEMO_ARGS = ("--people", "300", "--seed", "7", "--no-serve", "--json")


def _demo(home: Home) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "nominal.cli", "demo", *DEMO_ARGS],
        capture_output=True,
        text=True,
        env={"NOMINAL_HOME": str(home.root), "PATH": "/usr/bin:/bin"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_demo_builds_then_reuses(hub_home: Home) -> None:
    first = _demo(hub_home)
    stages = first["stages"]
    assert list(stages) == [
        "synth",
        "geography",
        "contracts",
        "ingest",
        "link",
        "governance",
        "risk",
        "products",
    ]
    assert stages["synth"]["reused"] is False
    ingest = stages["ingest"]
    assert ingest["rows_in"] > 1000
    assert ingest["rows_in"] == ingest["rows_accepted"] + ingest["rows_quarantined"]
    assert Path(first["synthetic"], "truth").is_dir()
    snapshot = Lake(hub_home.lake).require_current()
    documents = snapshot.rows("silver.documents")
    assert documents == len(list(Path(first["synthetic"], "documents").iterdir()))
    # every accepted table row is one identity row, unless a later version superseded it
    assert (
        snapshot.rows("silver.identity")
        == ingest["rows_accepted"] - documents - ingest["rows_superseded"]
    )

    # every identity record is attached to exactly one golden nominal
    assert stages["link"]["records"] == snapshot.rows("silver.identity")
    assert 0 < snapshot.rows("gold.nominals") <= stages["link"]["records"]
    assert {a["role"] for a in stages["governance"]["accounts"]} >= {"practitioner", "analyst"}
    assert stages["products"]["teams"] == stages["governance"]["partners"] > 0
    # a 300-person town is too small for some models: each says why instead of failing
    assert set(stages["risk"]["models"]) == {
        "da_high_risk",
        "child_exploitation",
        "not_school_ready",
        "cin_cp_escalation",
    }

    again = _demo(hub_home)["stages"]
    assert again["synth"]["reused"] is True
    # the same deliveries again are recognised by checksum: nothing new is taken in
    assert again["ingest"]["statuses"] == {"duplicate": ingest["files"]}
    assert Lake(hub_home.lake).require_current().rows("silver.identity") == snapshot.rows(
        "silver.identity"
    )
