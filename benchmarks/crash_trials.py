"""Kill -9 the pipeline at random points, many times, and prove nothing is lost.

    python benchmarks/crash_trials.py [--people 300] [--trials 30] [--stages ingest,link,score]
        [--seed 1] [--keep DIR]

For each stage (``nominal ingest``, ``nominal link``, ``nominal risk score``) a
reference home runs the command once to completion, untouched; a trial home then runs
the same command in a subprocess again and again, each time sending SIGKILL after a
random delay drawn from the reference duration. After every kill:

* the lake's current snapshot (and every snapshot in its history) is readable and
  consistent: each data file the manifest lists exists and the Parquet row counts add
  up to the manifest's row count per table;
* the control plane (SQLite) passes ``PRAGMA integrity_check`` and the audit chain
  verifies.

Then the command runs to completion and its tables must equal the reference's: same
row counts and no key duplicated or lost (``silver.identity`` record keys,
``silver.events`` event keys, ``gold.nominal_records`` record keys, ``gold.scores``
units). It prints trials, kills that landed mid-run, and failures (target zero), and
exits 1 on any failure. ``tests/security/test_crash_safety.py`` runs a few trials.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

# table -> key column counted distinct (compared with the reference run)
KEYS = {
    "silver.identity": "record_key",
    "silver.events": "event_key",
    "silver.quarantine": None,
    "silver.deliveries": "delivery_id",
    "silver.documents": "document_id",
    "gold.nominal_records": "record_key",
    "gold.nominals": "nominal_id",
    "gold.scores": None,
}
# tables whose key must also be unique (an event id can name several people's rows)
UNIQUE = {"silver.identity", "silver.deliveries", "silver.documents", "gold.nominal_records",
          "gold.nominals"}  # fmt: skip
COMMANDS = {
    "ingest": ["ingest", "{feeds}", "{documents}", "--json"],
    "link": ["link", "--json"],
    "score": ["risk", "score", "--json"],
}
TABLES = {
    "ingest": ["silver.identity", "silver.events", "silver.quarantine", "silver.deliveries",
               "silver.documents"],
    "link": ["gold.nominal_records", "gold.nominals"],
    "score": ["gold.scores"],
}  # fmt: skip


@dataclass
class StageResult:
    stage: str
    trials: int = 0
    killed_mid_run: int = 0
    finished_before_kill: int = 0
    failures: list[str] = field(default_factory=list)
    reference_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMINAL_")}
    env["NOMINAL_HOME"] = str(home)
    return env


def nominal(home: Path, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nominal.cli", *args],
        env=env_for(home), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def prepare(home: Path, synthetic: Path, people: int, seed: int, train: bool) -> None:
    """A home with geography and contracts registered (and, for scoring, linked and trained)."""
    from nominal.config import home as make_home
    from nominal.contracts.registry import add_contracts
    from nominal.ingest.api import import_synth_geography

    h = make_home(home).ensure()
    import_synth_geography(h, synthetic / "geography")
    add_contracts(h, synthetic / "contracts")


def check_lake(home: Path) -> list[str]:
    """Problems with the lake's current snapshot and its history (empty list: consistent)."""
    from nominal.engines.lake import Lake, LakeError

    problems: list[str] = []
    lake = Lake(home / "lake")
    try:
        history = lake.history()
    except (LakeError, json.JSONDecodeError, KeyError, OSError) as exc:
        return [f"history unreadable: {exc}"]
    for snap in history:
        for table, entry in snap.tables.items():
            rows = 0
            for rel in entry.files:
                path = lake.root / rel
                if not path.exists():
                    problems.append(f"{snap.id}: {table}: missing file {rel}")
                    continue
                try:
                    rows += pq.ParquetFile(path).metadata.num_rows
                except Exception as exc:
                    problems.append(f"{snap.id}: {table}: unreadable {rel}: {exc}")
            # the manifest counts live rows: the files' rows less the deleted ones
            for rel in entry.deletes:
                path = lake.root / rel
                if not path.exists():
                    problems.append(f"{snap.id}: {table}: missing deletion file {rel}")
                    continue
                rows -= pq.ParquetFile(path).metadata.num_rows
            if rows != entry.rows and not any("missing" in p for p in problems):
                problems.append(
                    f"{snap.id}: {table}: files hold {rows} rows, manifest {entry.rows}"
                )
    return problems


def check_control_plane(home: Path) -> list[str]:
    problems: list[str] = []
    db = home / "control.db"
    if db.exists():
        with sqlite3.connect(db) as con:
            result = con.execute("PRAGMA integrity_check").fetchone()
        if not result or result[0] != "ok":
            problems.append(f"control.db integrity_check: {result}")
        verify = nominal(home, ["audit", "verify", "--json"], timeout=300)
        if verify.returncode != 0:
            problems.append(f"audit verify failed: {(verify.stdout + verify.stderr)[-500:]}")
    return problems


