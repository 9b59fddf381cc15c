"""``--engine spark`` (Splink's Spark backend, pyspark local[2]) decides as DuckDB does."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from nominal.link.pipeline import link_lake, table_rows

from .conftest import new_home, partition
from .silver_from_synth import silver_tables, write_silver

pytestmark = pytest.mark.spark


def test_spark_and_duckdb_make_the_same_decisions(town: Path, model_dir: Path, tmp_path) -> None:
    identity, events = silver_tables(town, b"s" * 32)
    # a slice of the town keeps the test near a minute on two cores
    chosen = pc.less(identity["row_number"], 40)
    identity = identity.filter(chosen)
    keys = set(identity["record_key"].to_pylist())
    events = events.filter(pc.is_in(events["record_key"], identity["record_key"]))
    assert 1000 < len(keys) < 3000
    home = new_home(tmp_path / "home", model_dir)
    write_silver(home, identity, events)

    link_lake(home, engine="duckdb", mode="full")
    duck_pairs = {
        (r["record_key_l"], r["record_key_r"]): r["decision"]
        for r in table_rows(home, "gold.pairs")
    }
    duck_clusters = partition(home)

    summary = link_lake(home, engine="spark", mode="full")
    assert summary["engine"] == "spark"
    spark_pairs = {
        (r["record_key_l"], r["record_key_r"]): r["decision"]
        for r in table_rows(home, "gold.pairs")
    }
    agree = sum(1 for k, v in duck_pairs.items() if spark_pairs.get(k) == v)
    assert len(duck_pairs) > 500
    assert agree / len(duck_pairs) >= 0.999
    assert len(spark_pairs) == len(duck_pairs)
    assert partition(home) == duck_clusters
    assert summary["lineage"] == {}  # same clusters, so every id is kept
