"""A large delivery through the feed API: pushed, interrupted, resumed, retried.

Run: ``.venv/bin/python benchmarks/feed_upload.py [--gib 1.0] [--ingest]``

1. writes a police-incidents CSV of about ``--gib`` GiB (DuckDB ``COPY``);
2. serves the hub's real app with uvicorn in a separate process;
3. declares the delivery, streams it with PATCH and drops the connection at about
   45 %; asks the hub its offset (HEAD) and resumes from there to the end;
4. checks the file in the inbox has the source's SHA-256;
5. retries the delivery with the same Delivery-Id (no bytes sent again) and re-sends
   the same bytes under a new Delivery-Id; with ``--ingest`` ingests after each and
   checks the retry added no rows.

Prints MB/s of each leg (uploads are measured against a raw local copy of the file,
the peer figure, in the same run) and the row counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CONTRACT = """\
contract_version: 1
feed: npol-incidents
title: Police incidents
partner: {code: NPOL, name: Northshire Police}
agency: police
dataset: police_incidents
agreement: ISA-T2-001
deliveries: {pattern: "npol_incidents_*.csv"}
format: {type: csv, date_format: "%d/%m/%Y"}
fields:
  record_id:     {source: PersonRef, required: true}
  given_name:    {source: Forename}
  family_name:   {source: Surname}
  date_of_birth: {source: DOB, type: date}
  postcode:      {source: Postcode}
  event_id:      {source: IncidentRef}
  event_date:    {source: IncidentDate, type: date, required: true}
  event_type:    {value: police_incident}
  category:      {source: Category}
