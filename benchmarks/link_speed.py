"""Speed of ``nominal link``: a full link of N records, and an incremental run with 1% new.

Set-up (not timed): a synthetic town big enough for N records is generated, ingested
with the real ``nominal ingest``, and the silver tables are split by a hash of the
record key into 99% "earlier" and 1% "new" records. A model is trained once on the
earlier records (its training time is printed separately).

Measured, each in a fresh child process (peak resident memory is that process's own):

- **full**: ``link_lake(mode="full")`` over all N records (model already trained):
  wall seconds, peak memory, candidate pairs scored per second;
- **incremental**: on a copy of a home already linked on the 99%, the 1% are appended
  to silver and ``link_lake(mode="incremental")`` runs.

Medians of ``--runs`` runs each (default 3) and the ratio full / incremental::

    .venv/bin/python benchmarks/link_speed.py --records 1000000
    .venv/bin/python benchmarks/link_speed.py --records 100000 --runs 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

RECORDS_PER_PERSON = 7.3  # nominal synth writes about this many records per person


def _child(fn_source: str, home: str) -> dict[str, Any]:
    """Run ``fn_source`` in a fresh interpreter (spawned, never forked: a fork of a
    process that has run DuckDB threads can deadlock); returns its JSON result with
    its own peak resident memory (MiB)."""
    code = (
        f"HOME = {home!r}\n{fn_source}\n"
        "import json, resource\n"
        "RESULT['peak_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(RESULT, default=str))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


FULL = """
import time
from nominal.config import home as mk
from nominal.link.pipeline import link_lake
t = time.perf_counter()
s = link_lake(mk(HOME), mode="full")
RESULT = {"seconds": time.perf_counter() - t, "pairs": s["pairs_scored"],
          "records": s["records"], "nominals": s["nominals"], "timings": s["timings"]}
"""

INCREMENTAL = """
import time
from nominal.config import home as mk
from nominal.link.pipeline import link_lake
t = time.perf_counter()
s = link_lake(mk(HOME), mode="incremental")
RESULT = {"seconds": time.perf_counter() - t, "new": s.get("new_records"),
          "affected": s.get("affected_nominals"), "timings": s.get("timings")}
"""


def _late(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 == 0


def prepare(records: int, seed: int, work: Path) -> dict[str, Any]:
    """Synth, ingest, split 99/1; a base home (99%) and a full home (100%)."""
    import pyarrow.compute as pc

    from nominal.config import home as make_home
    from nominal.contracts.registry import add_contracts
    from nominal.engines.lake import Lake
    from nominal.ingest.api import ingest_paths
    from nominal.link import model as link_model
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate

    people = max(200, int(records / RECORDS_PER_PERSON))
    town = work / "town"
    t = time.perf_counter()
    generate(town, people, seed=seed)
    ingest_home = make_home(work / "ingested").ensure()
    add_contracts(ingest_home, town / "contracts")
    ingest_paths(ingest_home, [town / "feeds"])
    snap = Lake(ingest_home.lake).require_current()
    identity = snap.read("silver.identity")
    events = snap.read("silver.events")
    late = pc.is_in(
        identity["record_key"],
        value_set=identity.filter([_late(k) for k in identity["record_key"].to_pylist()])[
            "record_key"
        ],
    )
    late_ev = pc.is_in(events["record_key"], value_set=identity.filter(late)["record_key"])
    setup = time.perf_counter() - t

    def write(home_root: Path, parts: list[tuple[Any, Any]]) -> Any:
        home = make_home(home_root).ensure()
        shutil.copytree(ingest_home.keys, home.keys, dirs_exist_ok=True)
        shutil.copytree(ingest_home.root / "contracts", home.root / "contracts")
        lake = Lake(home.lake)
        for ident, ev in parts:
            with lake.transaction("bench silver") as tx:
                tx.append("silver.identity", [tx.write_arrow("silver.identity", ident)])
                tx.append("silver.events", [tx.write_arrow("silver.events", ev)])
                tx.commit()
        return home

    early = (identity.filter(pc.invert(late)), events.filter(pc.invert(late_ev)))
    new = (identity.filter(late), events.filter(late_ev))
    base = write(work / "base", [early])
    t = time.perf_counter()
    link_lake(base, mode="full")  # trains the model on the earlier 99%, links them
    train_and_link = time.perf_counter() - t
    full = write(work / "full", [early, new])
    shutil.copytree(base.models, full.models, dirs_exist_ok=True)
    # the "incremental" template: base already linked, then the 1% appended
    inc = work / "inc-template"
    shutil.copytree(base.root, inc)
    lake = Lake(inc / "lake")
    with lake.transaction("new delivery") as tx:
        tx.append("silver.identity", [tx.write_arrow("silver.identity", new[0])])
        tx.append("silver.events", [tx.write_arrow("silver.events", new[1])])
        tx.commit()
    return {
        "people": people,
        "records": identity.num_rows,
        "new_records": new[0].num_rows,
        "setup_seconds": round(setup, 1),
        "train_and_first_link_seconds": round(train_and_link, 1),
        "model_version": link_model.current_version(base),
        "full_home": str(full.root),
        "inc_template": str(inc),
    }


def run(records: int, seed: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="link-speed-") as tmp:
        work = Path(tmp)
        info = prepare(records, seed, work)
        print(json.dumps(info), flush=True)
        fulls, incs = [], []
        for i in range(runs):
            full = _child(FULL, info["full_home"])
            fulls.append(full)
            print(f"full run {i + 1}: {json.dumps(full)}", flush=True)
            home = work / f"inc-{i}"
            shutil.copytree(info["inc_template"], home)
            inc = _child(INCREMENTAL, str(home))
            incs.append(inc)
            print(f"incremental run {i + 1}: {json.dumps(inc)}", flush=True)
            shutil.rmtree(home)
        full_s = statistics.median(r["seconds"] for r in fulls)
        inc_s = statistics.median(r["seconds"] for r in incs)
        result = {
            **{k: v for k, v in info.items() if not k.endswith(("home", "template"))},
            "full_seconds_median": round(full_s, 2),
            "full_seconds_runs": [round(r["seconds"], 2) for r in fulls],
            "full_peak_mib": round(max(r["peak_mib"] for r in fulls)),
            "pairs_scored": fulls[0]["pairs"],
            "pairs_per_second": round(fulls[0]["pairs"] / full_s),
            "incremental_seconds_median": round(inc_s, 2),
            "incremental_seconds_runs": [round(r["seconds"], 2) for r in incs],
            "incremental_peak_mib": round(max(r["peak_mib"] for r in incs)),
            "speedup_full_over_incremental": round(full_s / inc_s, 1),
        }
        return result


@pytest.mark.benchmark
def test_link_speed_small() -> None:
    result = run(20_000, 5, 1)
    assert result["speedup_full_over_incremental"] > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = run(args.records, args.seed, args.runs)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
