"""Stage times as the data grows, on DuckDB and on Spark (local[2]), with fitted growth.

Run: ``.venv/bin/python benchmarks/scaling.py --records 100000,1000000 --engines duckdb,spark``

For each size a synthetic town is generated with about that many feed records
(``nominal synth``; about 7 records per person) unless ``--town SIZE=PATH`` names one
already generated. Its deliveries are ingested once (ingest runs on the driver with
DuckDB whatever the engine, so both engines start from the same silver tables), and
for each engine a copy of that hub runs ``link, features, score`` through the
orchestrator (``run_pipeline``), so the times are what ``nominal run`` records in the
control plane. The risk models are trained once, on the first size's DuckDB hub
after its features (training runs on the driver on either engine; its time is
printed apart), and every hub scores with them.

``--spark-link-max N``: above N records Spark's link stage is not run (on a shared
2-core machine it can take hours); Spark's features and score then run on a copy of
the DuckDB-linked lake and the table says so. ``--oracle-gold`` skips linkage on
both engines (gold tables from the town's truth) to time features and score alone at
sizes where linkage does not fit the machine. The growth of each stage is fitted as
time = a * records^b (least squares on logs); b near 1 is linear.
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
from typing import Any

RECORDS_PER_PERSON = 7.0
STAGES = ["ingest", "link", "features", "score"]


def town(root: Path, records: int, seed: int) -> Path:
    from nominal.synth import generate

    out = root / f"town-{records}"
    if not (out / "feeds").is_dir():
        generate(out, max(100, int(records / RECORDS_PER_PERSON)), seed=seed)
    return out


def _copy_home(src: Path, dst: Path) -> None:
    """A copy of a hub home: files changed in place copied, the rest hard-linked.

    Lake data files, deliveries and manifests are never changed once written (a new
    snapshot writes new files and replaces ``CURRENT`` by rename), so links are safe;
    the control plane's database, logs and lock files are copied.
    """

    def copy(s: str, d: str) -> None:
        name = os.path.basename(s)
        if name.endswith((".db", ".sqlite", ".sqlite3", "-wal", "-shm", ".log", "lock")):
            shutil.copy2(s, d)
        else:
            os.link(s, d)

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, copy_function=copy)


def _use(home_dir: Path) -> Any:
    from nominal.config import home

    os.environ["NOMINAL_HOME"] = str(home_dir)
    os.environ.pop("NOMINAL_DATABASE_URL", None)
    return home(home_dir).ensure()


def _stages(h: Any, names: list[str], engine: str) -> dict[str, float]:
    from nominal.pipeline.runner import run_pipeline

    report = run_pipeline(h, names, engine)
    if not report.ok:
        raise SystemExit(f"{engine} {names} failed: {report.error}")
    times = {s["stage"]: float(s["seconds"]) for s in report.stages}
    print(f"  {engine} {json.dumps(times)}", flush=True)
    return times


def ingested(root: Path, town_dir: Path) -> tuple[Path, float, int]:
    """A hub with the town's deliveries ingested; the ingest time and the record count."""
    from nominal.contracts.registry import add_contracts
    from nominal.engines.lake import Lake
    from nominal.ingest.api import import_synth_geography

    home_dir = root / f"home-{town_dir.name}-ingested"
    done = home_dir.with_suffix(".json")
    if done.exists():  # kept by an earlier run with --keep (ingest is engine-independent)
        seen = json.loads(done.read_text())
        return home_dir, float(seen["seconds"]), int(seen["records"])
    shutil.rmtree(home_dir, ignore_errors=True)
    h = _use(home_dir)
    import_synth_geography(h, town_dir / "geography")
    add_contracts(h, town_dir / "contracts")
    for f in (town_dir / "feeds").iterdir():
        os.link(f, h.inbox / f.name)
    seconds = _stages(h, ["ingest"], "duckdb")["ingest"]
    rows = Lake(h.lake).require_current().rows("silver.identity")
    done.write_text(json.dumps({"seconds": seconds, "records": rows}))
    return home_dir, seconds, rows


def oracle_linked(town_dir: Path, base: Path, out: Path) -> Path:
    """The ingested hub with gold tables from the town's truth (perfect linkage)."""
    from nominal.insight.oracle import gold_from_truth

    _copy_home(base, out)
    t = time.perf_counter()
    gold_from_truth(town_dir, _use(out))
    print(f"oracle gold in {time.perf_counter() - t:.0f}s (not a pipeline stage)", flush=True)
    return out


