"""Where ingest's CPU goes: CPU seconds of every DuckDB statement and the Python steps.

Writes the delivery of ``benchmarks/ingest_bench.py`` (``--rows``), ingests it ``--runs``
times into fresh hub homes (the first run also pays imports and, with
``NOMINAL_COMPILED_HMAC=numba``, loading numba), and prints, for the last run, each step
that took at least ``--min`` CPU seconds, then the peer's CPU (DuckDB's own CSV ->
Parquet copy) measured in the same process::

    .venv/bin/python benchmarks/ingest_profile.py --rows 1000000 --runs 2
    .venv/bin/python benchmarks/ingest_profile.py --rows 1000000 --variants

``--variants`` then re-runs the last run's own statements on a fresh connection, each
three times (best CPU shown), with parts taken out: the CSV read alone, staging
without the pseudonyms, the identity copy without its delivery constants or without
its all-NULL columns, the data-quality aggregate without ``approx_count_distinct``.

CPU is this process's user + system time (all DuckDB threads), so other load on the
machine changes it less than wall time. Statements are shown by their first words.
"""

from __future__ import annotations

import argparse
import re
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
STATEMENTS: list[str] = []  # the full text of every statement of the last run


def _call_at(sql: str, start: int) -> str:
    """The function call starting at ``sql[start]`` up to its closing parenthesis."""
    depth, quoted = 0, False
    for i in range(sql.index("(", start), len(sql)):
        ch = sql[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return sql[start : i + 1]
    raise ValueError("unbalanced call")


def variants(work: Path) -> None:
    """Time the last run's statements again with parts taken out (best of three)."""
    from nominal.config import home as make_home
    from nominal.ingest.pseudonym import hmac_sql

    con = pipeline._connect(work)
    key = make_home(work / "home").pseudonym_key
    staging = next(s for s in STATEMENTS if "TEMP TABLE staged AS" in s)
    copies = [s for s in STATEMENTS if s.lstrip().startswith("COPY")]
    identity = copies[0][copies[0].index("(") + 1 : copies[0].rindex(") TO ")]
    dq_sql = next(s for s in STATEMENTS if "approx_count_distinct" in s)
    if pipeline.COMPILED_HMAC in staging:
        from nominal.ingest.pseudonym import compiled_kernel, register_hmac_function

        size = (work / "bench_incidents_2024.csv").stat().st_size
        kernel = compiled_kernel(size) or "numba"  # the kernel the run registered
        register_hmac_function(con, key, pipeline.COMPILED_HMAC, kernel=kernel)
    read_csv = _call_at(staging, staging.index("read_csv("))
    plain = staging
    for msg in re.findall(r"'[^']*\|' \|\| v_\w+", staging):
        plain = plain.replace(hmac_sql(key, msg), msg).replace(
            f"{pipeline.COMPILED_HMAC}({msg})", msg
        )
    # the delivery constants, written as ENUM casts (see pipeline._enum)
    consts = (
        r"CAST\('[^']*' AS ENUM\('[^']*'\)\) AS (dataset|feed|partner|agency|delivery_id),\s*"
        r"|TIMESTAMP '[^']*' AS received_at,\s*"
    )
    cases = [
        ("CSV read into a table", f"CREATE OR REPLACE TEMP TABLE r AS SELECT * FROM {read_csv}"),
        ("staging, as ingest runs it", staging.replace("staged AS", "staged_b AS")),
        ("staging without the two pseudonyms", plain.replace("staged AS", "staged2 AS")),
        ("copy of the staged table", "CREATE OR REPLACE TEMP TABLE s2 AS SELECT * FROM staged"),
        ("data-quality aggregate", dq_sql),
        ("  without approx_count_distinct", dq_sql.replace("approx_count_distinct(", "count(")),
    ]
    con.execute("SET preserve_insertion_order = false")
    out = work / "variant.parquet"
    for label, sql in (
        ("identity copy", identity),
        ("  without the 6 delivery constants", re.sub(consts, "", identity)),
        (
            "  without the all-NULL columns",
            re.sub(r"CAST\(NULL AS VARCHAR\) AS \w+,", "", identity),
        ),
    ):
        cases.append((label, f"COPY ({sql}) TO '{out}' ({pipeline.PARQUET_OPTIONS})"))
    con.execute(staging)  # the staged table the copies and the aggregate read
    con.execute("ALTER TABLE staged ADD COLUMN __superseded BOOLEAN DEFAULT false")
    print("variants (best CPU-s of three):")
    for label, sql in cases:
        if label.startswith("staging"):
            con.execute("SET preserve_insertion_order = true")
        best = float("inf")
        for _ in range(3):
            cpu0 = cpu_seconds()
            con.execute(sql).fetchall() if sql.lstrip().startswith("SELECT") else con.execute(sql)
            best = min(best, cpu_seconds() - cpu0)
        print(f"  {best:6.2f}  {label}", flush=True)
        con.execute("SET preserve_insertion_order = false")
    con.close()


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
        STATEMENTS.append(sql)
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
    parser.add_argument("--variants", action="store_true", help="also time parts taken out")
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
        STATEMENTS.clear()
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
    if args.variants:
        pipeline._connect = connect  # type: ignore[assignment]
        variants(work)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
