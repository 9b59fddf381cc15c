"""Security tests share the fuzz targets in ``fuzz/hostile.py`` (one source of invariants)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "fuzz") not in sys.path:
    sys.path.insert(0, str(ROOT / "fuzz"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A linked town with hostile feed data, shared by the web, API and load tests."""
    from web_town import build_town

    return build_town(tmp_path_factory.mktemp("web-town"))
