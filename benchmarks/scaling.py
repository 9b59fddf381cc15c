"""Stage times as the data grows, on DuckDB and on Spark (local[2]), with fitted growth.

Run: ``.venv/bin/python benchmarks/scaling.py --records 100000,1000000 --engines duckdb,spark``

For each size a synthetic town is generated with about that many feed records
(``nominal synth``; about 7 records per person), and for each engine a fresh hub runs
``ingest, link, features`` through the orchestrator (``run_pipeline``), so the times
are what ``nominal run`` records in the control plane. The growth of each stage is
fitted as time = a · records^b (least squares on logs); b near 1 is linear.

Only the linkage stage changes engine with ``--engine spark`` (see
docs/deploying-spark.md); ingest and features run on DuckDB either way and are
reported for both so the table shows the whole run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

RECORDS_PER_PERSON = 7.0
STAGES = ["ingest", "link", "features"]


def town(root: Path, records: int, seed: int) -> Path:
    from nominal.synth import generate

    out = root / f"town-{records}"
    if not (out / "feeds").is_dir():
        generate(out, max(100, int(records / RECORDS_PER_PERSON)), seed=seed)
    return out


def run_once(root: Path, town_dir: Path, engine: str) -> dict[str, float]:
    from nominal.config import home
    from nominal.contracts.registry import add_contracts
    from nominal.ingest.api import import_synth_geography
    from nominal.pipeline.runner import run_pipeline

    home_dir = root / f"home-{town_dir.name}-{engine}"
    shutil.rmtree(home_dir, ignore_errors=True)
    os.environ["NOMINAL_HOME"] = str(home_dir)
    os.environ.pop("NOMINAL_DATABASE_URL", None)
    h = home(home_dir).ensure()
    import_synth_geography(h, town_dir / "geography")
    add_contracts(h, town_dir / "contracts")
    for f in (town_dir / "feeds").iterdir():
        os.link(f, h.inbox / f.name)
    report = run_pipeline(h, STAGES, engine)
    if not report.ok:
        raise SystemExit(f"{engine} run failed: {report.error}")
    from nominal.engines.lake import Lake

    rows = Lake(h.lake).require_current().rows("silver.identity")
    times = {s["stage"]: float(s["seconds"]) for s in report.stages}
    times["records"] = float(rows)
    shutil.rmtree(home_dir, ignore_errors=True)
    return times


def fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares of log t = log a + b log n; None with fewer than two points."""
    pts = [(math.log(n), math.log(max(t, 1e-3))) for n, t in points]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return math.exp(my - b * mx), b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", default="100000,1000000")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.records.split(",")]
    engines = args.engines.split(",")
    root = Path(args.work or tempfile.mkdtemp(prefix="nominal-scaling-"))
    results: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
    for size in sizes:
        t = time.perf_counter()
        town_dir = town(root, size, args.seed)
        print(f"town for ~{size:,} records ready in {time.perf_counter() - t:.0f}s", flush=True)
        for engine in engines:
            times = run_once(root, town_dir, engine)
            results[engine].append(times)
            print(engine, json.dumps(times), flush=True)
    print("\n| engine | records | " + " | ".join(STAGES) + " | total |")
    print("| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: |")
    for engine, runs in results.items():
        for r in runs:
            total = sum(r[s] for s in STAGES)
            cells = " | ".join(f"{r[s]:.1f}" for s in STAGES)
            print(f"| {engine} | {int(r['records']):,} | {cells} | {total:.1f} |")
    print("\nfitted growth, time = a * records^b:")
    for engine, runs in results.items():
        for stage in [*STAGES, "total"]:
            pts = [
                (r["records"], sum(r[s] for s in STAGES) if stage == "total" else r[stage])
                for r in runs
            ]
            found = fit(pts)
            if found:
                print(f"  {engine:<7} {stage:<9} b = {found[1]:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
