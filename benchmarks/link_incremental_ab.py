"""Incremental link runs of two versions of the code, alternated on the same delivery.

On a shared, loaded machine a run's time depends on what else runs; comparing two
versions of the code run minutes apart compares the load as much as the code. This
takes the incremental template a ``benchmarks/link_speed.py --work DIR`` set-up keeps
(``DIR/inc-template``: a home linked on the earlier 99% with the 1% appended), and runs
``link_lake(mode="incremental")`` on a fresh copy of it, in a fresh child process, with
the code of ``--before`` (a ``src`` folder, e.g. of a ``git worktree`` of main) and
with this checkout's, one after the other, ``--runs`` times. It prints every run's
wall and CPU seconds (of the ``link_lake`` call, and of the whole child process) and
the medians::

    git worktree add --detach /tmp/before main
    .venv/bin/python benchmarks/link_incremental_ab.py --work DIR --before /tmp/before/src --runs 5

Both versions must read the template (a home linked by either is fine: a run of the
newer code records what silver it read, and older code ignores that record).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from nominal.config import home as mk
from nominal.link import pipeline
r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
s = pipeline.link_lake(mk(sys.argv[1]), mode="incremental")
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "cpu": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
                  "process_cpu": r1.ru_utime + r1.ru_stime,
                  "new": s.get("new_records"), "affected": s.get("affected_nominals"),
                  "module": pipeline.__file__}))
"""


def run_once(template: Path, home: Path, src: Path | None) -> dict[str, float]:
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    env = dict(os.environ)
    if src is not None:  # the other version's modules first on the path
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(home)], capture_output=True, text=True, env=env
    )
    process = time.perf_counter() - started
    shutil.rmtree(home, ignore_errors=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-4000:])
    last = proc.stdout.strip().splitlines()[-1]
    out: dict[str, float] = json.loads(last[last.index("{") :])
    out["process_seconds"] = process
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a link_speed.py --work folder")
    parser.add_argument("--before", type=Path, required=True, help="src folder of the older code")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    template = args.work / "inc-template"
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.runs):
        for name, src in (("before", args.before), ("after", None)):
            out = run_once(template, args.work / f"ab-{name}", src)
            out["load"] = os.getloadavg()[0]
            results[name].append(out)
            print(f"run {i + 1} {name}: {json.dumps(out)}", flush=True)
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            key: round(statistics.median(r[key] for r in runs), 2)
            for key in ("seconds", "cpu", "process_seconds", "process_cpu")
        }
    summary["after_over_before"] = {
        key: round(summary["after"][key] / summary["before"][key], 3)
        for key in ("seconds", "cpu", "process_seconds", "process_cpu")
    }
    summary["load_average_range"] = [
        round(min(r["load"] for rs in results.values() for r in rs), 1),
        round(max(r["load"] for rs in results.values() for r in rs), 1),
    ]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
