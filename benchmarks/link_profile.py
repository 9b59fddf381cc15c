"""Where an incremental link run spends its time: every DuckDB statement, timed.

Copies the incremental template a ``benchmarks/link_speed.py --work DIR`` set-up
keeps (``DIR/inc-template``: a home linked on the earlier 99% with the 1% appended to
silver), runs ``link_lake(mode="incremental")`` on the copy with every statement of
its DuckDB connections timed (wall and process CPU seconds), and prints the costliest
statements, the totals per step, and the number of statements::

    .venv/bin/python benchmarks/link_profile.py --work /work/data/w1m --runs 2 --top 40

Each run is a fresh child process (as in ``link_speed.py``); ``--runs`` runs are
summed per statement (the statement's first 160 characters, numbers kept) and the
medians of the run totals printed. A statement's time includes fetching its result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, re, resource, sys, time
import duckdb
from nominal.engines import duck

STEP = ["start"]
STATS = []

class Timed:
    def __init__(self, con):
        object.__setattr__(self, "_con", con)
    def _timed(self, name, *args, **kwargs):
        sql = args[0] if args and isinstance(args[0], str) else name
        w, c = time.perf_counter(), time.process_time()
        out = getattr(self._con, name)(*args, **kwargs)
        if name == "execute":
            out = Result(out, sql)
        STATS.append([STEP[0], " ".join(str(sql).split())[:160],
                      time.perf_counter() - w, time.process_time() - c])
        return out
    def execute(self, *a, **k):
        return self._timed("execute", *a, **k)
    def executemany(self, *a, **k):
        return self._timed("executemany", *a, **k)
    def __getattr__(self, name):
        return getattr(self._con, name)
    def __setattr__(self, name, value):
        setattr(self._con, name, value)

class Result:
    # fetching the result of an execute is timed with it
    def __init__(self, cur, sql):
        self._cur, self._sql = cur, sql
    def _fetch(self, name, *a):
        w, c = time.perf_counter(), time.process_time()
        out = getattr(self._cur, name)(*a)
        STATS[-1][2] += time.perf_counter() - w
        STATS[-1][3] += time.process_time() - c
        return out
    def fetchall(self):
        return self._fetch("fetchall")
    def fetchone(self):
        return self._fetch("fetchone")
    def __getattr__(self, name):
        return getattr(self._cur, name)

_connect = duckdb.connect
def connect(*a, **k):
    return Timed(_connect(*a, **k))
duck.duckdb.connect = connect

from nominal.config import home as mk
from nominal.link import pipeline

def progress(name):
    STEP[0] = name
_step = pipeline.RunContext.step
def step(self, name):
    STEP[0] = name
    return _step(self, name)
pipeline.RunContext.step = step

r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
threads = int(sys.argv[2]) or None
s = pipeline.link_lake(mk(sys.argv[1]), mode="incremental", threads=threads)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "cpu": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
                  "timings": s.get("timings"), "stats": STATS}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a link_speed.py --work folder")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--threads", type=int, help="DuckDB threads (default: the run's own choice)"
    )
    args = parser.parse_args()
    template = args.work / "inc-template"
    per: dict[tuple[str, str], list[float]] = {}
    steps: dict[str, list[float]] = {}
    totals, cpus, counts = [], [], []
    for i in range(args.runs):
        home = args.work / f"profile-{i}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(template, home)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(home), str(args.threads or 0)],
            capture_output=True,
            text=True,
        )
        shutil.rmtree(home, ignore_errors=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-4000:])
        last = proc.stdout.strip().splitlines()[-1]
        out = json.loads(last[last.index("{") :])
        totals.append(out["seconds"])
        cpus.append(out["cpu"])
        counts.append(len(out["stats"]))
        for step, sql, wall, cpu in out["stats"]:
            agg = per.setdefault((step, sql), [0.0, 0.0, 0])
            agg[0] += wall / args.runs
            agg[1] += cpu / args.runs
            agg[2] += 1 / args.runs
            s = steps.setdefault(step, [0.0, 0.0, 0])
            s[0] += wall / args.runs
            s[1] += cpu / args.runs
            s[2] += 1 / args.runs
        print(
            f"run {i + 1}: {out['seconds']:.2f} s wall, {out['cpu']:.2f} CPU-s, "
            f"{len(out['stats'])} statements; timings {json.dumps(out['timings'])}"
        )
    print(
        f"median: {statistics.median(totals):.2f} s wall, {statistics.median(cpus):.2f} CPU-s, "
        f"{statistics.median(counts)} statements"
    )
    print("\nper step (mean of runs): wall s, CPU s, statements")
    for step, (wall, cpu, n) in sorted(steps.items(), key=lambda kv: -kv[1][0]):
        print(f"  {wall:7.3f} {cpu:7.3f} {n:5.0f}  {step}")
    print(f"\ntop {args.top} statements (mean of runs): wall s, CPU s, times")
    ranked = sorted(per.items(), key=lambda kv: -kv[1][0])
    for (step, sql), (wall, cpu, n) in ranked[: args.top]:
        print(f"  {wall:7.3f} {cpu:7.3f} {n:3.0f}  [{step}] {sql}")


if __name__ == "__main__":
    main()
