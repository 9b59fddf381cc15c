"""A 20-second soak of the real server (uvicorn subprocess) on the shared town.

The 10-minute run is ``python benchmarks/soak.py --seconds 600``; this one checks the
same things on a short window: zero errors, a bounded p99 and no runaway memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from web_town import PURPOSE, token

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import soak

pytestmark = pytest.mark.timeout(600)


def test_soak_smoke(town) -> None:  # type: ignore[no-untyped-def]
    auth = token(town, "practitioner")["Authorization"].split()[1]
    figures = soak.soak(town.home.root, town.control.url, auth, PURPOSE, seconds=20, concurrency=4)
    print(figures)
    assert figures["requests"] > 20
    assert figures["errors"] == 0, figures["error_kinds"]
    assert figures["p99_ms"] < 10_000
    assert figures["rss_mb_end"] < 2 * figures["rss_mb_start"] + 200


def test_memory_summary_tells_a_plateau_from_a_leak() -> None:
    """The soak's slope figure: a steady climb keeps its slope, a filled cache reads flat."""
    times = [5.0 * i for i in range(120)]  # ten minutes of 5-second samples
    leak = [400 + 2.0 * t / 60 for t in times]  # 2 MB a minute throughout
    plateau = [400 + min(t, 120) / 60 * 50 for t in times]  # +100 MB in two minutes, then flat
    leaking, flat = soak.memory_summary(times, leak), soak.memory_summary(times, plateau)
    assert round(leaking["rss_mb_per_min_second_half"], 2) == 2.0
    assert flat["rss_mb_per_min_second_half"] == 0.0
    assert flat["rss_mb_per_min_first_half"] > 10
    assert flat["rss_mb_first20_mean"] < flat["rss_mb_last20_mean"] == 500.0
