"""A demo hub for the products' page and browser tests: oracle gold tables, synthetic
geography, a cohort, the demand aggregates, the demo governance and the products' demo
teams and pathways."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.config import Home
from nominal.config import home as make_home
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccount, DemoAccounts, seed_demo
from nominal.ingest.api import import_synth_geography, ingest_paths
from nominal.insight.oracle import gold_from_truth
from nominal.insight.scoring import COHORT_SCHEMA
from nominal.link.pipeline import link_lake
from nominal.products.aggregates import build as build_aggregates
from nominal.products.demo import seed_products

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
COHORT = "products-test-cohort"


def build_demo_hub(root: Path, town: Path, linked: bool = False) -> tuple[Home, DemoAccounts]:
    """The demo hub on ``town``: gold tables from the town's truth (oracle), or with
    ``linked`` as ``make demo`` builds them: the partners' deliveries ingested and
    linked by the hub's own Splink model (which person search needs)."""
    hub = make_home(root).ensure()
    if linked:
        import_synth_geography(hub, town / "geography")
        ingest_paths(hub, [town / "feeds"], contracts=town / "contracts")
        link_lake(hub)
    else:
        gold_from_truth(town, hub)
        import_synth_geography(hub, town / "geography")
    lake = Lake(hub.lake)
    con = duck.connect(lake.require_current())
    members = con.execute(
        "SELECT nominal_id, nominal_pseudo, oa_code FROM gold.nominals WHERE agency_count >= 4 "
        "ORDER BY agency_count DESC, nominal_id LIMIT 5"
    ).fetchall()
    con.close()
    cohort = pa.Table.from_pylist(
        [
            {
                "cohort": COHORT,
                "title": "Test cohort: known to many agencies",
                "rule": "top 5",
                "model": "test",
                "model_version": "1",
                "as_of": date(2026, 10, 1),
                "capacity": 5,
                "size": len(members),
                "rank": i + 1,
                "unit_type": "nominal",
                "unit_id": nid,
                "unit_pseudo": pseudo,
                "oa_code": oa,
                "score": 0.9 - i / 100,
                "reasons": "[]",
            }
            for i, (nid, pseudo, oa) in enumerate(members)
        ],
        schema=COHORT_SCHEMA,
    )
    with lake.transaction("test cohort") as tx:
        tx.replace("gold.cohorts", [tx.write_arrow("gold.cohorts", cohort)])
        tx.commit({})
    build_aggregates(hub)
    accounts = seed_demo(hub, town / "contracts")
    seed_products(hub)
    return hub, accounts


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


def clear_totp(database_url: str, username: str) -> None:
    """A TOTP code is accepted once; tests sign the same user in more often than that."""
    engine = sa.create_engine(database_url)
    with engine.begin() as con:
        con.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"), {"u": username}
        )
    engine.dispose()


def sign_in(client: TestClient, account: DemoAccount, database_url: str) -> str:
    clear_totp(database_url, account.username)
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)
