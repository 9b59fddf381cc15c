"""kill -9 of the real web server mid-request: the control plane keeps what it acknowledged.

A few trials of ``benchmarks/server_crash_trials.py`` on SQLite and on PostgreSQL: virtual
users create tasks (task, note and audit entry) and open person views (audit entries)
until the server is killed; every acknowledged write is there, nothing is half-written,
the audit chain verifies and the server starts again.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import server_crash_trials

pytestmark = pytest.mark.timeout(1200)


# PostgreSQL's half is in the slow suite (`pytest -m slow`): its durability is the server's
# own, while SQLite's depends on the hub's settings (WAL, synchronous), so SQLite stays in
# the default suite.
@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])],
)
def test_kill_minus_nine_of_the_server_mid_request(town, backend: str, request) -> None:  # type: ignore[no-untyped-def]
    root = town.home.root.parent
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{root / f'crash-{backend}.db'}"
    )
    result = server_crash_trials.run_backend(
        backend, town.home.root, root, url, trials=2, users=4, rng=random.Random(5)
    )
    print(result.to_dict())
    assert result.trials == 2
    assert result.failures == []
    # the kills landed mid-load: each comes after the first acknowledged task
    assert result.acked_tasks > 0
