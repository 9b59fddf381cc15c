"""The access-control matrix at the API: endpoint × role × purpose × agreement state.

Every combination is requested over HTTP against the app on SQLite and on PostgreSQL,
and the answer (status, and whether identifying fields were returned) is compared with
an expectation written from the demo agreements' rules, not by calling the policy code:
crimes is shared under ISA-T2-POL-01 for the four demo purposes with practitioners,
analysts and data owners of every partner; analysts and the research purpose never
see identities (re-identification lifts the analyst's pseudonymisation only).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.demo import DemoAccounts
from nominal.govern.models import DatasetSuspension
from web.conftest import sign_in

ROLES = ("practitioner", "analyst", "data_owner", "ig_lead", "admin")
PURPOSES = ("safeguarding_children", "domestic_abuse", "fire_prevention", "research", "curiosity")
STATES = (
    "live",
    "expired",
    "agreement_suspended",
    "dataset_suspended",
    "no_agreement",
    "onboarding_incomplete",
)
ENDPOINTS = ("records", "reidentify")
RECIPIENTS = {"practitioner", "analyst", "data_owner"}
WHY = "Multi-agency safeguarding hub referral on this person today"


def set_state(control: ControlPlane, state: str) -> None:
    today = date.today()
    with control.session() as s:
        a = admin.get_agreement(s, "ISA-T2-POL-01")
        a.status = "live"
        a.start_date, a.end_date = today - timedelta(days=365), today + timedelta(days=365)
        a.purposes = [admin.get_purpose(s, p) for p in PURPOSES[:4]]
        admin.set_checklist(s, a, "NPOL", feed_validated=True)
        s.execute(sa.delete(DatasetSuspension))
        if state == "expired":
            a.end_date = today - timedelta(days=1)
        elif state == "agreement_suspended":
            a.status = "suspended"
        elif state == "dataset_suspended":
            s.add(
                DatasetSuspension(
                    dataset_id=admin.get_dataset(s, "crimes").id,
                    suspended_by="dan.owner",
                    reason="matrix",
                    suspended_at=datetime.now(UTC) - timedelta(minutes=1),
                )
            )
        elif state == "no_agreement":
            a.purposes = []
        elif state == "onboarding_incomplete":
            admin.set_checklist(s, a, "NPOL", feed_validated=False)


def expect(endpoint: str, role: str, purpose: str, state: str) -> tuple[int, bool]:
    """(HTTP status, identities shown) from the rules in the module docstring."""
    if purpose == "curiosity":
        return 400, False
    if role not in RECIPIENTS or state != "live":
        return 403, False
    if endpoint == "records":
        return 200, role != "analyst" and purpose != "research"
    return 200, purpose != "research"


def call(client: TestClient, csrf: str, endpoint: str, purpose: str) -> tuple[int, bool]:
    if endpoint == "records":
        r = client.get("/api/datasets/crimes/records", params={"purpose": purpose})
        if r.status_code != 200:
            return r.status_code, False
        return 200, any("given_name" in row for row in r.json()["records"])
    r = client.post(
        "/api/reidentify",
        json={"purpose": purpose, "record_key": "a" * 32, "justification": WHY},
        headers={"x-csrf-token": csrf},
    )
    if r.status_code != 200:
        return r.status_code, False
    return 200, "given_name" in r.json()["identity"]


def test_endpoint_matrix(client: TestClient, demo: DemoAccounts, database_url: str) -> None:
    clients: dict[str, tuple[TestClient, str]] = {}
    for role in ROLES:
        c = TestClient(client.app, base_url="https://testserver")
        clients[role] = (c, sign_in(c, demo.by_role(role), database_url))
    control = ControlPlane(database_url)
    cases, mismatches = 0, []
    try:
        for state in STATES:
            set_state(control, state)
            for endpoint, role, purpose in itertools.product(ENDPOINTS, ROLES, PURPOSES):
                c, csrf = clients[role]
                got = call(c, csrf, endpoint, purpose)
                want = expect(endpoint, role, purpose, state)
                cases += 1
                if got != want:
                    mismatches.append(
                        f"{endpoint} {role} {purpose} {state}: got {got}, want {want}"
                    )
    finally:
        control.dispose()
    print(f"\nendpoint access matrix on {database_url.split(':')[0].split('+')[0]}: {cases} cases")
    assert not mismatches, "\n".join(mismatches)
    assert cases == len(ENDPOINTS) * len(ROLES) * len(PURPOSES) * len(STATES)
    # Every request above, allowed or refused, left an audit record.
    engine = sa.create_engine(database_url)
    with engine.connect() as con:
        audited = con.execute(
            sa.text("SELECT count(*) FROM audit_log WHERE action IN ('read', 'reidentify')")
        ).scalar_one()
    engine.dispose()
    unknown_purpose = len(ENDPOINTS) * len(ROLES) * len(STATES)  # rejected before the PDP
    assert audited == cases - unknown_purpose