def train(home_dir: Path, keep: Path) -> float:
    """Train the risk models on this hub and keep a copy of them at ``keep``."""
    from nominal.insight import risk

    h = _use(home_dir)
    t = time.perf_counter()
    results = risk.train_all(h)
    seconds = time.perf_counter() - t
    trained = [r.name for r in results if r.model is not None]
    if not trained:
        raise SystemExit("no risk model could be trained on the first size")
    print(f"trained {', '.join(trained)} in {seconds:.0f}s", flush=True)
    shutil.copytree(h.models, keep)
    return seconds


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
    parser.add_argument("--town", action="append", default=[], help="SIZE=PATH of a town")
    parser.add_argument("--spark-link-max", type=int, default=None)
    parser.add_argument(
        "--oracle-gold",
        action="store_true",
        help="skip linkage: features and score on gold built from the town's truth",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", default=None)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the ingested and DuckDB-linked hubs (a later run with the same --work "
        "reuses them, e.g. to run the engines one after the other)",
    )
    args = parser.parse_args()
    os.environ.setdefault("NOMINAL_SPARK_DRIVER_MEMORY", "4g")
    sizes = [int(s) for s in args.records.split(",")]
    towns = {int(k): Path(v) for k, v in (t.split("=", 1) for t in args.town)}
    engines = args.engines.split(",")
    root = Path(args.work or tempfile.mkdtemp(prefix="nominal-scaling-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    models = root / "models"  # trained once, on the first hub (kept for later runs)
    for size in sizes:
        t = time.perf_counter()
        town_dir = towns.get(size) or town(root, size, args.seed)
        print(f"town for ~{size:,} records ready in {time.perf_counter() - t:.0f}s", flush=True)
        base, ingest_s, records = ingested(root, town_dir)
        print(f"ingest {records:,} records: {ingest_s:.1f}s", flush=True)
        linked: Path | None = root / f"home-{town_dir.name}-linked"
        if args.oracle_gold and not linked.is_dir():
            linked = oracle_linked(town_dir, base, linked)
        if not linked.is_dir():
            linked = None
        for engine in engines:
            home_dir = root / f"home-{town_dir.name}-{engine}"
            times: dict[str, Any] = {"records": records, "ingest": ingest_s}
            skip_link = args.oracle_gold or (
                engine == "spark"
                and args.spark_link_max is not None
                and records > args.spark_link_max
                and linked is not None
            )
            _copy_home(linked if skip_link and linked else base, home_dir)
            if skip_link and not args.oracle_gold:
                print(f"spark: link not run ({records:,} > --spark-link-max)", flush=True)
            h = _use(home_dir)
            if args.oracle_gold:
                times["link"] = None
                times["note"] = "link not run: features and score on oracle gold"
            elif skip_link:
                times["link"] = None
                times["note"] = (
                    "link not run on Spark; features and score on the DuckDB-linked lake"
                )
            else:
                times.update(_stages(h, ["link"], engine))
                if engine == "duckdb":
                    linked = root / f"home-{town_dir.name}-linked"
                    _copy_home(home_dir, linked)
            times.update(_stages(h, ["features"], engine))
            if not models.is_dir():
                times["training"] = train(home_dir, models)
            else:
                shutil.rmtree(h.models, ignore_errors=True)
                shutil.copytree(models, h.models)
            times.update(_stages(h, ["score"], engine))
            results[engine].append(times)
            print(engine, json.dumps(times), flush=True)
            shutil.rmtree(home_dir, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root / f"home-{town_dir.name}-linked", ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
            base.with_suffix(".json").unlink(missing_ok=True)

    def cell(value: Any) -> str:
        return "not run" if value is None else f"{value:.1f}"

    print("\n| engine | records | " + " | ".join(STAGES) + " | total |")
    print("| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: |")
    for engine, runs in results.items():
        for r in runs:
            total = sum(r[s] for s in STAGES if r.get(s) is not None)
            cells = " | ".join(cell(r.get(s)) for s in STAGES)
            print(f"| {engine} | {int(r['records']):,} | {cells} | {total:.1f} |")
    print("\nfitted growth, time = a * records^b:")
    for engine, runs in results.items():
        for stage in STAGES:
            pts = [(r["records"], r[stage]) for r in runs if r.get(stage) is not None]
            found = fit(pts)
            if found:
                print(f"  {engine:<7} {stage:<9} b = {found[1]:.2f} over {len(pts)} sizes")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