def fingerprint(home: Path, tables: list[str]) -> dict[str, dict[str, int]]:
    """Row count and distinct key count per table of the current snapshot."""
    import duckdb

    from nominal.engines.lake import Lake

    snap = Lake(home / "lake").current()
    out: dict[str, dict[str, int]] = {}
    if snap is None:
        return out
    con = duckdb.connect()
    for table in tables:
        files = [str(f) for f in snap.files(table)]
        if not files:
            out[table] = {"rows": 0, "keys": 0}
            continue
        key = KEYS.get(table)
        if table == "gold.scores":
            key = "model || '|' || unit_type || '|' || unit_id || '|' || CAST(as_of AS VARCHAR)"
        distinct = f"count(DISTINCT {key})" if key else "count(*)"
        from nominal.engines import duck

        # the live rows: the files less any rows their deletion files list
        row = con.execute(
            f"SELECT count(*), {distinct} FROM ({duck.live_rows_sql(snap, table)})"
        ).fetchone()
        out[table] = {"rows": int(row[0]), "keys": int(row[1])} if row else {}
    con.close()
    return out


def kill_after(home: Path, args: list[str], delay: float) -> bool:
    """Start the command, SIGKILL it after ``delay`` s; True if it was still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nominal.cli", *args],
        env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def run_stage(
    stage: str, ref: Path, trial: Path, synthetic: Path, trials: int, rng: random.Random
) -> StageResult:
    args = [a.format(feeds=synthetic / "feeds", documents=synthetic / "documents")
            for a in COMMANDS[stage]]  # fmt: skip
    result = StageResult(stage)
    t0 = time.perf_counter()
    done = nominal(ref, args)
    result.reference_seconds = round(time.perf_counter() - t0, 2)
    if done.returncode != 0:
        result.failures.append(f"reference run failed: {done.stderr[-800:]}")
        return result
    # The state before the stage: a trial whose run finished before the kill starts the
    # next trial from here again, so every kill lands in a real run, not a no-op re-run.
    base = trial.with_name(trial.name + "-base")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(trial, base, symlinks=True)
    for i in range(trials):
        delay = rng.uniform(0.2, result.reference_seconds * 1.1)
        killed = kill_after(trial, args, delay)
        result.trials += 1
        if killed:
            result.killed_mid_run += 1
        else:
            result.finished_before_kill += 1
        for problem in check_lake(trial):
            result.failures.append(f"trial {i} (kill at {delay:.2f}s): {problem}")
        print(f"  {stage} trial {i + 1}/{trials}: kill at {delay:5.2f}s "
              f"{'mid-run' if killed else 'after it finished'}; lake consistent: "
              f"{not result.failures}", flush=True)  # fmt: skip
        if not killed:
            shutil.rmtree(trial)
            shutil.copytree(base, trial, symlinks=True)
    for problem in check_control_plane(trial):
        result.failures.append(problem)
    final = nominal(trial, args)
    if final.returncode != 0:
        result.failures.append(f"re-run after the kills failed: {final.stderr[-800:]}")
        return result
    for problem in check_lake(trial):
        result.failures.append(f"after the re-run: {problem}")
    want, got = fingerprint(ref, TABLES[stage]), fingerprint(trial, TABLES[stage])
    for table in TABLES[stage]:
        w, g = want.get(table), got.get(table)
        if w != g:
            result.failures.append(f"{table}: reference {w}, after kills and re-run {g}")
        elif g and table in UNIQUE and g["rows"] != g["keys"]:
            result.failures.append(f"{table}: {g['rows']} rows but {g['keys']} distinct keys")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--stages", default="ingest,link,score")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="nominal-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    synthetic = work / "synthetic"
    if not (synthetic / "feeds").is_dir():
        made = subprocess.run(
            [sys.executable, "-m", "nominal.cli", "synth", "--people", str(args.people),
             "--seed", "7", "--out", str(synthetic)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            print(made.stderr, file=sys.stderr)
            return 2
    ref, trial = work / "reference", work / "trial"
    for h in (ref, trial):
        prepare(h, synthetic, args.people, args.seed, train="score" in stages)
    results = []
    for stage in stages:
        if stage == "score":
            for h in (ref, trial):  # scoring needs trained models; training is not killed
                trained = nominal(h, ["risk", "train", "--json"])
                if trained.returncode != 0:
                    print(f"risk train failed: {trained.stderr[-800:]}", file=sys.stderr)
                    return 2
        print(f"{stage}: {args.trials} kill -9 trials", flush=True)
        r = run_stage(stage, ref, trial, synthetic, args.trials, rng)
        results.append(r)
        print(f"{stage}: reference {r.reference_seconds}s, trials {r.trials}, killed mid-run "
              f"{r.killed_mid_run}, failures {len(r.failures)}", flush=True)  # fmt: skip
        for f in r.failures:
            print(f"  FAILURE {f}", flush=True)
    total_failures = sum(len(r.failures) for r in results)
    summary = {
        "trials": sum(r.trials for r in results),
        "killed_mid_run": sum(r.killed_mid_run for r in results),
        "failures": total_failures,
        "stages": [r.to_dict() for r in results],
    }
    print(f"kill -9 trials {summary['trials']}, mid-run {summary['killed_mid_run']}, "
          f"failures {total_failures}")  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
