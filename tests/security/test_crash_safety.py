"""kill -9 during ingest, at random points: the lake stays consistent and nothing is lost.

A few trials of ``benchmarks/crash_trials.py`` on generated deliveries (no synthetic
town, to stay quick); the benchmark itself runs many trials over ingest, link and
score on a synthetic town.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import hostile
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import crash_trials

pytestmark = pytest.mark.timeout(600)


def _deliveries(folder: Path, files: int, rows: int) -> None:
    folder.mkdir(parents=True)
    rng = random.Random(3)
    for f in range(files):
        with open(folder / f"fz_csv_{f:02d}.csv", "w", newline="") as handle:
            w = csv.writer(handle)
            w.writerow(hostile.COLUMNS)
            for i in range(rows):
                rid = rng.randrange(rows * files)  # some records re-sent across deliveries
                w.writerow([rid, "Ann", "Lee", "1990-01-02", "NE1 4ST", "", f"2024-0{1 + i % 9}-01",
                            rng.choice(["low", "high", "bad"]), i])  # fmt: skip


def test_kill_minus_nine_during_ingest(tmp_path: Path) -> None:
    feeds = tmp_path / "synthetic" / "feeds"
    _deliveries(feeds, files=4, rows=1000)
    (tmp_path / "synthetic" / "documents").mkdir()
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    raw = hostile.contract("csv").model_dump(mode="json", by_alias=True, exclude_none=True)
    (contracts / "fz.yaml").write_text(yaml.safe_dump(raw))
    from nominal.config import home as make_home
    from nominal.contracts.registry import add_contracts

    for name in ("reference", "trial"):
        add_contracts(make_home(tmp_path / name).ensure(), contracts)
    result = crash_trials.run_stage(
        "ingest", tmp_path / "reference", tmp_path / "trial", tmp_path / "synthetic",
        trials=3, rng=random.Random(11),
    )  # fmt: skip
    print(result.to_dict())
    assert result.trials == 3
    assert result.failures == []
    got = crash_trials.fingerprint(tmp_path / "trial", ["silver.identity", "silver.quarantine"])
    assert got["silver.identity"]["rows"] > 0 and got["silver.quarantine"]["rows"] > 0
