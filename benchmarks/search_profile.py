"""One search at a time, in-process, on a big home: wall time, CPU time and a profile.

    .venv/bin/python benchmarks/search_profile.py --home /tmp/search-load/home \\
        --town /tmp/search-quality --queries 300

``--home`` is a home with gold tables and a linkage model (e.g. the million-nominal
home ``benchmarks/search_load.py`` writes); its saved search index is read (or built
and saved). Queries are corrupted descriptions of real people of ``--town`` (as in
``search_quality.py``). Prints the index load time, the median and p95 of wall time
and of the thread's CPU time per search (CPU time is what a search costs however busy
the machine is), the load average, and the functions that took the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import KINDS, corrupt, truth_people

from nominal.config import home as make_home
from nominal.engines.lake import Lake
from nominal.link import model as link_model
from nominal.link.standardise import nickname_rows
from nominal.search.engine import search
from nominal.search.query import parse_query
from nominal.search.scoring import LinkageScorer, load_linkage_model
from nominal.search.service import cached_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/search-load/home"))
    parser.add_argument("--town", type=Path, default=Path("/tmp/search-quality"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    home = make_home(args.home)
    scorer = LinkageScorer(load_linkage_model(home))
    t = time.perf_counter()
    index = cached_index(
        home, Lake(home.lake).require_current(), scorer, link_model.current_version(home)
    )
    print(f"index of {index.size:,} nominals ready in {time.perf_counter() - t:.1f} s")
    people = [
        p
        for p in truth_people(args.town / "synth", make_home(args.town / "home"))
        if p["given_name"] and p["family_name"] and p["dob"] and p["postcode"]
    ]
    nicknames: dict[str, list[str]] = defaultdict(list)
    for name, canonical in nickname_rows():
        if name != canonical:
            nicknames[canonical].append(name)
    rng = random.Random(args.seed)
    queries = []
    for i in range(args.queries):
        person = rng.choice(people)
        kind = KINDS[i % len(KINDS)]
        if kind == "nickname" and person["given_name"].lower() not in nicknames:
            kind = "typo"
        queries.append(parse_query(**corrupt(person, kind, nicknames, rng)))
    for query in queries[:20]:
        search(index, query, limit=10)
    wall, cpu = [], []
    for query in queries:
        t, c = time.perf_counter(), time.thread_time()
        search(index, query, limit=10)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    wall.sort()
    cpu.sort()

    def p95(values: list[float]) -> float:
        return values[int(0.95 * len(values))] * 1000

    print(f"{len(queries)} searches: wall median {statistics.median(wall) * 1000:.1f} ms, "
          f"p95 {p95(wall):.1f} ms; CPU median {statistics.median(cpu) * 1000:.1f} ms, "
          f"p95 {p95(cpu):.1f} ms; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    profile = cProfile.Profile()
    profile.enable()
    for query in queries:
        search(index, query, limit=10)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
