"""Run the atheris fuzzers (fuzz/run.py) for a bounded time and count what they find.

``-m slow`` runs two targets for a few hundred executions (a smoke test that the
harness works; instrumenting the parsers takes ~20 s per process); ``-m benchmark`` runs every target for NOMINAL_FUZZ_SECONDS (default
60) and prints executions and distinct crashes per target. Zero crashes is the bar:
every crash found so far was fixed and kept in ``crashes/`` as a regression input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("csv", "ndjson", "xlsx", "parquet", "pdf", "docx", "txt", "contract")


def fuzz(target: str, tmp_path: Path, *limit: str) -> dict:
    stats = tmp_path / f"{target}.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), target, "--stats", str(stats), *limit],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=tmp_path,
    )
    runs = re.search(r"Done (\d+) runs in (\d+) second", done.stderr)
    assert runs, done.stderr[-3000:]
    summary = json.loads(stats.read_text()) if stats.exists() else {"crashes": {}, "findings": {}}
    summary["executions"] = int(runs.group(1))
    summary["seconds"] = int(runs.group(2))
    return summary


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", ["pdf", "contract"])
def test_fuzz_smoke(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    summary = fuzz(target, tmp_path, "--runs", "300")
    assert summary["executions"] >= 300
    assert not summary["crashes"], summary["crashes"]
    assert not summary["findings"], summary["findings"]


@pytest.mark.benchmark
@pytest.mark.timeout(7200)
def test_fuzz_every_target(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seconds = os.environ.get("NOMINAL_FUZZ_SECONDS", "60")
    results = {t: fuzz(t, tmp_path, "--seconds", seconds) for t in TARGETS}
    total = sum(r["executions"] for r in results.values())
    for target, r in results.items():
        print(
            f"fuzz {target:9s} executions {r['executions']:>8,} in {r['seconds']}s, "
            f"distinct crashes {len(r['crashes'])}, findings {len(r['findings'])}"
        )
    print(f"fuzz total executions {total:,}")
    crashes = {t: list(r["crashes"]) + list(r["findings"]) for t, r in results.items()}
    assert not any(crashes.values()), crashes
