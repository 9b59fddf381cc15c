"""Search quality on a synthetic town: is the true person first, or in the top five?

Takes random people from the synthetic truth, corrupts what a practitioner would know
about them in one of four ways (a typo in a name, a nickname for the given name, only
the year of birth, only the postcode sector), searches, and reports how often the
golden nominal holding most of that person's records comes first and in the top five.

    .venv/bin/python benchmarks/search_quality.py --people 10000 --queries 1000

The town is synthesised, ingested and linked (real ``nominal link``, Splink model
trained on it) into ``--work`` unless it is already there.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from nominal.config import home as make_home
from nominal.engines.lake import Lake
from nominal.link.standardise import nickname_rows
from nominal.search.engine import search
from nominal.search.index import build_index
from nominal.search.query import parse_query
from nominal.search.scoring import LinkageScorer, load_linkage_model

KINDS = ("typo", "nickname", "birth_year_only", "postcode_sector_only")


def build_town(work: Path, people: int, seed: int) -> tuple[Path, Any]:
    synth = work / "synth"
    home = make_home(work / "home").ensure()
    if not (synth / "truth").exists():
        from nominal.synth import generate

        t = time.perf_counter()
        generate(synth, people, seed=seed)
        print(f"synthesised {people} people in {time.perf_counter() - t:.0f} s")
    if Lake(home.lake).current() is None or not Lake(home.lake).require_current().has(
        "gold.nominals"
    ):
        from nominal.ingest.api import ingest_paths
        from nominal.link.pipeline import link_lake

        t = time.perf_counter()
        ingest_paths(home, [synth / "feeds"], contracts=synth / "contracts")
        link_lake(home)
        print(f"ingested and linked in {time.perf_counter() - t:.0f} s")
    return synth, home


def truth_people(synth: Path, home: Any) -> list[dict[str, Any]]:
    """People known to at least one agency, with their true nominal (most of their records)."""
    from nominal.engines import duck

    con = duck.connect(Lake(home.lake).require_current())
    truth = synth / "truth"
    con.execute(f"CREATE VIEW t_records AS SELECT * FROM '{truth}/records.parquet'")
    con.execute(f"CREATE VIEW t_people AS SELECT * FROM '{truth}/people.parquet'")
    con.execute(f"CREATE VIEW t_res AS SELECT * FROM '{truth}/residence.parquet'")
    con.execute(f"CREATE VIEW t_addr AS SELECT * FROM '{truth}/addresses.parquet'")
    rows = con.execute(
        """
        WITH rec AS (
          SELECT DISTINCT r.person_id, g.nominal_id
          FROM t_records r JOIN gold.nominal_records g
            ON g.dataset = r.dataset AND g.source_record_id = r.source_record_id),
        counts AS (SELECT person_id, nominal_id, count(*) AS n FROM rec GROUP BY ALL),
        best AS (SELECT person_id, arg_max(nominal_id, n) AS nominal_id,
                        count(*) AS nominals FROM counts GROUP BY person_id),
        home AS (SELECT person_id, arg_max(address_id, from_date) AS address_id
                 FROM t_res GROUP BY person_id)
        SELECT p.person_id, p.given_name, p.family_name, CAST(p.date_of_birth AS VARCHAR),
               a.postcode, b.nominal_id, b.nominals
        FROM t_people p JOIN best b USING (person_id)
        JOIN home h USING (person_id) JOIN t_addr a USING (address_id)
        ORDER BY p.person_id
        """
    ).fetchall()
    names = ["person_id", "given_name", "family_name", "dob", "postcode", "nominal_id", "nominals"]
    return [dict(zip(names, r, strict=True)) for r in rows]


def typo(word: str, rng: random.Random) -> str:
    """One keying error: a substituted, dropped, doubled or transposed letter."""
    if len(word) < 3:
        return word + rng.choice("aeiou")
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("sub", "drop", "double", "swap"))
    if kind == "sub":
        return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + word[i + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def corrupt(
    person: dict[str, Any], kind: str, nicknames: dict[str, list[str]], rng: random.Random
) -> dict[str, Any]:
    query = {
        "given_name": person["given_name"],
        "family_name": person["family_name"],
        "dob": person["dob"],
        "postcode": person["postcode"],
    }
    if kind == "typo":
        field = rng.choice(("given_name", "family_name"))
        query[field] = typo(query[field], rng)
    elif kind == "nickname":
        query["given_name"] = rng.choice(nicknames[person["given_name"].lower()]).title()
    elif kind == "birth_year_only":
        query["dob"] = person["dob"][:4]
    elif kind == "postcode_sector_only":
        query["postcode"] = person["postcode"][:-2]
    return query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/nominal-search-quality"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    synth, home = build_town(args.work, args.people, args.seed)
    t = time.perf_counter()
    index = build_index(Lake(home.lake).require_current(), LinkageScorer(load_linkage_model(home)))
    print(f"index of {index.size} golden nominals built in {time.perf_counter() - t:.1f} s")
    people = [
        p
        for p in truth_people(synth, home)
        if p["given_name"] and p["family_name"] and p["dob"] and p["postcode"]
    ]
    split = sum(1 for p in people if p["nominals"] > 1) / len(people)
    nicknames: dict[str, list[str]] = defaultdict(list)
    for name, canonical in nickname_rows():
        if name != canonical:
            nicknames[canonical].append(name)
    with_nick = [p for p in people if p["given_name"].lower() in nicknames]
    per_kind = args.queries // len(KINDS)
    first: Counter[str] = Counter()
    top5: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    times: list[float] = []
    misses: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for kind in KINDS:
        pool = with_nick if kind == "nickname" else people
        for person in rng.sample(pool, min(per_kind, len(pool))):
            query = corrupt(person, kind, nicknames, rng)
            t = time.perf_counter()
            hits = search(index, parse_query(**query), limit=5).hits
            times.append(time.perf_counter() - t)
            ids = [h.nominal_id for h in hits]
            counts[kind] += 1
            first[kind] += int(bool(ids) and ids[0] == person["nominal_id"])
            top5[kind] += int(person["nominal_id"] in ids)
            if person["nominal_id"] not in ids and len(misses) < 8:
                misses.append((kind, query, person))
    total = sum(counts.values())
    print(f"\n{total} queries on {len(people)} people known to agencies "
          f"({split:.1%} of them split over more than one nominal by linkage)")  # fmt: skip
    print(f"{'corruption':<24}{'queries':>8}{'first':>9}{'top 5':>9}")
    for kind in KINDS:
        n = counts[kind]
        print(f"{kind:<24}{n:>8}{first[kind] / n:>9.1%}{top5[kind] / n:>9.1%}")
    print(
        f"{'all':<24}{total:>8}{sum(first.values()) / total:>9.1%}{sum(top5.values()) / total:>9.1%}"
    )
    times.sort()
    print(f"\nin-process search time: median {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {times[int(0.95 * len(times))] * 1000:.1f} ms")  # fmt: skip
    for kind, query, person in misses:
        print(f"missed ({kind}): {query} -> {person['nominal_id']}")


if __name__ == "__main__":
    main()
