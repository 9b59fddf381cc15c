"""End to end through the real ingest: synth feeds -> ``nominal ingest`` -> ``nominal link``.

The silver tables here are the ones ingest writes (not the test helper's), so this
checks that linking reads exactly what ingest produces, including superseded records
and reference geography for output areas.
"""

from __future__ import annotations

from pathlib import Path

from nominal.contracts.registry import add_contracts
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.ingest.api import ingest_paths
from nominal.link import evaluate
from nominal.link.pipeline import dataset_reliability, link_lake

from .conftest import new_home


def test_link_after_real_ingest(town: Path, model_dir: Path, tmp_path: Path) -> None:
    home = new_home(tmp_path / "home", model_dir)
    add_contracts(home, town / "contracts")
    summary = ingest_paths(home, [town / "feeds"])
    assert summary is not None
    assert dataset_reliability(home)["benefits"] == 0.9

    result = link_lake(home, mode="full")
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap)
    silver = con.execute("SELECT count(DISTINCT record_key) FROM silver.identity").fetchall()[0][0]
    assert result["records"] == silver
    evaluate.register_truth(con, town / "truth")
    metrics = evaluate.cluster_metrics(con, "gold.nominal_records")
    assert metrics["records"] == silver
    assert metrics["f1"] >= 0.98, metrics
    events = con.execute("SELECT count(*), count(nominal_id) FROM gold.events").fetchall()[0]
    assert events[0] == events[1] > 0