retention: {years: 7, from: event_date}
"""
CHUNK = 1 << 20


def make_csv(path: Path, gib: float) -> int:
    """About ``gib`` GiB of incidents (~75 bytes a row); returns the row count."""
    import duckdb

    rows = int(gib * (1 << 30) / 75)
    duckdb.sql(
        f"""COPY (SELECT 'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS PersonRef,
                   ['Sam','Alex','Jo','Chris','Pat','Lee'][1 + i % 6] AS Forename,
                   'Surname' || (i % 9973) AS Surname,
                   strftime(DATE '1950-01-01' + CAST(i % 20000 AS INTEGER), '%d/%m/%Y') AS DOB,
                   'KT' || (1 + i % 9) || ' ' || (1 + i % 9) || 'AB' AS Postcode,
                   'I' || lpad(CAST(i AS VARCHAR), 10, '0') AS IncidentRef,
                   strftime(DATE '2024-01-01' + CAST(i % 700 AS INTEGER), '%d/%m/%Y') AS IncidentDate,
                   ['asb','domestic','theft','concern'][1 + i % 4] AS Category
            FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    return rows


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream(path: Path, start: int, stop: int | None) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(start)
        position = start
        while True:
            block = handle.read(CHUNK)
            if not block:
                return
            yield block
            position += len(block)
            if stop is not None and position >= stop:
                raise ConnectionAbortedError("simulated dropped connection")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--ingest", action="store_true", help="ingest and count rows too")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nominal-feed-bench-"))
    home_dir = work / "home"
    env = {**os.environ, "NOMINAL_HOME": str(home_dir), "NOMINAL_SECURE_COOKIES": "0"}
    env.pop("NOMINAL_DATABASE_URL", None)
    os.environ.update({"NOMINAL_HOME": str(home_dir)})
    os.environ.pop("NOMINAL_DATABASE_URL", None)
    from nominal.config import home
    from nominal.contracts.registry import add_contracts
    from nominal.db import ControlPlane
    from nominal.feeds.tokens import issue_feed_token

    h = home(home_dir).ensure()
    (work / "npol.yaml").write_text(CONTRACT)
    add_contracts(h, work / "npol.yaml")
    control = ControlPlane(h.database_url)
    with control.session() as s:
        token = issue_feed_token(s, "NPOL", ["npol-incidents"]).token
    control.dispose()

    source = work / "npol_incidents_big.csv"
    t = time.perf_counter()
    rows = make_csv(source, args.gib)
    size = source.stat().st_size
    print(
        f"delivery: {size / (1 << 30):.3f} GiB, {rows:,} rows (made in {time.perf_counter() - t:.1f}s)"
    )
    digest = sha256(source)
    t = time.perf_counter()
    shutil.copyfile(source, work / "peer-copy.csv")
    peer = size / (time.perf_counter() - t) / 1e6
    (work / "peer-copy.csv").unlink()
    print(f"peer: local file copy {peer:.0f} MB/s")

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "nominal.web.serve:app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        declare_headers = {
            **auth,
            "Delivery-Id": "npol-big-1",
            "Delivery-Filename": source.name,
            "Upload-Length": str(size),
            "Delivery-Checksum": f"sha256={digest}",
        }
        with httpx.Client(base_url=base, timeout=600) as client:
            made = client.post("/api/feeds/npol-incidents/deliveries", headers=declare_headers)
            assert made.status_code == 201, made.text
            location = made.headers["Location"]
            cut = int(size * 0.45)
            t = time.perf_counter()
            try:
                client.patch(
                    location,
                    content=stream(source, 0, cut),
                    headers={
                        **auth,
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
            except (ConnectionAbortedError, httpx.HTTPError) as exc:
                print(f"first leg interrupted as planned ({type(exc).__name__})")
            first_s = time.perf_counter() - t
        with httpx.Client(base_url=base, timeout=600) as client:
            offset = 0
            for _ in range(100):
                offset = int(client.head(location, headers=auth).headers["Upload-Offset"])
                if offset > 0:
                    break
                time.sleep(0.1)
            print(
                f"hub holds {offset:,} bytes after the interruption "
                f"({offset / size:.1%}); first leg {offset / first_s / 1e6:.0f} MB/s"
            )
            t = time.perf_counter()
            done = client.patch(
                location,
                content=stream(source, offset, None),
                headers={
                    **auth,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            resume_s = time.perf_counter() - t
            assert done.status_code == 204, done.text
            assert int(done.headers["Upload-Offset"]) == size
            print(
                f"resumed from {offset:,}: {(size - offset) / resume_s / 1e6:.0f} MB/s "
                f"(includes the hub's SHA-256 check of the whole file)"
            )
            received = h.inbox / source.name
            same = sha256(received) == digest
            print(f"inbox file SHA-256 matches the source: {same}")
            assert same
            retry = client.post("/api/feeds/npol-incidents/deliveries", headers=declare_headers)
            print(
                f"retry with the same Delivery-Id: HTTP {retry.status_code}, "
                f"status {retry.json()['status']}, bytes re-sent 0"
            )
            result: dict[str, object] = {
                "bytes": size,
                "rows": rows,
                "interrupted_at": offset,
                "first_leg_mb_s": round(offset / first_s / 1e6, 1),
                "resume_mb_s": round((size - offset) / resume_s / 1e6, 1),
                "peer_copy_mb_s": round(peer, 1),
                "sha256_ok": same,
            }
            if args.ingest:
                from nominal.engines.lake import Lake
                from nominal.ingest.api import ingest_paths

                t = time.perf_counter()
                first = ingest_paths(h)
                ingest_s = time.perf_counter() - t
                n1 = Lake(h.lake).require_current().rows("silver.identity")
                print(
                    f"ingested: {first.rows_accepted:,} accepted, {first.rows_quarantined:,} "
                    f"quarantined in {ingest_s:.1f}s; silver.identity {n1:,}"
                )
                resend = {**declare_headers, "Delivery-Id": "npol-big-1-resend"}
                made = client.post("/api/feeds/npol-incidents/deliveries", headers=resend)
                loc = made.headers["Location"]
                done = client.patch(
                    loc,
                    content=stream(source, 0, None),
                    headers={
                        **auth,
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                assert done.status_code == 204, done.text
                again = ingest_paths(h)
                n2 = Lake(h.lake).require_current().rows("silver.identity")
                print(
                    f"re-sent under a new Delivery-Id and ingested again: statuses "
                    f"{[d.status for d in again.deliveries]}, silver.identity {n2:,} "
                    f"(added {n2 - n1})"
                )
                result.update(
                    {
                        "ingest_seconds": round(ingest_s, 1),
                        "silver_rows": n1,
                        "rows_added_by_resend": n2 - n1,
                    }
                )
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
