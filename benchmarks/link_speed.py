"""Speed of ``nominal link``: a full link of N records, and an incremental run with 1% new.

Set-up (not timed): a synthetic town big enough for N records is generated (or an
existing ``nominal synth`` output is taken with ``--source``), ingested with the real
``nominal ingest``, and the silver tables are split by a hash of the record key into
99% "earlier" and 1% "new" records. With ``--source`` and more records than
``--records``, whole people are kept (by a hash of the true person id, from
``truth/records.parquet``) until about ``--records`` records remain, so every kept
person keeps all their records and the duplicate structure is that of the source. A
model is trained once on the earlier records (its training time is printed
separately). ``--work DIR`` keeps the set-up for the next invocation.

Measured, each in a fresh child process (peak resident memory is that process's own):

- **full**: ``link_lake(mode="full")`` over all N records (model already trained):
  wall seconds, peak memory, candidate pairs scored per second and the time of each
  step;
- **incremental**: on a copy of a home already linked on the 99%, the 1% are appended
  to silver and ``link_lake(mode="incremental")`` runs;
- **agreement**: the incremental run's decisions against the full rebuild's: every
  pair either run kept (``gold.pairs``) with its final decision, and the clusters
  (records grouped the same way, whatever their ids);
- **blocking** (``--blocking``): candidate pairs per blocking rule and the pair recall
  of the union of rules against the synthetic truth.

Medians of ``--runs`` runs each (default 3) and the ratio full / incremental, of wall
time (of the ``link_lake`` call, and of the whole child process as the parent times
it: ``process_wall_ratio_full_over_incremental``) and of CPU time (user + system of the child: on a shared, loaded host the wall
time of a run depends on what else runs, its CPU time much less), both of the whole
child process and of the ``link_lake`` call alone (``run_cpu_seconds``: the child's
start-up and imports, alike in both, left out)::

    .venv/bin/python benchmarks/link_speed.py --records 100000 --runs 3
    .venv/bin/python benchmarks/link_speed.py --source /work/data/synth-1m \\
        --ingested /tmp/link-speed-home --records 1000000 --runs 1 \\
        --work /tmp/link-speed-1m --blocking
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


def _child(fn_source: str, home: str, threads: int | None) -> dict[str, Any]:
    """Run ``fn_source`` in a fresh interpreter (spawned, never forked: a fork of a
    process that has run DuckDB threads can deadlock); returns its JSON result with
    its own peak resident memory (MiB): ``VmHWM`` of its own address space
    (``ru_maxrss`` would carry over the parent's peak across ``exec``)."""
    code = (
        f"HOME = {home!r}\nTHREADS = {threads!r}\n{fn_source}\n"
        "import json, re, resource\n"
        "_ru = resource.getrusage(resource.RUSAGE_SELF)\n"
        "RESULT['cpu_seconds'] = _ru.ru_utime + _ru.ru_stime\n"
        "_hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())\n"
        "RESULT['peak_mib'] = int(_hwm.group(1)) / 1024\n"
        "print(json.dumps(RESULT, default=str))\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    process_seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"child failed:\n{proc.stderr[-4000:]}")
    # DuckDB may draw a progress bar on stdout (a query of more than two seconds on a
    # busy host) before the result line: the result is the last line's JSON object
    last = proc.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last[last.index("{") :])
    # the whole child process, start-up and imports included, as the parent saw it
    result["process_seconds"] = process_seconds
    return result


FULL = """
import os, threading, time
import psutil
from nominal.config import home as mk
from nominal.link.pipeline import link_lake
# peak resident memory of this process per step, sampled every 50 ms
_proc, _step, _peaks, _stop = psutil.Process(), ["start"], {}, threading.Event()
def _sample():
    while not _stop.is_set():
        rss = _proc.memory_info().rss / 2**20
        _peaks[_step[0]] = max(_peaks.get(_step[0], 0.0), rss)
        _stop.wait(0.05)
threading.Thread(target=_sample, daemon=True).start()
_cpu, _mark = {}, [sum(_proc.cpu_times()[:2])]
def _progress(name):
    # CPU seconds (all threads) from one step's start to the next step's start
    now = sum(_proc.cpu_times()[:2])
    _cpu[_step[0]] = _cpu.get(_step[0], 0.0) + now - _mark[0]
    _mark[0] = now
    _step[0] = name
import resource
_r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
s = link_lake(mk(HOME), mode="full", threads=THREADS, progress=_progress)
_progress("end")
_stop.set()
_r1 = resource.getrusage(resource.RUSAGE_SELF)
RESULT = {"seconds": time.perf_counter() - t, "pairs": s["pairs_scored"],
          "run_cpu_seconds": _r1.ru_utime + _r1.ru_stime - _r0.ru_utime - _r0.ru_stime,
          "records": s["records"], "nominals": s["nominals"], "timings": s["timings"],
          "sizes": s.get("sizes"), "step_peak_mib": {k: round(v) for k, v in _peaks.items()},
          "step_cpu_seconds": {k: round(v, 1) for k, v in _cpu.items()},
          "load_average": os.getloadavg()}
"""

INCREMENTAL = """
import time
from nominal.config import home as mk
from nominal.link.pipeline import link_lake
import resource
_r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
s = link_lake(mk(HOME), mode="incremental", threads=THREADS)
_r1 = resource.getrusage(resource.RUSAGE_SELF)
RESULT = {"seconds": time.perf_counter() - t, "new": s.get("new_records"),
          "run_cpu_seconds": _r1.ru_utime + _r1.ru_stime - _r0.ru_utime - _r0.ru_stime,
          "pairs": s.get("pairs_scored"), "affected": s.get("affected_nominals"),
          "timings": s.get("timings")}
"""


def _late(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 == 0


def _read_silver(snap: Any, truth_dir: Path | None, records: int) -> tuple[Any, Any, int]:
    """silver.identity and silver.events of the snapshot, as Arrow tables.

    With ``truth_dir`` and more than ``records`` records, only the records of whole
    true people are read, about ``records`` of them (the people with the smallest
    hash of their true id first), so no more than that is ever held in memory.
    """
    from nominal.engines import duck

    con = duck.connect(snap, tables=["silver.identity", "silver.events"])
    (total,) = con.execute("SELECT count(*) FROM silver.identity").fetchall()[0]
    where = ""
    if truth_dir is not None and total > records * 1.05:
        path = duck.sql_literal(str(truth_dir / "records.parquet"))
        con.execute(
            f"""CREATE TABLE owner AS
            SELECT i.record_key, hash(CAST(t.person_id AS VARCHAR)) % 1000000 AS bucket
            FROM silver.identity i JOIN (
                SELECT DISTINCT dataset, CAST(source_record_id AS VARCHAR) AS source_record_id,
                       person_id FROM read_parquet({path})) t
              ON t.dataset = i.dataset AND t.source_record_id = i.source_record_id"""
        )
        (cut,) = con.execute(
            f"""SELECT coalesce(max(bucket), 1000000) FROM (
                SELECT bucket, sum(n) OVER (ORDER BY bucket) AS running
                FROM (SELECT bucket, count(*) n FROM owner GROUP BY 1))
            WHERE running <= {int(records)}"""
        ).fetchall()[0]
        con.execute(f"CREATE TABLE keep AS SELECT record_key FROM owner WHERE bucket <= {int(cut)}")
        where = "WHERE record_key IN (SELECT record_key FROM keep)"
    identity = con.sql(f"SELECT * FROM silver.identity {where}").to_arrow_table()
    events = con.sql(f"SELECT * FROM silver.events {where}").to_arrow_table()
    con.close()
    return identity, events, int(total)


def prepare(
    records: int,
    seed: int,
    work: Path,
    source: Path | None,
    threads: int | None,
    ingested: Path | None = None,
    model: Path | None = None,
) -> dict[str, Any]:
    """Synth (or take ``source``), ingest, split 99/1; a base home (99%) and a full home.

    ``model``: a trained model folder (``models/linkage``) to use instead of training.
    """
    import pyarrow.compute as pc

    from nominal.config import home as make_home
    from nominal.contracts.registry import add_contracts
    from nominal.engines.lake import Lake
    from nominal.ingest.api import ingest_paths
    from nominal.link import model as link_model
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate

    done = work / "prepared.json"
    if done.exists():
        info: dict[str, Any] = json.loads(done.read_text())
        return info
    t = time.perf_counter()
    if source is None:
        people: int | None = max(200, int(records / RECORDS_PER_PERSON))
        town = work / "town"
        if not (town / "truth").is_dir():
            generate(town, people, seed=seed)
    else:
        people, town = None, source
    ingest_home = make_home(ingested or work / "ingested").ensure()
    if not Lake(ingest_home.lake).current():
        add_contracts(ingest_home, town / "contracts")
        ingest_paths(ingest_home, [town / "feeds"])
    snap = Lake(ingest_home.lake).require_current()
    identity, events, ingested = _read_silver(
        snap, town / "truth" if source is not None else None, records
    )
    late_keys = identity.filter([_late(k) for k in identity["record_key"].to_pylist()])
    late = pc.is_in(identity["record_key"], value_set=late_keys["record_key"])
    late_ev = pc.is_in(events["record_key"], value_set=late_keys["record_key"])
    setup = time.perf_counter() - t

    def write(home_root: Path, parts: list[tuple[Any, Any]]) -> Any:
        home = make_home(home_root).ensure()
        shutil.copytree(ingest_home.keys, home.keys, dirs_exist_ok=True)
        contracts = ingest_home.root / "contracts"
        shutil.copytree(
            contracts if contracts.is_dir() else town / "contracts", home.root / "contracts"
        )
        lake = Lake(home.lake)
        for ident, ev in parts:
            with lake.transaction("bench silver") as tx:
                tx.append("silver.identity", [tx.write_arrow("silver.identity", ident)])
                tx.append("silver.events", [tx.write_arrow("silver.events", ev)])
                tx.commit()
        return home

    early = (identity.filter(pc.invert(late)), events.filter(pc.invert(late_ev)))
    new = (identity.filter(late), events.filter(late_ev))
    for name in ("base", "full", "inc-template"):
        shutil.rmtree(work / name, ignore_errors=True)
    base = write(work / "base", [early])
    if model is not None:
        shutil.copytree(model, base.models / "linkage")
    t = time.perf_counter()
    link_lake(base, mode="full", threads=threads)  # trains on the earlier 99%, links them
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
    info = {
        "source": str(source) if source else f"nominal synth --people {people} --seed {seed}",
        "records_ingested": ingested,
        "records": identity.num_rows,
        "new_records": new[0].num_rows,
        "setup_seconds": round(setup, 1),
        "train_and_first_link_seconds": round(train_and_link, 1),
        "model_version": link_model.current_version(base),
        "model_from": str(model) if model else "trained on the earlier 99%",
        "truth": str(town / "truth"),
        "full_home": str(full.root),
        "inc_template": str(inc),
    }
    done.write_text(json.dumps(info))
    return info


def agreement(full_root: str, inc_root: str) -> dict[str, Any]:
    """The incremental run's decisions and clusters against the full rebuild's."""
    from nominal.config import home as make_home
    from nominal.engines import duck
    from nominal.engines.lake import Lake

    con = duck.connect()
    for name, root in (("f", full_root), ("i", inc_root)):
        snap = Lake(make_home(Path(root)).lake).require_current()
        for table in ("gold.pairs", "gold.nominal_records"):
            # the live rows: the files less any rows their deletion files list
            con.execute(
                f"CREATE VIEW {name}_{table.split('.')[1]} AS {duck.live_rows_sql(snap, table)}"
            )
    pairs, same, only_full, only_inc = con.execute(
        """SELECT count(*),
                  count(*) FILTER (f.decision = i.decision),
                  count(*) FILTER (i.record_key_l IS NULL),
                  count(*) FILTER (f.record_key_l IS NULL)
        FROM f_pairs f FULL JOIN i_pairs i USING (record_key_l, record_key_r)"""
    ).fetchall()[0]
    # Clusters: label each record by the smallest record key of its nominal.
    records, same_cluster = con.execute(
        """WITH fl AS (SELECT record_key, min(record_key) OVER (PARTITION BY nominal_id) k
                       FROM f_nominal_records),
                il AS (SELECT record_key, min(record_key) OVER (PARTITION BY nominal_id) k
                       FROM i_nominal_records)
        SELECT count(*), count(*) FILTER (fl.k = il.k)
        FROM fl FULL JOIN il USING (record_key)"""
    ).fetchall()[0]
    con.close()
    return {
        "pairs_compared": pairs,
        "pair_decisions_equal": same,
        "pair_decision_agreement": round(same / pairs, 6) if pairs else 1.0,
        "pairs_only_in_full": only_full,
        "pairs_only_in_incremental": only_inc,
        "records_compared": records,
        "records_same_cluster": same_cluster,
        "cluster_agreement": round(same_cluster / records, 6) if records else 1.0,
    }


def blocking_profile(full_root: str, truth_dir: str) -> dict[str, Any]:
    """Pairs generated per blocking rule (each net of the earlier rules, as Splink
    counts them) and the pair recall of the rules against the truth."""
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    from nominal.config import home as make_home
    from nominal.engines import duck
    from nominal.engines.lake import Lake
    from nominal.link import evaluate
    from nominal.link import settings as link_settings

    snap = Lake(make_home(Path(full_root)).lake).require_current()
    con = duck.connect(snap, tables=["link.standardised", "gold.nominal_records"])
    con.execute("CREATE TABLE std AS SELECT * FROM link.standardised")
    rules = link_settings.prediction_blocking_rules()
    t = time.perf_counter()
    counts = count_comparisons_from_blocking_rules(
        DuckDBAPI(con).register("std"),
        blocking_rules=rules,
        link_type="dedupe_only",
        record_sample_proportion=1.0,
    )
    count_seconds = time.perf_counter() - t
    evaluate.register_truth(con, Path(truth_dir))
    evaluate.cluster_metrics(con, "gold.nominal_records")
    sql = [
        str(r.get_blocking_rule("duckdb").blocking_rule_sql)
        if hasattr(r, "get_blocking_rule")
        else str(r)
        for r in rules
    ]
    recall = evaluate.blocking_recall(con, "std", sql)
    con.close()
    per_rule = [
        {
            "rule": row["blocking_rule"],
            "pairs": int(row["marginal_comparison_count"]),
            "true_pairs_found": found["true_pairs_found"],
        }
        for row, found in zip(counts, recall["per_rule"], strict=True)
    ]
    return {
        "pairs_total": sum(r["pairs"] for r in per_rule),
        "true_pairs": recall["true_pairs"],
        "true_pairs_found": recall["found"],
        "pair_recall": round(recall["recall"], 6),
        "count_seconds": round(count_seconds, 1),
        "per_rule": per_rule,
    }


def run(
    records: int,
    seed: int,
    runs: int,
    *,
    source: Path | None = None,
    work: Path | None = None,
    threads: int | None = None,
    blocking: bool = False,
    skip_incremental: bool = False,
    ingested: Path | None = None,
    model: Path | None = None,
    home: Path | None = None,
) -> dict[str, Any]:
    if home is not None:
        return full_only(home, runs, threads)
    with tempfile.TemporaryDirectory(prefix="link-speed-") as tmp:
        root = work or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        info = prepare(records, seed, root, source, threads, ingested, model)
        print(json.dumps(info), flush=True)
        fulls, incs = [], []
        agree: dict[str, Any] = {}
        for i in range(runs):
            full = _child(FULL, info["full_home"], threads)
            fulls.append(full)
            print(f"full run {i + 1}: {json.dumps(full)}", flush=True)
            if skip_incremental:
                continue
            home = root / f"inc-{i}"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(info["inc_template"], home)
            inc = _child(INCREMENTAL, str(home), threads)
            incs.append(inc)
            print(f"incremental run {i + 1}: {json.dumps(inc)}", flush=True)
            if i == 0:
                agree = agreement(info["full_home"], str(home))
                print(f"agreement: {json.dumps(agree)}", flush=True)
            shutil.rmtree(home)
        full_s = statistics.median(r["seconds"] for r in fulls)
        result: dict[str, Any] = {
            **{k: v for k, v in info.items() if not k.endswith(("home", "template"))},
            "full_seconds_median": round(full_s, 2),
            "full_seconds_runs": [round(r["seconds"], 2) for r in fulls],
            "full_peak_mib": round(max(r["peak_mib"] for r in fulls)),
            "full_cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in fulls), 2),
            "full_run_cpu_seconds_median": round(
                statistics.median(r["run_cpu_seconds"] for r in fulls), 2
            ),
            "full_timings_last_run": fulls[-1]["timings"],
            "pairs_scored": fulls[0]["pairs"],
            "pairs_per_second": round(fulls[0]["pairs"] / full_s),
            "nominals": fulls[0]["nominals"],
        }
        if incs:
            inc_s = statistics.median(r["seconds"] for r in incs)
            result |= {
                "incremental_seconds_median": round(inc_s, 2),
                "incremental_seconds_runs": [round(r["seconds"], 2) for r in incs],
                "incremental_peak_mib": round(max(r["peak_mib"] for r in incs)),
                "incremental_timings_last_run": incs[-1]["timings"],
                "speedup_full_over_incremental": round(full_s / inc_s, 2),
                # CPU seconds are far less disturbed by other processes on a shared host
                "incremental_cpu_seconds_median": round(
                    statistics.median(r["cpu_seconds"] for r in incs), 2
                ),
                "cpu_ratio_full_over_incremental": round(
                    statistics.median(r["cpu_seconds"] for r in fulls)
                    / statistics.median(r["cpu_seconds"] for r in incs),
                    2,
                ),
                # the CPU of the link_lake call alone (the child's own start-up and
                # imports, the same in both, left out)
                "incremental_run_cpu_seconds_median": round(
                    statistics.median(r["run_cpu_seconds"] for r in incs), 2
                ),
                "run_cpu_ratio_full_over_incremental": round(
                    statistics.median(r["run_cpu_seconds"] for r in fulls)
                    / statistics.median(r["run_cpu_seconds"] for r in incs),
                    2,
                ),
                # whole processes (start-up, imports and exit included): wall time
                "incremental_process_seconds_median": round(
                    statistics.median(r["process_seconds"] for r in incs), 2
                ),
                "full_process_seconds_median": round(
                    statistics.median(r["process_seconds"] for r in fulls), 2
                ),
                "process_wall_ratio_full_over_incremental": round(
                    statistics.median(r["process_seconds"] for r in fulls)
                    / statistics.median(r["process_seconds"] for r in incs),
                    2,
                ),
                "speedup_runs": [
                    round(f["seconds"] / i["seconds"], 2) for f, i in zip(fulls, incs, strict=True)
                ],
                "agreement": agree,
            }
        if blocking:
            result["blocking"] = blocking_profile(info["full_home"], info["truth"])
        return result


def full_only(home: Path, runs: int, threads: int | None) -> dict[str, Any]:
    """Full links of an existing home (silver tables ingested, a model trained), each
    in a fresh child; every run replaces the gold tables of the one before."""
    fulls = []
    for i in range(runs):
        full = _child(FULL, str(home), threads)
        fulls.append(full)
        print(f"full run {i + 1}: {json.dumps(full)}", flush=True)
    full_s = statistics.median(r["seconds"] for r in fulls)
    return {
        "home": str(home),
        "records": fulls[0]["records"],
        "full_seconds_median": round(full_s, 2),
        "full_seconds_runs": [round(r["seconds"], 2) for r in fulls],
        "full_peak_mib": round(max(r["peak_mib"] for r in fulls)),
        "full_cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in fulls), 2),
        "full_timings_last_run": fulls[-1]["timings"],
        "full_step_peak_mib_last_run": fulls[-1]["step_peak_mib"],
        "full_step_cpu_seconds_last_run": fulls[-1]["step_cpu_seconds"],
        "load_average_after_runs": [r["load_average"] for r in fulls],
        "pairs_scored": fulls[0]["pairs"],
        "pairs_per_second": round(fulls[0]["pairs"] / full_s),
        "nominals": fulls[0]["nominals"],
    }


@pytest.mark.benchmark
def test_link_speed_small() -> None:
    result = run(20_000, 5, 1)
    assert result["speedup_full_over_incremental"] > 1
    assert result["agreement"]["pair_decision_agreement"] == 1.0
    assert result["agreement"]["cluster_agreement"] == 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, help="an existing `nominal synth` output")
    parser.add_argument("--work", type=Path, help="keep (and reuse) the set-up here")
    parser.add_argument(
        "--ingested", type=Path, help="a home where --source is already ingested (read only)"
    )
    parser.add_argument("--model", type=Path, help="a trained models/linkage folder to use")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--blocking", action="store_true", help="pairs per blocking rule and pair recall"
    )
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument(
        "--home",
        type=Path,
        help="only time full links of this home (silver ingested, model trained), --runs times",
    )
    args = parser.parse_args()
    result = run(
        args.records,
        args.seed,
        args.runs,
        source=args.source,
        work=args.work,
        threads=args.threads,
        blocking=args.blocking,
        skip_incremental=args.skip_incremental,
        ingested=args.ingested,
        model=args.model,
        home=args.home,
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
