"""Where ingest's CPU goes: CPU seconds of every DuckDB statement and the Python steps.

Writes the delivery of ``benchmarks/ingest_bench.py`` (``--rows``), ingests it ``--runs``
times into fresh hub homes (the first run also pays imports and, with
``NOMINAL_COMPILED_HMAC=on``, loading numba), and prints, for the last run, each step
that took at least ``--min`` CPU seconds, then the peer's CPU (DuckDB's own CSV ->
Parquet copy) measured in the same process::

    .venv/bin/python benchmarks/ingest_profile.py --rows 1000000 --runs 2

CPU is this process's user + system time (all DuckDB threads), so other load on the
machine changes it less than wall time. Statements are shown by their first words.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import nominal.ingest.pipeline as pipeline
from nominal.engines import lake

from ingest_bench import CONTRACT, cpu_seconds, run_ingest, run_peer, write_feed  # isort: skip

Step = tuple[float, float, str]


class _TimedConnection:
    """A DuckDB connection that records the CPU and wall time of each ``execute``."""

    def __init__(self, con: Any, log: list[Step]) -> None:
        self._con = con
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        label = " ".join(sql.split())[:100]
        self._log.append((cpu_seconds() - cpu0, time.perf_counter() - wall0, label))
        return result


def _timed(owner: Any, name: str, log: list[Step]) -> None:
    fn: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            log.append((cpu_seconds() - cpu0, time.perf_counter() - wall0, f"[python] {name}"))

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--min", type=float, default=0.05, help="hide steps under this CPU-s")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="nominal-ingest-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    feed = work / "bench_incidents_2024.csv"
    write_feed(feed, args.rows)
    contracts = work / "contracts"
    contracts.mkdir(exist_ok=True)
    (contracts / "bench-incidents.yaml").write_text(yaml.safe_dump(CONTRACT, sort_keys=False))

    log: list[Step] = []
    connect = pipeline._connect
    pipeline._connect = lambda work_dir: _TimedConnection(connect(work_dir), log)  # type: ignore[assignment,return-value]
    for owner, name in (
        (pipeline, "copy_and_hash"),
        (pipeline, "_load_erased"),
        (pipeline, "_known_deliveries"),
        (pipeline, "_supersede"),
        (pipeline.dq, "write_report"),
        (lake.SnapshotWriter, "commit"),
    ):
        _timed(owner, name, log)

    for run in range(1, args.runs + 1):
        log.clear()
        seconds, cpu, counts = run_ingest(feed, contracts, work)
        print(f"run {run}: ingest {seconds:.2f}s wall, {cpu:.2f} CPU-s {counts}", flush=True)
    shown = [s for s in log if s[0] >= args.min]
    print(f"last run, steps of at least {args.min} CPU-s (CPU-s, wall s, step):")
    for step_cpu, step_wall, label in shown:
        print(f"  {step_cpu:6.2f} {step_wall:7.2f}  {label}")
    print(f"  {sum(s[0] for s in log):6.2f}          all {len(log)} steps")
    peer_seconds, peer_cpu = run_peer(feed, work)
    print(
        f"peer: {peer_seconds:.2f}s wall, {peer_cpu:.2f} CPU-s; ingest / peer CPU {cpu / peer_cpu:.2f}x"
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
