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
