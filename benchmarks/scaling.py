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

Each stage is measured three ways: its wall seconds (as ``run_pipeline`` records them),
its CPU seconds (user + system of this process and every process below it: the Spark
JVM and its Python workers, including children that ended during the stage) and the
peak resident memory of that process tree during the stage (sampled every 0.2 s). On
a shared machine CPU seconds are the steadier figure: wall time grows with other
people's load, CPU time much less. The load average is recorded before each stage.
Growth is fitted for both wall and CPU seconds.

``--json PATH`` writes the results after every engine and size (so a run stopped part
way keeps what finished); ``--merge PATH`` (repeatable) adds the results of earlier
runs to the table and the fits, e.g. sizes run one invocation at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

RECORDS_PER_PERSON = 7.0
STAGES = ["ingest", "link", "features", "score"]


class Meter:
    """CPU seconds and peak resident memory of this process and its descendants.

    CPU is user + system of each live process in the tree, plus what each has
    collected from children it waited for (so a Python worker that ends during the
    stage is still counted, in its parent's children time). Memory is the largest
    sum of resident set sizes seen by a sampler thread.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.cpu = 0.0
        self.peak = 0
        self.load = os.getloadavg()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _tree() -> list[psutil.Process]:
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    @classmethod
    def _cpu(cls) -> float:
        total = 0.0
        for p in cls._tree():
            try:
                t = p.cpu_times()
            except psutil.Error:  # ended between listing and reading
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    @classmethod
    def _rss(cls) -> int:
        total = 0
        for p in cls._tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> Meter:
        self.load = os.getloadavg()
        self._start = self._cpu()
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.cpu = self._cpu() - self._start


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


def _stages(h: Any, names: list[str], engine: str) -> dict[str, Any]:
    """Run the stages; per stage its wall seconds, and (one stage at a time) CPU and memory.

    Returns ``{stage: seconds, "cpu": {stage: s}, "peak_mib": {stage: MiB},
    "load": {stage: 1-minute load average before it}}``.
    """
    from nominal.pipeline.runner import run_pipeline

    times: dict[str, Any] = {}
    measured: dict[str, dict[str, float]] = {"cpu": {}, "peak_mib": {}, "load": {}}
    for name in names:  # one at a time so that CPU and memory belong to one stage
        with Meter() as meter:
            report = run_pipeline(h, [name], engine)
        if not report.ok:
            raise SystemExit(f"{engine} {name} failed: {report.error}")
        for s in report.stages:
            times[s["stage"]] = float(s["seconds"])
        measured["cpu"][name] = round(meter.cpu, 1)
        measured["peak_mib"][name] = round(meter.peak / 2**20)
        measured["load"][name] = round(meter.load[0], 2)
        print(
            f"  {engine} {name}: {times.get(name, 0.0):.1f}s wall, {meter.cpu:.1f}s CPU, "
            f"peak {meter.peak / 2**20:,.0f} MiB, load {meter.load[0]:.2f}",
            flush=True,
        )
    times.update(measured)
    return times


def _merge_measured(into: dict[str, Any], found: dict[str, Any]) -> None:
    """Add ``_stages`` results to a row: stage seconds at top level, the rest merged."""
    for key, value in found.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        else:
            into[key] = value


def ingested(root: Path, town_dir: Path) -> tuple[Path, dict[str, Any], int]:
    """A hub with the town's deliveries ingested; the ingest measures and the record count."""
    from nominal.contracts.registry import add_contracts
    from nominal.engines.lake import Lake
    from nominal.ingest.api import import_synth_geography

    home_dir = root / f"home-{town_dir.name}-ingested"
    done = home_dir.with_suffix(".json")
    if done.exists():  # kept by an earlier run with --keep (ingest is engine-independent)
        seen = json.loads(done.read_text())
        return home_dir, seen["measured"], int(seen["records"])
    shutil.rmtree(home_dir, ignore_errors=True)
    h = _use(home_dir)
    import_synth_geography(h, town_dir / "geography")
    add_contracts(h, town_dir / "contracts")
    for f in (town_dir / "feeds").iterdir():
        os.link(f, h.inbox / f.name)
    measured = _stages(h, ["ingest"], "duckdb")
    rows = Lake(h.lake).require_current().rows("silver.identity")
    done.write_text(json.dumps({"measured": measured, "records": rows}))
    return home_dir, measured, rows


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
    with Meter() as meter:
        results = risk.train_all(h)
    seconds = time.perf_counter() - t
    trained = [r.name for r in results if r.model is not None]
    if not trained:
        raise SystemExit("no risk model could be trained on the first size")
    print(
        f"trained {', '.join(trained)} in {seconds:.0f}s ({meter.cpu:.0f}s CPU, "
        f"peak {meter.peak / 2**20:,.0f} MiB, load {meter.load[0]:.2f})",
        flush=True,
    )
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


