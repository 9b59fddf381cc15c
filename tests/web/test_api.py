"""The governed API: policy-filtered records, audited re-identification, scoped tokens."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.auth import issue_token
from nominal.govern.demo import DemoAccounts
from web.conftest import sign_in

RECORDS = "/api/datasets/crimes/records"


def _audit_rows(database_url: str, action: str) -> list[dict]:
    engine = sa.create_engine(database_url)
    with engine.connect() as con:
        rows = [
            dict(r)
            for r in con.execute(
                sa.text("SELECT * FROM audit_log WHERE action = :a ORDER BY seq"), {"a": action}
            ).mappings()
        ]
    engine.dispose()
    return rows


def test_practitioner_sees_identities_analyst_pseudonyms(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    sign_in(client, demo.by_role("practitioner"), database_url)
    body = client.get(RECORDS, params={"purpose": "safeguarding_children"}).json()
    assert body["count"] == 4  # 4 crime events in the test silver layer
    first = body["records"][0]
    assert {"record_key", "given_name", "family_name", "event_date", "offence_group"} <= set(first)
    assert body["decision"]["pseudonymised_only"] is False

    client.post(
        "/sign-out",
        data={"csrf_token": client.get("/").text.split('name="csrf_token" value="')[1][:64]},
    )
    sign_in(client, demo.by_role("analyst"), database_url)
    body = client.get(RECORDS, params={"purpose": "safeguarding_children"}).json()
    first = body["records"][0]
    assert "given_name" not in first and "family_name" not in first and "date_of_birth" not in first
    assert "source_record_id" not in first
    assert {"record_key", "event_date", "offence_group"} <= set(first)
    assert "given_name" in body["decision"]["withheld_fields"]
    reads = _audit_rows(database_url, "read")
    assert len(reads) == 2 and all(r["outcome"] == "allowed" for r in reads)
    assert first["record_key"] in reads[-1]["record_keys"]
    assert "GET /api/datasets/crimes/records?purpose=safeguarding_children" in reads[-1]["detail"]


def test_deny_by_default_and_audited(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    sign_in(client, demo.by_role("ig_lead"), database_url)  # not a recipient of any agreement
    r = client.get(RECORDS, params={"purpose": "safeguarding_children"})
    assert r.status_code == 403
    assert r.json()["detail"]["reasons"]
    assert client.get(RECORDS).status_code == 422  # a purpose is required
    assert client.get(RECORDS, params={"purpose": "curiosity"}).status_code == 400
    denied = _audit_rows(database_url, "read")
    assert [r["outcome"] for r in denied] == ["denied"]


def test_suspension_applies_to_next_request(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    sign_in(client, demo.by_role("practitioner"), database_url)
    assert client.get(RECORDS, params={"purpose": "safeguarding_children"}).status_code == 200
    control = ControlPlane(database_url)
    with control.session() as s:
        admin.suspend_dataset(s, "crimes", "dan.owner", "investigating a data breach")
    control.dispose()
    r = client.get(RECORDS, params={"purpose": "safeguarding_children"})
    assert r.status_code == 403
    assert any("suspended" in reason for reason in r.json()["detail"]["reasons"])


def test_reidentification_needs_justification(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    sign_in(client, demo.by_role("analyst"), database_url)
    token = client.get("/").text.split('name="csrf_token" value="')[1][:64]
    key = "a" * 32
    r = client.post(
        "/api/reidentify",
        json={"purpose": "safeguarding_children", "record_key": key},
        headers={"x-csrf-token": token},
    )
    assert r.status_code == 403
    assert "justification" in r.json()["detail"]["message"]
    r = client.post(
        "/api/reidentify",
        json={
            "purpose": "research",
            "record_key": key,
            "justification": "Model validation needs the person's identity",
        },
        headers={"x-csrf-token": token},
    )
    assert r.status_code == 200
    assert "given_name" not in r.json()["identity"]  # research stays pseudonymised
    why = "Strategy meeting on 3 March: safeguarding concern about this child"
    r = client.post(
        "/api/reidentify",
        json={"purpose": "safeguarding_children", "record_key": key, "justification": why},
        headers={"x-csrf-token": token},
    )
    assert r.status_code == 200, r.text
    assert r.json()["identity"]["given_name"] == "Alice"
    # Without the CSRF header a cookie-authenticated POST is refused.
    r = client.post(
        "/api/reidentify",
        json={"purpose": "safeguarding_children", "record_key": key, "justification": why},
    )
    assert r.status_code == 403
    audit = _audit_rows(database_url, "reidentify")
    assert [a["outcome"] for a in audit] == ["denied", "allowed", "allowed"]
    assert audit[-1]["justification"] == why
    # The IG lead can now ask who looked at this person, and why.
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, demo.by_role("ig_lead"), database_url)
    who = client.get("/api/audit", params={"record_key": key}).json()["entries"]
    assert {e["username"] for e in who if e["action"] == "reidentify"} == {"ann.analyst"}
    assert client.get("/api/audit/verify").json()["ok"] is True


def test_api_token_scoped_to_purpose(
    client: TestClient, demo: DemoAccounts, database_url: str, hub_home: Home
) -> None:
    control = ControlPlane(database_url)
    with control.session() as s:
        user = admin.get_user(s, "pat.practitioner")
        issued = issue_token(s, user, admin.get_purpose(s, "fire_prevention"), label="nightly")
    control.dispose()
    machine = TestClient(client.app, base_url="https://testserver")
    auth = {"authorization": f"Bearer {issued.token}"}
    ok = machine.get(RECORDS, params={"purpose": "fire_prevention"}, headers=auth)
    assert ok.status_code == 200
    wrong = machine.get(RECORDS, params={"purpose": "safeguarding_children"}, headers=auth)
    assert wrong.status_code == 403
    forged = {"authorization": f"Bearer {issued.token[:-4]}abcd"}
    assert (
        machine.get(RECORDS, params={"purpose": "fire_prevention"}, headers=forged).status_code
        == 401
    )
