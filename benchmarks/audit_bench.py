"""The cost of auditing: requests per second of a policy-checked read endpoint with the
audit log on and off, in the same run, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/audit_bench.py [--people 300] [--requests 200] [--runs 3]

Builds a synthetic town, ingests it into a real lake, seeds the demo governance, then
for each database alternates runs of ``GET /api/datasets/crimes/records`` (signed in as a
practitioner, 50 records a page) with auditing on and off, and prints the median
requests/s of each and their ratio. Each audited request appends one hash-chained entry
in its own transaction.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.config import home as make_home
from nominal.contracts.model import load_contracts
from nominal.govern.auth import totp_now
from nominal.govern.demo import seed_demo
from nominal.ingest.pipeline import expand_paths, run_ingest
from nominal.synth import generate
from nominal.web.app import create_app

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PURPOSE = "safeguarding_children"


def signed_in(app: object, username: str, secret: str) -> TestClient:
    import re

    client = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    page = client.get("/sign-in").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token
    r = client.post(
        "/sign-in",
        data={
            "username": username,
            "password": "demo-password-1234",
            "code": totp_now(secret),
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def rate(client: TestClient, requests: int) -> float:
    t0 = time.perf_counter()
    for i in range(requests):
        r = client.get(
            "/api/datasets/crimes/records",
            params={"purpose": PURPOSE, "limit": 50, "offset": (i * 50) % 1000},
        )
        assert r.status_code == 200, r.text
    return requests / (time.perf_counter() - t0)


def measure(
    root: Path, contracts: Path, url: str, requests: int, runs: int
) -> tuple[float, float, int]:
    hub = make_home(root)
    accounts = seed_demo(hub, contracts, database_url=url)
    pat = accounts.by_role("practitioner")
    on_app = create_app(hub, database_url=url, audit_reads=True)
    off_app = create_app(hub, database_url=url, audit_reads=False)
    # Two sign-ins of the same user need two different TOTP time steps.
    on_client = signed_in(on_app, pat.username, pat.totp_secret)
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("UPDATE users SET last_totp_step = NULL"))
    off_client = signed_in(off_app, pat.username, pat.totp_secret)
    rate(on_client, 20)  # warm up both (DuckDB views, connection pools)
    rate(off_client, 20)
    on, off = [], []
    for _ in range(runs):
        on.append(rate(on_client, requests))
        off.append(rate(off_client, requests))
    with engine.connect() as con:
        entries = con.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    engine.dispose()
    verified = on_app.state.hub.audit.verify()
    assert verified.ok, verified
    return statistics.median(on), statistics.median(off), int(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        town = Path(tmp) / "town"
        generate(out=town, people=args.people, seed=1)
        contracts = town / "contracts"
        lake_home = make_home(Path(tmp) / "home").ensure()
        run_ingest(lake_home, expand_paths([town / "feeds"]), load_contracts(contracts))
        results = {}
        results["sqlite"] = measure(
            lake_home.root,
            contracts,
            f"sqlite:///{Path(tmp) / 'bench.db'}",
            args.requests,
            args.runs,
        )
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as con:
            con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            pg = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            results["postgresql"] = measure(lake_home.root, contracts, pg, args.requests, args.runs)
        finally:
            with admin.connect() as con:
                con.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(
        f"policy-checked reads (GET /api/datasets/crimes/records, 50 rows), "
        f"{args.requests} requests x {args.runs} runs, medians:"
    )
    for db, (on, off, entries) in results.items():
        print(
            f"  {db:10}  audit on {on:7.1f} req/s   audit off {off:7.1f} req/s   "
            f"ratio on/off {on / off:.2f}   ({entries} audit entries, chain verified)"
        )


if __name__ == "__main__":
    main()