def _load(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows of earlier runs' ``--json`` files, by engine."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for engine, runs in json.loads(Path(path).read_text())["results"].items():
            merged.setdefault(engine, []).extend(runs)
    return merged


def _table(results: dict[str, list[dict[str, Any]]]) -> None:
    def cell(r: dict[str, Any], stage: str) -> str:
        wall = r.get(stage)
        if wall is None:
            return "failed" if stage in r.get("failed", {}) else "not run"
        cpu = r.get("cpu", {}).get(stage)
        peak = r.get("peak_mib", {}).get(stage)
        extra = "" if cpu is None else f" / {cpu:.1f}"
        extra += "" if peak is None else f" / {peak:,}"
        return f"{wall:.1f}{extra}"

    print("\nwall s / CPU s / peak MiB per stage; load = 1-minute load average before each stage")
    print("\n| engine | records | " + " | ".join(STAGES) + " | total wall / CPU | load |")
    print("| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | --- |")
    for engine, runs in results.items():
        for r in sorted(runs, key=lambda r: r["records"]):
            wall = sum(r[s] for s in STAGES if r.get(s) is not None)
            cpu = sum(r.get("cpu", {}).get(s, 0.0) for s in STAGES if r.get(s) is not None)
            cells = " | ".join(cell(r, s) for s in STAGES)
            load = ", ".join(f"{r['load'][s]:.1f}" for s in STAGES if s in r.get("load", {}))
            print(
                f"| {engine} | {int(r['records']):,} | {cells} | {wall:.1f} / {cpu:.1f} | {load} |"
            )
    print("\nfitted growth, time = a * records^b (wall; CPU):")
    for engine, runs in results.items():
        for stage in STAGES:
            done = [r for r in runs if r.get(stage) is not None]
            walls = fit([(r["records"], r[stage]) for r in done])
            cpus = fit([(r["records"], r["cpu"][stage]) for r in done if stage in r.get("cpu", {})])
            if walls:
                sizes = ", ".join(f"{int(r['records']):,}" for r in done)
                cpu_b = f"{cpus[1]:.2f}" if cpus else "-"
                print(f"  {engine:<7} {stage:<9} b = {walls[1]:.2f}; {cpu_b} over {sizes}")


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
    parser.add_argument("--json", default=None, help="write the results here as they come")
    parser.add_argument(
        "--merge", action="append", default=[], help="add an earlier run's --json results"
    )
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of the --merge files only"
    )
    args = parser.parse_args()
    if args.table_only:
        _table(_load(args.merge))
        return
    os.environ.setdefault("NOMINAL_SPARK_DRIVER_MEMORY", "4g")
    sizes = [int(s) for s in args.records.split(",")]
    towns = {int(k): Path(v) for k, v in (t.split("=", 1) for t in args.town)}
    engines = args.engines.split(",")
    root = Path(args.work or tempfile.mkdtemp(prefix="nominal-scaling-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    models = root / "models"  # trained once, on the first hub (kept for later runs)

    def save() -> None:
        if args.json:
            doc = {
                "argv": sys.argv,
                "spark_driver_memory": os.environ["NOMINAL_SPARK_DRIVER_MEMORY"],
                "cpus": os.cpu_count(),
                "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                "results": results,
            }
            Path(args.json).write_text(json.dumps(doc, indent=1))

    for size in sizes:
        t = time.perf_counter()
        town_dir = towns.get(size) or town(root, size, args.seed)
        print(f"town for ~{size:,} records ready in {time.perf_counter() - t:.0f}s", flush=True)
        base, ingest, records = ingested(root, town_dir)
        print(f"ingest {records:,} records: {ingest['ingest']:.1f}s", flush=True)
        linked_dir = root / f"home-{town_dir.name}-linked"
        if args.oracle_gold and not linked_dir.is_dir():
            oracle_linked(town_dir, base, linked_dir)
        linked: Path | None = linked_dir if linked_dir.is_dir() else None
        for engine in engines:
            home_dir = root / f"home-{town_dir.name}-{engine}"
            times: dict[str, Any] = {"records": records, "town": str(town_dir)}
            _merge_measured(times, ingest)
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
            results[engine].append(times)
            try:
                if not skip_link:
                    _merge_measured(times, _stages(h, ["link"], engine))
                    if engine == "duckdb":
                        linked = root / f"home-{town_dir.name}-linked"
                        _copy_home(home_dir, linked)
                save()
                _merge_measured(times, _stages(h, ["features"], engine))
                if not models.is_dir():
                    times["training"] = train(home_dir, models)
                else:
                    shutil.rmtree(h.models, ignore_errors=True)
                    shutil.copytree(models, h.models)
                save()
                _merge_measured(times, _stages(h, ["score"], engine))
            except SystemExit as failed:  # keep what finished; the next engine still runs
                stage = next(s for s in STAGES if s not in times)
                times.setdefault("failed", {})[stage] = str(failed)
                print(f"{engine} {stage} FAILED: {failed}", flush=True)
            save()
            print(engine, json.dumps(times), flush=True)
            shutil.rmtree(home_dir, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root / f"home-{town_dir.name}-linked", ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
            base.with_suffix(".json").unlink(missing_ok=True)

    merged = _load(args.merge)
    for engine, runs in results.items():
        merged.setdefault(engine, []).extend(runs)
    _table(merged)


if __name__ == "__main__":
    main()
