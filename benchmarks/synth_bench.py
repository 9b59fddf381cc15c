"""Time and peak memory of ``nominal synth`` at given population sizes.

Each run is a fresh child process (so its peak resident memory is its own, read with
``resource.getrusage(RUSAGE_CHILDREN)`` after it exits). The machine is shared, so each
run is paired with a peer measured straight after it: DuckDB writing the same number of
rows (15 columns of names, dates and codes) to CSV, the plain cost of writing that many
records. Prints one line per run and a median per size::

    .venv/bin/python benchmarks/synth_bench.py                 # 100k and 1M people
    .venv/bin/python benchmarks/synth_bench.py --people 20000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def run_once(people: int, seed: int, out: Path) -> dict[str, float]:
    """One generator run in a child process: wall seconds, peak RSS (MiB), records."""
    code = (
        "import json, sys; from pathlib import Path; from nominal.synth import generate; "
        f"s = generate(Path({str(out)!r}), {people}, seed={seed}); "
        "print(json.dumps({'records': s.total_records, 'files': s.files}))"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": wall, "records": result["records"], "files": result["files"]}


def measured(people: int, seed: int) -> dict[str, float]:
    """Run in a forked child so that RUSAGE_CHILDREN covers exactly this run (it reports
    the largest peak of any child waited for, so a long-lived parent would mix runs)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run the generator as its own child, report figures, exit
        os.close(read)
        with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
            figures = run_once(people, seed, Path(tmp) / "town")
        figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        os.write(write, json.dumps(figures).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)  # type: ignore[no-any-return]


def peer_seconds(rows: int) -> float:
    """DuckDB writing ``rows`` rows of person-like records to a CSV file."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="synth-peer-") as tmp:
        con = duckdb.connect()
        started = time.perf_counter()
        con.execute(
            f"""COPY (SELECT 'REC' || i AS record_id, 'Forename' || (i % 997) AS given_name,
                       'Surname' || (i % 4999) AS family_name,
                       DATE '1950-01-01' + (i % 25000)::INTEGER AS date_of_birth,
                       CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END AS sex,
                       (i % 300) || ' Some Road' AS address_line_1, 'Kettleby' AS town,
                       'NX' || (i % 60) || ' ' || (i % 10) || 'AB' AS postcode,
                       lpad((i * 7919 % 1000000000)::VARCHAR, 10, '9') AS nhs_number,
                       'EV' || (i // 2) AS event_id,
                       DATE '2021-01-01' + (i % 2000)::INTEGER AS event_date,
                       'category ' || (i % 7) AS category, i % 380 AS sessions,
                       (i % 1000) / 10.0 AS pct, 'E00' || (900000 + i % 3000) AS oa_code
                FROM range({rows}) t(i)) TO '{tmp}/peer.csv' (HEADER)"""
        )
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--runs", type=int, default=0, help="runs per size (default: 3 below 500k, else 1)"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    print(
        f"{'people':>10} {'run':>4} {'seconds':>9} {'peak MiB':>9} {'records':>11} {'records/s':>10}"
    )
    for people in args.people:
        runs = args.runs or (3 if people < 500_000 else 1)
        results = []
        for i in range(runs):
            r = measured(people, args.seed + i)
            r["peer"] = peer_seconds(int(r["records"]))
            r["ratio"] = r["seconds"] / r["peer"]
            results.append(r)
            print(
                f"{people:>10,} {i + 1:>4} {r['seconds']:>9.1f} {r['peak_rss_mib']:>9.0f} "
                f"{int(r['records']):>11,} {r['records'] / r['seconds']:>10,.0f} "
                f"{r['peer']:>7.2f} {r['ratio']:>6.1f}",
                flush=True,
            )
        med = statistics.median(r["seconds"] for r in results)
        mem = statistics.median(r["peak_rss_mib"] for r in results)
        peer = statistics.median(r["peer"] for r in results)
        ratio = statistics.median(r["ratio"] for r in results)
        print(
            f"{people:>10,} {'med':>4} {med:>9.1f} {mem:>9.0f} "
            f"{int(results[0]['records']):>11,} {results[0]['records'] / med:>10,.0f} "
            f"{peer:>7.2f} {ratio:>6.1f}   (per 100k people: {med / people * 100_000:.1f}s)",
            flush=True,
        )
    return 0


@pytest.mark.benchmark
def test_synth_benchmark_small() -> None:
    """A quick benchmark run (20k people) so `make benchmarks` exercises this script."""
    figures = measured(20_000, 42)
    print(figures)
    assert figures["records"] > 100_000


if __name__ == "__main__":
    raise SystemExit(main())
