"""Inputs the coverage-guided fuzzer (fuzz/run.py) found crashing, kept as regressions.

Each file in ``crashes/`` once escaped the readers as an unexpected exception (which
aborts the whole ingest run). Now each must end as a clear refusal or quarantine.
"""

from __future__ import annotations

from pathlib import Path

import hostile
import pytest

CRASHES = sorted((Path(__file__).parent / "crashes").iterdir())


@pytest.mark.parametrize("path", CRASHES, ids=[p.name for p in CRASHES])
def test_fuzzer_crash_is_now_a_clear_outcome(path: Path) -> None:
    kind = path.suffix if path.suffix in (".pdf", ".docx", ".txt") else path.suffix[1:]
    d = hostile.full_pipeline(kind, path.read_bytes())
    assert d["rows_in"] == d["rows_accepted"] + d["rows_quarantined"]
    if d["status"] == "failed":
        assert d["message"].startswith("fz_")
    elif kind.startswith("."):
        assert d["rows_in"] == 1
