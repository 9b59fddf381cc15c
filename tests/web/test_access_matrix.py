"""The access-control matrix at the API: every personal-data endpoint × role × purpose ×
agreement state, on SQLite and on PostgreSQL.

A small synthetic town is taken in through real ingest and linked by the real link
pipeline; the demo governance (every contract's agreement live, shared for the four
demo purposes with practitioners, analysts and data owners of every partner) is seeded
into each database. Between blocks of requests the state of the police's agreements
(ISA-T2-POL-*) is changed in the database; every other agreement stays live. Each
answer is compared with an expectation written here from the rules, never by calling
the policy code:

* a request names a known purpose (else 400) and comes from a recipient role
  (practitioner, analyst, data owner) -- IG leads and administrators read no records;
* a dataset is visible only while its agreement is live, in date, lists the purpose,
  shares the dataset, has complete onboarding and the dataset is not suspended: so the
  police datasets disappear in every state but ``live`` (and are never there for fire
  prevention, a purpose their agreements do not list), the others never do;
* an endpoint answers 403 when no dataset is visible, and otherwise shows exactly the
  visible datasets' rows (a person or household known only through hidden datasets is
  404, as if not there);
* analysts, and anyone working for the research purpose, never see identifying values
  (names, dates of birth, addresses, identifiers, raw nominal and household ids);
  re-identification lifts the analyst's pseudonymisation only, not research's;
* the partner feed API is token-scoped: a partner pulls the nominal ids of its own
  records only, while the agreement its contract names is live and in date, shares the
  dataset, the partner's onboarding is complete and the dataset is not suspended.

A second test fails when the app grows an ``/api/`` path that is neither in this
matrix nor on the commented list of endpoints that return no person-level data.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.config import Home
from nominal.config import home as make_home
from nominal.contracts.model import load_contracts
from nominal.contracts.registry import contracts_dir
from nominal.db import ControlPlane
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.feeds.tokens import issue_feed_token
from nominal.govern import admin
from nominal.govern.demo import DemoAccounts
from nominal.govern.models import Agreement, DatasetSuspension
from nominal.ingest.api import ingest_paths
from nominal.insight.scoring import COHORT_SCHEMA
from nominal.link.pipeline import link_lake
from nominal.synth import generate
from web.conftest import POSTGRES_ADMIN_URL, sign_in

PEOPLE = 300
SEED = 7
ROLES = ("practitioner", "analyst", "data_owner", "ig_lead", "admin")
RECIPIENTS = {"practitioner", "analyst", "data_owner"}
PURPOSES = ("safeguarding_children", "fire_prevention", "research", "curiosity")
# The police's agreements are not for fire prevention (every other agreement is).
POLICE_PURPOSES = ("safeguarding_children", "domestic_abuse", "research")
STATES = (
    "live",
    "expired",
    "agreement_suspended",
    "dataset_suspended",
    "no_agreement",
    "onboarding_incomplete",
)
# The expectations are the same on both databases; what PostgreSQL adds is its own SQL for
# dates and suspensions. The default suite walks every state on SQLite and three on
# PostgreSQL (live, an agreement out of date, a suspended dataset); `pytest -m slow` adds a
# PostgreSQL hub that walks every state.
PG_DEFAULT_STATES = ("live", "expired", "dataset_suspended")
TARGET = ("ISA-T2-POL-01", "ISA-T2-POL-02", "ISA-T2-POL-03")  # the police's agreements
COHORT = "matrix-da-cohort"
COHORT_MODEL = ("da_high_risk", "domestic_abuse")  # a real model and its outcome dataset
WHY = "Multi-agency safeguarding hub referral on this person today"
WITHHELD = "withheld"

# Every /api/ path (and method) in the matrix; test_every_api_path_is_covered keeps
# this list honest.
MATRIX_PATHS = {
    ("GET", "/api/datasets/{dataset}/records"),
    ("POST", "/api/reidentify"),
    ("GET", "/api/search"),
    ("GET", "/api/people/{nominal_id}"),
    ("GET", "/api/households/{household_id}"),
    ("GET", "/api/cohorts"),
    ("GET", "/api/cohorts/{cohort}"),
    ("GET", "/api/products/dashboard"),
    ("GET", "/api/feeds/pull/nominals"),
}
# /api/ paths that return no person-level data, each checked against its handler.
NOT_PERSONAL = {
    # the signed-in user's own account, roles and partner
    ("GET", "/api/me"),
    # the audit log: IG leads and administrators only; audit verification: a verdict
    ("GET", "/api/audit"),
    ("GET", "/api/audit/verify"),
    # risk model versions, metrics and model cards: aggregates, no units
    ("GET", "/api/risk/models"),
    ("GET", "/api/risk/models/{model}/card"),
    # feedback on cohort entries: writing it needs the PDP for the cohort's dataset;
    # reading it lists pseudonyms and verdicts only
    ("POST", "/api/cohorts/{cohort}/feedback"),
    ("GET", "/api/cohorts/{cohort}/feedback"),
    # pipeline runs (administrators): timings and counts
    ("GET", "/api/ops/runs"),
    # the feed API's push side: a partner uploads its own files and reads their state
    ("POST", "/api/feeds/{feed}/deliveries"),
    ("HEAD", "/api/feeds/uploads/{upload_id}"),
    ("GET", "/api/feeds/uploads/{upload_id}"),
    ("PATCH", "/api/feeds/uploads/{upload_id}"),
    ("GET", "/api/feeds/deliveries/{delivery_id}"),
    # alerts name the partner's own systems' events only (feeds.alerts decides who hears)
    ("GET", "/api/feeds/pull/alerts"),
}


# -- the town -----------------------------------------------------------------------------


@dataclass
class Town:
    """The linked town and what the expectations need to know about it, read from gold."""

    home: Home
    contracts: Path
    police: set[str]  # datasets under the TARGET agreements
    all_datasets: set[str]  # datasets with events
    event_datasets: dict[str, set[str]]  # nominal -> datasets of its events
    record_datasets: dict[str, set[str]]  # nominal -> datasets of its records
    household_events: dict[str, set[str]]  # household -> datasets of events there
    members: dict[str, list[str]]  # household -> member nominals
    secrets: dict[str, set[str]]  # nominal -> identifying values
    household_secrets: dict[str, set[str]]
    pseudo: dict[str, str]
    x: str = ""  # known to the police only
    y: str = ""  # known to the police and to others
    household: str = ""  # x's household, with a member others know
    crimes_key: str = ""  # a crimes record pseudonym
    cohort_ids: list[str] = field(default_factory=list)
    own: dict[str, set[str]] = field(default_factory=dict)  # partner -> its datasets


IDENTIFYING = (
    "given_name",
    "family_name",
    "address_line_1",
    "postcode",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
    "uprn",
)


def _build_town(root: Path) -> Town:
    synth = root / "synth"
    generate(synth, PEOPLE, seed=SEED)
    home = make_home(root / "home").ensure()
    ingest_paths(home, [synth / "feeds"], contracts=synth / "contracts")
    link_lake(home)
    shutil.copytree(synth / "contracts", contracts_dir(home), dirs_exist_ok=True)
    contracts = load_contracts(synth / "contracts")
    lake = Lake(home.lake)
    con = duck.connect(lake.require_current())

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql).fetchall()

    ev: dict[str, set[str]] = {}
    for n, d in rows("SELECT DISTINCT nominal_id, dataset FROM gold.events"):
        ev.setdefault(n, set()).add(d)
    rec: dict[str, set[str]] = {}
    for n, d in rows("SELECT DISTINCT nominal_id, dataset FROM gold.nominal_records"):
        rec.setdefault(n, set()).add(d)
    hev: dict[str, set[str]] = {}
    for h, d in rows("SELECT DISTINCT household_id, dataset FROM gold.events"):
        hev.setdefault(h, set()).add(d)
    members: dict[str, list[str]] = {}
    for h, n in rows("SELECT DISTINCT household_id, nominal_id FROM gold.household_members"):
        members.setdefault(h, []).append(n)
    cols = ", ".join(f"CAST({c} AS VARCHAR)" for c in ("nominal_id", *IDENTIFYING))
    secrets: dict[str, set[str]] = {}
    for row in rows(f"SELECT {cols}, nominal_pseudo FROM gold.nominals"):
        secrets[row[0]] = {v for v in row[:-1] if v}
    pseudo = dict(rows("SELECT nominal_id, nominal_pseudo FROM gold.nominals"))
    hsecrets = {
        h: {v for v in vals if v}
        for h, *vals in rows(
            "SELECT household_id, address_key, CAST(uprn AS VARCHAR), address_line_1, postcode "
            "FROM gold.households"
        )
    }
    police = {c.dataset for c in contracts if c.agreement in TARGET}
    town = Town(
        home=home,
        contracts=synth / "contracts",
        police=police,
        all_datasets=set().union(*ev.values()),
        event_datasets=ev,
        record_datasets=rec,
        household_events=hev,
        members=members,
        secrets=secrets,
        household_secrets=hsecrets,
        pseudo=pseudo,
    )
    for c in contracts:
        town.own.setdefault(c.partner.code, set()).add(c.dataset)
    # x: known only through the police; y: through the police and others.
    only_police = sorted(n for n, d in ev.items() if d <= police and d == rec.get(n))
    mixed = sorted(n for n, d in ev.items() if d & police and d - police)
    hh = dict(rows("SELECT nominal_id, household_id FROM gold.nominals"))
    with_others = [
        n for n in only_police if any(ev.get(m, set()) - police for m in members.get(hh[n], []))
    ]
    assert only_police and mixed and with_others, "the town is too small for the matrix"
    town.x, town.y = with_others[0], mixed[0]
    town.household = hh[town.x]
    (town.crimes_key,) = rows(
        "SELECT min(record_key) FROM gold.nominal_records WHERE dataset = 'crimes'"
    )[0]
    model, dataset = COHORT_MODEL
    chosen = rows(
        "SELECT nominal_id, nominal_pseudo, any_value(oa_code) FROM gold.events "
        f"WHERE dataset = '{dataset}' GROUP BY ALL ORDER BY nominal_id LIMIT 3"
    )
    con.close()
    assert chosen, f"no {dataset} events to make a cohort of"
    town.cohort_ids = [c[0] for c in chosen]
    cohort = pa.Table.from_pylist(
        [
            {"cohort": COHORT, "title": "Matrix cohort", "rule": "top 3", "model": model,
             "model_version": "1", "as_of": date(2026, 10, 1), "capacity": 3,
             "size": len(chosen), "rank": i + 1, "unit_type": "person", "unit_id": nid,
             "unit_pseudo": ps, "oa_code": oa, "score": 0.9 - i / 100,
             "reasons": json.dumps([{"text": "matrix"}])}
            for i, (nid, ps, oa) in enumerate(chosen)
        ],
        schema=COHORT_SCHEMA,
    )  # fmt: skip
    with lake.transaction("matrix cohort") as tx:
        tx.replace("gold.cohorts", [tx.write_arrow("gold.cohorts", cohort)])
        tx.commit({})
    return town


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    return _build_town(tmp_path_factory.mktemp("matrix"))


# -- one hub per database -------------------------------------------------------------------


@dataclass
class Hub:
    kind: str
    url: str
    home: Home
    app: Any
    accounts: DemoAccounts
    tokens: dict[str, str]
    states: tuple[str, ...]  # the agreement states the matrix walks


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        "postgresql",
        pytest.param("postgresql-every-state", marks=pytest.mark.slow),
    ],
)
def hub(
    request: pytest.FixtureRequest, town: Town, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """The town's home (a copy of its own) and a seeded control plane on one database."""
    from nominal.web.app import create_app

    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    shutil.copytree(town.home.root, root / "home")
    home = make_home(root / "home").ensure()
    drop: str | None = None
    kind = "sqlite" if request.param == "sqlite" else "postgresql"
    if kind == "sqlite":
        template, accounts = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, home.control_db_path)
        url = f"sqlite:///{home.control_db_path}"
    else:
        template, accounts = request.getfixturevalue("postgres_template")
        drop = f"m_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as con:
            con.execute(sa.text(f'CREATE DATABASE "{drop}" TEMPLATE "{template}"'))
        engine.dispose()
        url = (
            sa.engine.make_url(POSTGRES_ADMIN_URL)
            .set(database=drop)
            .render_as_string(hide_password=False)
        )
    control = ControlPlane(url)
    tokens: dict[str, str] = {}
    with control.session() as s:
        for name, partner, pull in (("npol", "NPOL", True), ("npol_push", "NPOL", False),
                                    ("kcc", "KCC", True)):  # fmt: skip
            feeds = sorted(town.own[partner])
            tokens[name] = issue_feed_token(s, partner, feeds, can_pull=pull).token
    control.dispose()
    try:
        states = PG_DEFAULT_STATES if request.param == "postgresql" else STATES
        app = create_app(home, database_url=url)
        yield Hub(kind, url, home, app, accounts, tokens, states)
    finally:
        if drop is not None:
            engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with engine.connect() as con:
                con.execute(sa.text(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
            engine.dispose()


def set_state(control: ControlPlane, town: Town, state: str) -> None:
    """Put the police's agreements in ``state`` (after restoring them to live)."""
    today = date.today()
    contracts = load_contracts(town.contracts)
    with control.session() as s:
        s.execute(sa.delete(DatasetSuspension))
        for ref in TARGET:
            a = admin.get_agreement(s, ref)
            a.status = "live"
            a.start_date, a.end_date = today - timedelta(days=365), today + timedelta(days=365)
            a.purposes = [admin.get_purpose(s, p) for p in POLICE_PURPOSES]
            for c in contracts:
                if c.agreement == ref:
                    admin.share_dataset(s, a, c.dataset, ["*"])
            admin.set_checklist(s, a, "NPOL", feed_validated=True)
            if state == "expired":
                a.end_date = today - timedelta(days=1)
            elif state == "agreement_suspended":
                a.status = "suspended"
            elif state == "no_agreement":
                a.purposes = []
                a.datasets = []
            elif state == "onboarding_incomplete":
                admin.set_checklist(s, a, "NPOL", feed_validated=False)
        if state == "dataset_suspended":
            for code in sorted(town.police):
                s.add(
                    DatasetSuspension(
                        dataset_id=admin.get_dataset(s, code).id,
                        suspended_by="dan.owner",
                        reason="matrix",
                        suspended_at=datetime.now(UTC) - timedelta(minutes=1),
                    )
                )
        s.flush()
        assert s.scalar(sa.select(sa.func.count()).select_from(Agreement)) > len(TARGET)


# -- expectations (from the rules in the module docstring) ----------------------------------


def visible(town: Town, role: str, purpose: str, state: str) -> set[str]:
    if role not in RECIPIENTS or purpose == "curiosity":
        return set()
    if state == "live" and purpose in POLICE_PURPOSES:
        return set(town.all_datasets)
    return town.all_datasets - town.police


def identified(role: str, purpose: str) -> bool:
    return role != "analyst" and purpose != "research"


@dataclass
class Got:
    status: int
    facts: dict[str, Any] = field(default_factory=dict)


def leaks(body: Any, secrets: set[str], path: str = "") -> list[str]:
    """Paths in ``body`` holding an identifying value (or any date of birth)."""
    found: list[str] = []
    if isinstance(body, dict):
        for k, v in body.items():
            if k in ("date_of_birth", "dob") and isinstance(v, str) and v != WITHHELD:
                found.append(f"{path}.{k}")
            found += leaks(v, secrets, f"{path}.{k}")
    elif isinstance(body, list):
        for i, v in enumerate(body):
            found += leaks(v, secrets, f"{path}[{i}]")
    elif isinstance(body, str | int) and str(body) in secrets:
        found.append(f"{path}={body}")
    return found


# -- the matrix ------------------------------------------------------------------------------


Call = Callable[[TestClient, str, str], Got]


def _checked(r: Any, check: Callable[[Any], dict[str, Any]]) -> Got:
    if r.status_code != 200:
        return Got(r.status_code)
    return Got(200, check(r.json()))


def endpoint_calls(town: Town) -> dict[str, tuple[Call, Callable[[str, str, str], Got]]]:
    """name -> (make the request as a signed-in client, the expected answer)."""
    x, y, hh = town.x, town.y, town.household
    xs = town.secrets[x]
    hh_secrets = set().union(
        town.household_secrets.get(hh, set()),
        *(town.secrets[m] for m in town.members[hh]),
    )

    def blocked(role: str, purpose: str, state: str) -> Got | None:
        if purpose == "curiosity":
            return Got(400)
        if not visible(town, role, purpose, state):
            return Got(403)
        return None

    # /api/datasets/crimes/records
    def records(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get("/api/datasets/crimes/records", params={"purpose": purpose})
        return _checked(r, lambda b: {
            "rows": bool(b["records"]),
            "identified": any("given_name" in row for row in b["records"]),
        })  # fmt: skip

    def want_records(role: str, purpose: str, state: str) -> Got:
        if purpose == "curiosity":
            return Got(400)
        if "crimes" not in visible(town, role, purpose, state):
            return Got(403)
        return Got(200, {"rows": True, "identified": identified(role, purpose)})

    # /api/reidentify
    def reidentify(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.post(
            "/api/reidentify",
            json={"purpose": purpose, "record_key": town.crimes_key, "justification": WHY},
            headers={"x-csrf-token": csrf},
        )
        return _checked(r, lambda b: {"identified": "given_name" in b["identity"]})

    def want_reidentify(role: str, purpose: str, state: str) -> Got:
        if purpose == "curiosity":
            return Got(400)
        if "crimes" not in visible(town, role, purpose, state):
            return Got(403)
        return Got(200, {"identified": purpose != "research"})

    # /api/search for x by name and date of birth
    golden_x = _golden(town, x)

    def search(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get(
            "/api/search",
            params={"purpose": purpose, "given_name": golden_x["given_name"],
                    "family_name": golden_x["family_name"], "dob": golden_x["date_of_birth"]},
        )  # fmt: skip

        def check(b: dict[str, Any]) -> dict[str, Any]:
            hits = b["results"]
            mine = [
                h
                for h in hits
                if h["nominal_id"] == x or h["record"].get("nominal_pseudo") == town.pseudo[x]
            ]
            return {
                "found": bool(mine),
                "identified": (
                    mine[0]["record"].get("given_name") not in (None, WITHHELD) if mine else None
                ),
                "leaks": [] if identified_of(c) else leaks(hits, _all_secrets(town))[:3],
            }  # fmt: skip

        return _checked(r, check)

    def want_search(role: str, purpose: str, state: str) -> Got:
        if (b := blocked(role, purpose, state)) is not None:
            return b
        seen = visible(town, role, purpose, state)
        found = bool(town.event_datasets[x] & seen)
        return Got(200, {"found": found, "identified": identified(role, purpose) if found else None,
                         "leaks": []})  # fmt: skip

    # /api/people/{x} and /api/people/{y}
    def person(nominal: str) -> Call:
        def call(c: TestClient, csrf: str, purpose: str) -> Got:
            r = c.get(f"/api/people/{nominal}", params={"purpose": purpose})

            def check(b: dict[str, Any]) -> dict[str, Any]:
                recs = [r for rs in b["records"].values() for r in rs]
                return {
                    "records": {r["dataset"] for r in recs},
                    "timeline": {e["dataset"] for e in b["timeline"]},
                    "identified": b["golden"].get("given_name") not in (None, WITHHELD),
                    "leaks": []
                    if identified_of(c)
                    else leaks(b, _all_secrets(town) - {nominal})[:3],
                }

            return _checked(r, check)

        return call

    def want_person(nominal: str) -> Callable[[str, str, str], Got]:
        def want(role: str, purpose: str, state: str) -> Got:
            if (b := blocked(role, purpose, state)) is not None:
                return b
            seen = visible(town, role, purpose, state)
            if not town.event_datasets[nominal] & seen:
                return Got(404)
            return Got(200, {
                "records": town.record_datasets.get(nominal, set()) & seen,
                "timeline": town.event_datasets[nominal] & seen,
                "identified": identified(role, purpose), "leaks": [],
            })  # fmt: skip

        return want

    # /api/households/{x's household}
    def household(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get(f"/api/households/{hh}", params={"purpose": purpose})

        def check(b: dict[str, Any]) -> dict[str, Any]:
            return {
                "members": len(b["members"]),
                "events": {e["dataset"] for e in b["events"]},
                "identified": any(m.get("given_name") not in (None, WITHHELD)
                                  for m in b["members"]),
                "leaks": [] if identified_of(c) else leaks(b, hh_secrets - {hh})[:3],
            }  # fmt: skip

        return _checked(r, check)

    def want_household(role: str, purpose: str, state: str) -> Got:
        if (b := blocked(role, purpose, state)) is not None:
            return b
        seen = visible(town, role, purpose, state)
        shown = [m for m in town.members[hh] if town.event_datasets.get(m, set()) & seen]
        if not shown:
            return Got(404)
        return Got(200, {"members": len(shown), "events": town.household_events[hh] & seen,
                         "identified": identified(role, purpose), "leaks": []})  # fmt: skip

    # /api/cohorts (no members) and /api/cohorts/{cohort}
    def cohorts(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get("/api/cohorts", params={"purpose": purpose})
        return _checked(r, lambda b: {
            "listed": COHORT in {row["cohort"] for row in b["cohorts"]},
            "leaks": (leaks(b, _all_secrets(town) | set(town.pseudo.values()))),
        })  # fmt: skip

    def want_cohorts(role: str, purpose: str, state: str) -> Got:
        return Got(200, {"listed": True, "leaks": []})

    def cohort(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get(f"/api/cohorts/{COHORT}", params={"purpose": purpose})
        return _checked(r, lambda b: {
            "members": sorted(m["unit_pseudo"] for m in b["members"]),
            "leaks": (leaks(b, _all_secrets(town))),
        })  # fmt: skip

    def want_cohort(role: str, purpose: str, state: str) -> Got:
        if purpose == "curiosity":
            return Got(400)
        if COHORT_MODEL[1] not in visible(town, role, purpose, state):
            return Got(403)
        return Got(200, {"members": sorted(town.pseudo[n] for n in town.cohort_ids),
                         "leaks": []})  # fmt: skip

    # /api/products/dashboard
    def dashboard(c: TestClient, csrf: str, purpose: str) -> Got:
        r = c.get("/api/products/dashboard", params={"purpose": purpose})
        return _checked(r, lambda b: {
            "datasets": set(b["datasets"]),
            "identified": any(d.get("unit_id") for d in b["duplicates"]),
            "leaks": [] if identified_of(c) else leaks(b, _all_secrets(town))[:3],
        })  # fmt: skip

    def want_dashboard(role: str, purpose: str, state: str) -> Got:
        if (b := blocked(role, purpose, state)) is not None:
            return b
        return Got(200, {"datasets": visible(town, role, purpose, state),
                         "identified": identified(role, purpose), "leaks": []})  # fmt: skip

    assert xs
    return {
        "records": (records, want_records),
        "reidentify": (reidentify, want_reidentify),
        "search": (search, want_search),
        "person_x": (person(x), want_person(x)),
        "person_y": (person(y), want_person(y)),
        "household": (household, want_household),
        "cohorts": (cohorts, want_cohorts),
        "cohort": (cohort, want_cohort),
        "dashboard": (dashboard, want_dashboard),
    }


_IDENTIFIED: dict[int, bool] = {}  # id(client) -> may this client see identities


def identified_of(c: TestClient) -> bool:
    return _IDENTIFIED[id(c)]


def _golden(town: Town, nominal: str) -> dict[str, Any]:
    con = duck.connect(Lake(town.home.lake).require_current())
    row = con.execute(
        "SELECT given_name, family_name, CAST(date_of_birth AS VARCHAR) FROM gold.nominals "
        "WHERE nominal_id = ?",
        [nominal],
    ).fetchone()
    con.close()
    assert row is not None
    return {"given_name": row[0], "family_name": row[1], "date_of_birth": row[2]}


def _all_secrets(town: Town) -> set[str]:
    return set().union(*town.secrets.values(), *town.household_secrets.values())


FEED_TOKENS = ("npol", "npol_push", "kcc", "none")


def feed_call(c: TestClient, hub: Hub, token: str) -> Got:
    headers = {} if token == "none" else {"Authorization": f"Bearer {hub.tokens[token]}"}
    r = c.get("/api/feeds/pull/nominals", headers=headers)
    return _checked(r, lambda b: {"datasets": {row["dataset"] for row in b["records"]}})


def feed_want(town: Town, token: str, state: str) -> Got:
    if token == "none":
        return Got(401)
    if token == "npol_push":
        return Got(403)
    partner = "NPOL" if token == "npol" else "KCC"
    own = town.own[partner]
    linked = {d for ds in town.record_datasets.values() for d in ds}
    # The feed API's partner-level rule (nominal.feeds.agreements): the agreement the
    # contract names is live and in date, shares the dataset, onboarding is complete and
    # the dataset is not suspended. Purposes do not enter into it.
    lapsed = state != "live"
    allowed = own - town.police if lapsed else own
    if not allowed:
        return Got(403)
    return Got(200, {"datasets": allowed & linked})


def test_endpoint_matrix(town: Town, hub: Hub) -> None:
    states = hub.states
    started = time.monotonic()
    calls = endpoint_calls(town)
    clients: dict[str, tuple[TestClient, str]] = {}
    for role in ROLES:
        c = TestClient(hub.app, base_url="https://testserver")
        clients[role] = (c, sign_in(c, hub.accounts.by_role(role), hub.url))
        _IDENTIFIED[id(c)] = role != "analyst"
    partner = TestClient(hub.app, base_url="https://testserver")
    control = ControlPlane(hub.url)
    cases, mismatches = 0, []
    spent: dict[str, float] = {}
    try:
        for state in states:
            set_state(control, town, state)
            for (name, (call, want)), role, purpose in itertools.product(
                calls.items(), ROLES, PURPOSES
            ):
                c, csrf = clients[role]
                _IDENTIFIED[id(c)] = identified(role, purpose)
                t0 = time.monotonic()
                got, expected = call(c, csrf, purpose), want(role, purpose, state)
                spent[name] = spent.get(name, 0.0) + time.monotonic() - t0
                cases += 1
                if got != expected:
                    mismatches.append(
                        f"{name} {role} {purpose} {state}: got {got}, want {expected}"
                    )
            for token in FEED_TOKENS:
                got, expected = feed_call(partner, hub, token), feed_want(town, token, state)
                cases += 1
                if got != expected:
                    mismatches.append(f"feeds.pull {token} {state}: got {got}, want {expected}")
    finally:
        control.dispose()
        for c, _ in clients.values():
            c.close()
        partner.close()
    seconds = time.monotonic() - started
    print(
        f"\nendpoint access matrix on {hub.kind}: {cases} cases "
        f"({len(calls)} user endpoint cases x {len(ROLES)} roles x {len(PURPOSES)} purposes "
        f"x {len(states)} states + {len(FEED_TOKENS)} feed tokens x {len(states)} states) "
        f"in {seconds:.1f} s"
    )
    print(" ".join(f"{k}={v:.1f}s" for k, v in spent.items()))
    assert not mismatches, f"{len(mismatches)} of {cases}:\n" + "\n".join(mismatches)
    assert cases == (len(calls) * len(ROLES) * len(PURPOSES) + len(FEED_TOKENS)) * len(states)


def test_every_api_path_is_covered(tmp_path: Path) -> None:
    """A new /api/ path must join the matrix or the commented not-personal list."""
    from nominal.web.app import create_app

    app = create_app(make_home(tmp_path / "home").ensure())
    found = {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in ops
    }
    unknown = found - MATRIX_PATHS - NOT_PERSONAL
    assert not unknown, f"not in the access matrix nor known to be non-personal: {sorted(unknown)}"
    gone = (MATRIX_PATHS | NOT_PERSONAL) - found
    assert not gone, f"listed but no longer in the app: {sorted(gone)}"
