"""Blocking at scale: profiles, profile pairs, record pairs and pair recall.

Takes the silver records of an ingested home (``--ingested``), keeps whole true people
(``truth/records.parquet`` of ``--source``) until about ``--records`` records remain
(as ``benchmarks/link_speed.py`` does), standardises them, groups them into profiles
and blocks the profiles with the shipped rules (:mod:`nominal.link.blocking`), then
prints the profile pairs per rule, the record pairs they stand for and the share of
true pairs generated (pair recall). No model and no scoring: this is the part of a
link run that decides how much work the scoring does and how many true pairs it can
ever find::

    .venv/bin/python benchmarks/link_blocking.py --source /work/data/synth-1m \\
        --ingested /tmp/link-speed-home --records 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def run(source: Path, ingested: Path, records: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    import link_speed

    from nominal.config import home as make_home
    from nominal.engines import duck
    from nominal.engines.lake import Lake
    from nominal.link import blocking
    from nominal.link.standardise import register_nicknames, standardise_sql

    snap = Lake(make_home(ingested).lake).require_current()
    identity, _events, _total = link_speed._read_silver(snap, source / "truth", records)
    con = duck.connect(memory_limit="3GB")
    con.register("ident_arrow", identity)
    con.execute("CREATE TABLE ident AS SELECT * FROM ident_arrow")
    del identity
    register_nicknames(con)
    present = {r[0] for r in con.execute("DESCRIBE ident").fetchall()}
    con.execute(f"CREATE TABLE std_all AS {standardise_sql('ident', present)}")
    truth = duck.sql_literal(str(source / "truth" / "records.parquet"))
    con.execute(
        f"""CREATE TABLE person AS SELECT i.record_key, t.person_id FROM ident i
        JOIN (SELECT DISTINCT dataset, CAST(source_record_id AS VARCHAR) AS source_record_id,
                     CAST(person_id AS VARCHAR) AS person_id FROM read_parquet({truth})) t
          ON t.dataset = i.dataset AND t.source_record_id = i.source_record_id"""
    )
    t = time.perf_counter()
    sizes = blocking.build_profiles(con, "std_all")
    profile_seconds = time.perf_counter() - t
    rules = blocking.rule_sqls()
    t = time.perf_counter()
    pairs = blocking.block(con, rules)
    block_seconds = time.perf_counter() - t
    (record_pairs,) = con.execute(
        f"""SELECT sum(CASE WHEN join_key_l = join_key_r THEN a.size * (a.size - 1) / 2
                           ELSE a.size * b.size END)
        FROM {blocking.BLOCKED} p JOIN {blocking.PROFILES} a ON a.unique_id = p.join_key_l
        JOIN {blocking.PROFILES} b ON b.unique_id = p.join_key_r"""
    ).fetchall()[0]
    # a true record pair is generated when its pair of profiles is
    total, found = con.execute(
        f"""WITH tp AS (
            SELECT least(ma.profile_id, mb.profile_id) AS p1,
                   greatest(ma.profile_id, mb.profile_id) AS p2
            FROM person a JOIN person b
              ON a.person_id = b.person_id AND a.record_key < b.record_key
            JOIN {blocking.MEMBERS} ma ON ma.record_key = a.record_key
            JOIN {blocking.MEMBERS} mb ON mb.record_key = b.record_key),
        bp AS (SELECT DISTINCT least(join_key_l, join_key_r) AS p1,
                      greatest(join_key_l, join_key_r) AS p2 FROM {blocking.BLOCKED})
        SELECT count(*), count(bp.p1) FROM tp LEFT JOIN bp USING (p1, p2)"""
    ).fetchall()[0]
    per_rule = con.execute(
        f"SELECT match_key, count(*) FROM {blocking.BLOCKED} GROUP BY 1 "
        "ORDER BY CAST(match_key AS INTEGER)"
    ).fetchall()
    con.close()
    return {
        "records": sizes["records"],
        "profiles": sizes["profiles"],
        "profiles_seconds": round(profile_seconds, 1),
        "profile_pairs": pairs,
        "blocking_seconds": round(block_seconds, 1),
        "record_pairs": int(record_pairs),
        "true_pairs": int(total),
        "true_pairs_found": int(found),
        "pair_recall": round(found / total, 6) if total else 1.0,
        "profile_pairs_per_rule": [
            {"rule": rules[int(k)], "profile_pairs": int(n)} for k, n in per_rule
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a `nominal synth` output")
    parser.add_argument("--ingested", type=Path, required=True, help="a home it is ingested in")
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(run(args.source, args.ingested, args.records), indent=1))


if __name__ == "__main__":
    sys.exit(main())
