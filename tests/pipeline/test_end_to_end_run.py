"""The whole pipeline through `nominal run` on a small synthetic town, with real linkage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from nominal.config import Home
from nominal.contracts.registry import add_contracts
from nominal.engines.duck import connect
from nominal.engines.lake import Lake
from nominal.ingest.api import import_synth_geography
from nominal.mentions import mentions_for
from nominal.pipeline.runner import run_pipeline

STAGES = ["ingest", "link", "features", "mentions", "alerts"]


def _hub(home: Home, town: Path) -> Home:
    import_synth_geography(home, town / "geography")
    add_contracts(home, town / "contracts")
    for folder in ("feeds", "documents"):
        for f in (town / folder).iterdir():
            shutil.copy(f, home.inbox / f.name)
    return home


def _check(home: Home, town: Path, report_stages: list[dict]) -> None:
    assert [s["stage"] for s in report_stages] == STAGES
    snap = Lake(home.lake).require_current()
    assert snap.rows("gold.nominals") > 0 and snap.rows("gold.features_person") > 0
    # document mentions land on the nominal holding the named person's records
    truth = pd.read_parquet(town / "truth" / "document_mentions.parquet")
    records = pd.read_parquet(town / "truth" / "records.parquet")
    con = connect(snap, tables=["gold.nominal_records"])
    linked = con.execute(
        "SELECT dataset, source_record_id, nominal_id FROM gold.nominal_records"
    ).df()
    joined = linked.merge(
        records[["dataset", "source_record_id", "person_id"]].drop_duplicates(),
        on=["dataset", "source_record_id"],
    )
    person_nominal = joined.groupby("person_id")["nominal_id"].agg(lambda s: s.mode()[0])
    named = truth[truth.mention_kind == "name"]
    hits = 0
    for row in named.itertuples():
        nominal = person_nominal.get(row.person_id)
        if nominal is not None and any(
            m["file_name"] == row.document for m in mentions_for(home, nominal)
        ):
            hits += 1
    assert hits >= 0.8 * len(named)


@pytest.mark.slow
def test_full_run_on_duckdb(hub_home: Home, small_town: Path) -> None:
    report = run_pipeline(_hub(hub_home, small_town), STAGES)
    assert report.ok, report.error
    _check(hub_home, small_town, report.stages)


@pytest.mark.slow
@pytest.mark.spark
def test_full_run_with_linkage_on_spark(hub_home: Home, small_town: Path) -> None:
    report = run_pipeline(_hub(hub_home, small_town), STAGES, engine="spark")
    assert report.ok, report.error
    _check(hub_home, small_town, report.stages)
