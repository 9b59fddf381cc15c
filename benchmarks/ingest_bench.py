"""Ingest throughput against DuckDB's own CSV -> Parquet copy of the same file.

Writes one realistic police-incidents delivery of ``--rows`` rows (19 columns: names,
dates in dd/mm/yyyy, postcodes, phone numbers, identifiers, codes; one row in a
thousand deliberately invalid), then alternates, ``--runs`` times:

* **ingest**: ``nominal.ingest.ingest_paths`` into a fresh hub home (bronze copy and
  checksum, validation and standardisation of every field, two keyed-HMAC pseudonyms
  per row, identity / events / quarantine Parquet, the data-quality report, the lake
  snapshot). ``NOMINAL_COMPILED_HMAC`` (auto / on / numba / off) picks the pseudonym
  code as in production; the JSON line says which ran (``hmac_kernel``: c, numba, sql);
* **peer**: ``COPY (SELECT * FROM read_csv(...)) TO '...parquet'`` in plain DuckDB, the
  practical lower bound for reading that CSV and writing Parquet.

Prints each run and the medians, rows/s and the ratio ingest / peer::

    .venv/bin/python benchmarks/ingest_bench.py                # 10 million rows
    .venv/bin/python benchmarks/ingest_bench.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

from nominal.ingest.pseudonym import compiled_kernel

CONTRACT = {
    "contract_version": 1,
    "feed": "bench-incidents",
    "title": "Police incidents (benchmark)",
    "partner": {"code": "NPOL", "name": "Northshire Police"},
    "agency": "police",
    "dataset": "police_incidents",
    "agreement": "ISA-T2-POL-01",
    "deliveries": {"pattern": "bench_incidents_*.csv"},
    "format": {"type": "csv", "encoding": "utf-8", "delimiter": ",", "date_format": "%d/%m/%Y"},
    "fields": {
        "record_id": {"source": "IncidentPersonRef", "required": True},
        "given_name": {"source": "Forename"},
        "middle_names": {"source": "MiddleNames"},
        "family_name": {"source": "Surname"},
        "date_of_birth": {"source": "DOB", "type": "date"},
        "sex": {"source": "Gender", "mapping": {"Male": "M", "Female": "F"}},
        "address_line_1": {"source": "AddressLine1"},
        "address_line_2": {"source": "AddressLine2"},
        "town": {"source": "Town"},
        "postcode": {"source": "PostCode"},
        "police_id": {"source": "NominalID"},
        "phone": {"source": "ContactNo"},
        "event_id": {"source": "IncidentNo"},
        "event_date": {"source": "IncidentDate", "type": "date", "required": True},
        "oa_code": {"source": "OutputArea"},
        "ethnicity": {"source": "SelfDefinedEthnicity", "type": "category", "personal": True,
                      "values": ["A1", "B1", "M1", "O1", "W1", "W2", "NS"]},
        "incident_type": {"source": "IncidentType", "type": "category",
                          "values": ["concern for welfare", "disturbance", "road traffic",
                                     "mental health", "neighbour dispute"]},
        "role": {"source": "PersonRole", "type": "category",
                 "values": ["subject", "caller", "victim", "witness"]},
        "grade": {"source": "ResponseGrade", "type": "category",
                  "values": ["immediate", "priority", "scheduled"]},
        "event_type": {"value": "police_incident"},
    },
    "retention": {"years": 50, "from": "event_date"},
}  # fmt: skip

GIVEN = ["Mary", "John", "Olivia", "Mohammed", "Aisha", "Jack", "Zofia", "Liam", "Grace",
         "Ioana", "Priya", "Noah", "Emily", "Kwame", "Wei", "Sophie", "Daniel", "Amelia"]  # fmt: skip
FAMILY = ["Smith", "Jones", "O'Neil", "Kowalska", "Khan", "Patel", "Taylor", "Brown-Hughes",
          "Williams", "Popescu", "Okafor", "Chen", "Wilson", "Evans", "Murphy", "Walker"]  # fmt: skip


def write_feed(path: Path, rows: int) -> None:
    """A realistic delivery, generated inside DuckDB so that 10M rows take seconds."""
    g = "[" + ", ".join(f"'{n}'" for n in GIVEN) + "]"
    f = "[" + ", ".join("'" + n.replace("'", "''") + "'" for n in FAMILY) + "]"
    duckdb.connect().execute(
        f"""COPY (
        SELECT 'NPI' || lpad(i::VARCHAR, 10, '0') AS IncidentPersonRef,
          {g}[1 + (i * 7) % {len(GIVEN)}] AS Forename,
          CASE WHEN i % 3 = 0 THEN {g}[1 + (i * 11) % {len(GIVEN)}] END AS MiddleNames,
          CASE WHEN i % 50 = 0 THEN upper({f}[1 + (i * 13) % {len(FAMILY)}])
               ELSE {f}[1 + (i * 13) % {len(FAMILY)}] END AS Surname,
          strftime(DATE '1940-01-01' + CAST((i * 7919) % 29000 AS INTEGER), '%d/%m/%Y') AS DOB,
          CASE WHEN i % 2 = 0 THEN 'Male' ELSE 'Female' END AS Gender,
          ((i * 31) % 200 + 1)::VARCHAR || ' ' || ['High Street', 'Station Road', 'Church Lane',
            'Mill Close', 'Park Avenue'][1 + i % 5] AS AddressLine1,
          CASE WHEN i % 10 = 0 THEN 'Flat ' || (i % 9 + 1)::VARCHAR END AS AddressLine2,
          'Kettleby' AS Town,
          CASE WHEN i % 1000 = 7 THEN 'NX1-HR9'
               WHEN i % 100 = 3 THEN 'NX' || (1 + i % 9)::VARCHAR
               ELSE 'NX' || (1 + i % 9)::VARCHAR || ' ' || (i % 10)::VARCHAR
                    || chr(CAST(65 + (i // 7) % 20 AS INTEGER)) || chr(CAST(65 + (i // 140) % 20 AS INTEGER)) END AS PostCode,
          'NP' || lpad(((i * 104729) % 9000000)::VARCHAR, 8, '0') AS NominalID,
          CASE WHEN i % 4 <> 0 THEN '077009' || lpad((i % 100000)::VARCHAR, 5, '0') END AS ContactNo,
          'INC-' || lpad((i // 2)::VARCHAR, 10, '0') AS IncidentNo,
          CASE WHEN i % 1000 = 500 THEN '30/02/2024'
               ELSE strftime(DATE '2020-01-01' + CAST(i % 2190 AS INTEGER), '%d/%m/%Y') END AS IncidentDate,
          'E00' || lpad((900000 + i % 4000)::VARCHAR, 6, '0') AS OutputArea,
          ['A1', 'B1', 'M1', 'O1', 'W1', 'W1', 'W1', 'W2', 'NS'][1 + i % 9] AS SelfDefinedEthnicity,
          ['concern for welfare', 'disturbance', 'road traffic', 'mental health',
           'neighbour dispute'][1 + i % 5] AS IncidentType,
          ['subject', 'caller', 'victim', 'witness'][1 + i % 4] AS PersonRole,
          ['immediate', 'priority', 'scheduled'][1 + i % 3] AS ResponseGrade
        FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',', QUOTE '"', FORCE_QUOTE *)"""
    )


def cpu_seconds() -> float:
    """CPU time of this process, all threads (steadier than wall time on a shared machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_ingest(feed: Path, contracts: Path, work: Path) -> tuple[float, float, dict[str, int]]:
    from nominal.config import home as make_home
    from nominal.ingest import ingest_paths

    root = work / "home"
    shutil.rmtree(root, ignore_errors=True)
    home = make_home(root).ensure()
    started, cpu0 = time.perf_counter(), cpu_seconds()
    summary = ingest_paths(home, [feed], contracts=contracts)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    assert summary.ok and summary.rows_in == summary.rows_accepted + summary.rows_quarantined
    return (
        seconds,
        cpu,
        {
            "rows_in": summary.rows_in,
            "accepted": summary.rows_accepted,
            "quarantined": summary.rows_quarantined,
        },
    )


def run_peer(feed: Path, work: Path) -> tuple[float, float]:
    out = work / "peer.parquet"
    out.unlink(missing_ok=True)
    con = duckdb.connect()
    started, cpu0 = time.perf_counter(), cpu_seconds()
    con.execute(f"COPY (SELECT * FROM read_csv('{feed}')) TO '{out}' (FORMAT parquet)")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    con.close()
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="nominal-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    feed = work / "bench_incidents_2024.csv"
    t0 = time.perf_counter()
    write_feed(feed, args.rows)
    print(f"feed: {args.rows:,} rows, {feed.stat().st_size / 2**20:,.0f} MiB "
          f"(written in {time.perf_counter() - t0:.1f}s)", flush=True)  # fmt: skip
    contracts = work / "contracts"
    contracts.mkdir(exist_ok=True)
    (contracts / "bench-incidents.yaml").write_text(yaml.safe_dump(CONTRACT, sort_keys=False))
    ingest_times: list[float] = []
    peer_times: list[float] = []
    ingest_cpu: list[float] = []
    peer_cpu: list[float] = []
    counts: dict[str, int] = {}
    for run in range(1, args.runs + 1):
        seconds, cpu, counts = run_ingest(feed, contracts, work)
        peer, pcpu = run_peer(feed, work)
        ingest_times.append(seconds)
        peer_times.append(peer)
        ingest_cpu.append(cpu)
        peer_cpu.append(pcpu)
        print(f"run {run}: ingest {seconds:.2f}s (cpu {cpu:.1f}s), peer {peer:.2f}s "
              f"(cpu {pcpu:.1f}s), ratio {seconds / peer:.2f}x ({counts})", flush=True)  # fmt: skip
    ingest_med = statistics.median(ingest_times)
    peer_med = statistics.median(peer_times)
    result = {
        "rows": args.rows,
        "runs": args.runs,
        "ingest_seconds_median": round(ingest_med, 3),
        "peer_seconds_median": round(peer_med, 3),
        "ingest_rows_per_second": round(args.rows / ingest_med),
        "peer_rows_per_second": round(args.rows / peer_med),
        "ratio": round(ingest_med / peer_med, 2),
        "ingest_cpu_seconds_median": round(statistics.median(ingest_cpu), 2),
        "peer_cpu_seconds_median": round(statistics.median(peer_cpu), 2),
        "cpu_ratio": round(statistics.median(ingest_cpu) / statistics.median(peer_cpu), 2),
        # which HMAC made the pseudonyms: the C or numba kernel, or SQL (NOMINAL_COMPILED_HMAC)
        "hmac_kernel": compiled_kernel(feed.stat().st_size) or "sql",
        **counts,
    }
    print(f"ingest: {result['ingest_rows_per_second']:,} rows/s (median {ingest_med:.2f}s); "
          f"peer DuckDB CSV->Parquet: {result['peer_rows_per_second']:,} rows/s "
          f"(median {peer_med:.2f}s); ratio {result['ratio']}x (CPU time ratio "
          f"{result['cpu_ratio']}x)")  # fmt: skip
    print(json.dumps(result))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
