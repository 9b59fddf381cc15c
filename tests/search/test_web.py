"""The search pages and API on the real app: policy filtering, audit, person and household views."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from search_governance import PARTIAL_DATASET, PASSWORD, PURPOSE, TOTP
from search_town import Town

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.govern.admin import get_purpose, get_user
from nominal.govern.auth import issue_token, totp_now
from nominal.govern.models import AuditEntry


@pytest.fixture(scope="module")
def app_client(town: Town) -> Iterator[TestClient]:
    from nominal.web.app import create_app

    app = create_app(town.home, database_url=town.control.url, secure_cookies=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def token(town: Town, kind: str, purpose: str = PURPOSE) -> dict[str, str]:
    with town.control.session() as s:
        issued = issue_token(s, get_user(s, town.users[kind]), get_purpose(s, purpose))
    return {"Authorization": f"Bearer {issued.token}"}


def sign_in(client: TestClient, town: Town, kind: str) -> None:
    username = town.users[kind]
    with town.control.session() as s:
        s.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"), {"u": username}
        )
    page = client.get("/sign-in").text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    data = {
        "username": username,
        "password": PASSWORD,
        "code": totp_now(TOTP[username]),
        "next": "/",
    }
    if csrf:
        data["csrf_token"] = csrf.group(1)
    response = client.post("/sign-in", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]


def last_audit(town: Town) -> AuditEntry:
    with town.control.session() as s:
        entry = s.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        s.expunge(entry)
        return entry


def a_person(town: Town, dataset: str | None = None) -> dict[str, Any]:
    con = duck.connect(Lake(town.home.lake).require_current())
    where = "TRUE" if dataset is None else (
        f"nominal_id IN (SELECT nominal_id FROM gold.nominal_records GROUP BY nominal_id "
        f"HAVING bool_and(dataset = '{dataset}'))"
    )  # fmt: skip
    rows = con.execute(
        f"""SELECT nominal_id, given_name, family_name, CAST(date_of_birth AS VARCHAR) AS dob,
                   household_id FROM gold.nominals
            WHERE given_name IS NOT NULL AND family_name IS NOT NULL AND date_of_birth IS NOT NULL
              AND {where} ORDER BY nominal_id LIMIT 1"""
    ).fetchall()
    assert rows
    return dict(
        zip(
            ["nominal_id", "given_name", "family_name", "dob", "household_id"], rows[0], strict=True
        )
    )


def test_api_search_is_ranked_filtered_and_audited(app_client: TestClient, town: Town) -> None:
    p = a_person(town)
    response = app_client.get(
        "/api/search",
        params={"purpose": PURPOSE, "given_name": p["given_name"], "family_name": p["family_name"],
                "dob": p["dob"][:4]},
        headers=token(town, "practitioner"),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"][0]["nominal_id"] == p["nominal_id"]
    assert body["results"][0]["reasons"]
    entry = last_audit(town)
    assert entry.seq == body["audit_seq"]
    assert (entry.action, entry.outcome, entry.purpose) == ("search", "allowed", PURPOSE)
    assert p["nominal_id"] in json.loads(entry.nominal_ids)
    assert json.loads(entry.detail)["query"]["given_name"] == p["given_name"]


def test_search_without_an_agreement_is_refused_and_audited(
    app_client: TestClient, town: Town
) -> None:
    p = a_person(town)
    response = app_client.get(
        "/api/search",
        params={"purpose": PURPOSE, "name": f"{p['given_name']} {p['family_name']}"},
        headers=token(town, "council"),
    )
    assert response.status_code == 403
    assert "no tier-2 agreement" in json.dumps(response.json())
    entry = last_audit(town)
    assert (entry.action, entry.outcome, entry.username) == (
        "search",
        "denied",
        town.users["council"],
    )


def test_analyst_sees_pseudonyms_only(app_client: TestClient, town: Town) -> None:
    p = a_person(town)
    body = app_client.get(
        "/api/search",
        params={"purpose": PURPOSE, "given_name": p["given_name"], "family_name": p["family_name"],
                "dob": p["dob"]},
        headers=token(town, "analyst"),
    ).json()  # fmt: skip
    top = body["results"][0]
    assert top["nominal_id"] == "withheld"
    assert top["record"]["given_name"] == "withheld"
    assert top["record"]["date_of_birth"] == "withheld"
    assert len(top["record"]["nominal_pseudo"]) == 32


def test_fields_not_shared_are_withheld(app_client: TestClient, town: Town) -> None:
    p = a_person(town, PARTIAL_DATASET)
    body = app_client.get(
        "/api/search",
        params={"purpose": PURPOSE, "given_name": p["given_name"], "family_name": p["family_name"],
                "dob": p["dob"]},
        headers=token(town, "practitioner"),
    ).json()  # fmt: skip
    top = body["results"][0]
    assert top["nominal_id"] == p["nominal_id"]
    assert top["record"]["given_name"] == p["given_name"]
    assert top["record"]["address_line_1"] in ("withheld", None)
    assert top["record"]["postcode"] in ("withheld", None)
    person = app_client.get(
        f"/api/people/{p['nominal_id']}", params={"purpose": PURPOSE},
        headers=token(town, "practitioner"),
    ).json()  # fmt: skip
    records = [r for rs in person["records"].values() for r in rs]
    assert records and all(r["dataset"] == PARTIAL_DATASET for r in records)
    assert all(r.get("postcode", "withheld") == "withheld" for r in records)


def test_person_view_of_a_family(app_client: TestClient, town: Town) -> None:
    """Members, relationships, timeline and agencies agree with the gold tables."""
    con = duck.connect(Lake(town.home.lake).require_current())
    household, nominal_id = con.execute(
        """SELECT m.household_id, any_value(m.nominal_id) FROM gold.household_members m
           JOIN gold.nominals n ON n.nominal_id = m.nominal_id AND n.household_id = m.household_id
           GROUP BY m.household_id HAVING count(*) >= 3 ORDER BY count(*) DESC, 1 LIMIT 1"""
    ).fetchall()[0]
    members = {r[0] for r in con.execute(
        "SELECT nominal_id FROM gold.household_members WHERE household_id = ? AND nominal_id <> ?",
        [household, nominal_id]).fetchall()}  # fmt: skip
    events = con.execute(
        "SELECT count(*) FROM gold.events WHERE nominal_id = ?", [nominal_id]
    ).fetchall()[0][0]
    related = {r[0] for r in con.execute(
        "SELECT related_nominal_id FROM gold.relationships WHERE nominal_id = ?", [nominal_id]).fetchall()}  # fmt: skip
    view = app_client.get(
        f"/api/people/{nominal_id}",
        params={"purpose": PURPOSE},
        headers=token(town, "practitioner"),
    ).json()
    assert view["golden"]["nominal_id"] == nominal_id
    assert view["household"]["household_id"] == household
    assert {m["nominal_id"] for m in view["members"]} == members
    assert {r["nominal_id"] for r in view["relationships"]} == related
    assert len(view["timeline"]) == min(events, 500)
    assert {a["agency"] for a in view["agencies"]} == {e["agency"] for e in view["timeline"]}
    assert "given_name" in view["provenance"]
    entry = last_audit(town)
    assert (entry.action, json.loads(entry.nominal_ids)) == ("view_person", [nominal_id])
    page = app_client.get(
        f"/api/households/{household}",
        params={"purpose": PURPOSE},
        headers=token(town, "practitioner"),
    ).json()
    assert nominal_id in {m["nominal_id"] for m in page["members"]}


def test_search_page_and_htmx_partial(app_client: TestClient, town: Town) -> None:
    p = a_person(town)
    sign_in(app_client, town, "practitioner")
    form = app_client.get("/search")
    assert form.status_code == 200
    assert 'hx-get="/search"' in form.text and 'method="get"' in form.text
    params = {"purpose": PURPOSE, "name": f"{p['given_name']} {p['family_name']}", "dob": p["dob"]}
    full = app_client.get("/search", params=params)
    assert full.status_code == 200
    assert "<html" in full.text and 'id="search-results"' in full.text
    assert f"/people/{p['nominal_id']}?purpose={PURPOSE}" in full.text
    partial = app_client.get("/search", params=params, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and 'id="search-results"' in partial.text
    no_purpose = app_client.get("/search", params={"name": p["family_name"]})
    assert "Choose why you are searching" in no_purpose.text
    person = app_client.get(f"/people/{p['nominal_id']}", params={"purpose": PURPOSE})
    assert person.status_code == 200 and 'id="timeline"' in person.text


def test_suspension_applies_to_the_very_next_search(app_client: TestClient, town: Town) -> None:
    from nominal.govern.admin import suspend_dataset
    from nominal.govern.models import DatasetSuspension

    p = a_person(town)
    params = {"purpose": PURPOSE, "given_name": p["given_name"], "family_name": p["family_name"],
              "dob": p["dob"]}  # fmt: skip
    headers = token(town, "practitioner")
    first = app_client.get("/api/search", params=params, headers=headers)
    assert first.status_code == 200
    assert first.json()["results"][0]["nominal_id"] == p["nominal_id"]
    con = duck.connect(Lake(town.home.lake).require_current())
    datasets = [
        d
        for (d,) in con.execute(
            "SELECT DISTINCT dataset FROM gold.nominal_records WHERE nominal_id = ?",
            [p["nominal_id"]],
        ).fetchall()
    ]
    try:
        with town.control.session() as s:
            for dataset in datasets:
                suspend_dataset(s, dataset, "dpo", "test: suspension takes effect at once")
        # no waiting: the next request is decided afresh
        after = app_client.get("/api/search", params=params, headers=headers)
        assert after.status_code in (200, 403)
        found = after.json().get("results", []) if after.status_code == 200 else []
        assert p["nominal_id"] not in {r["nominal_id"] for r in found}
    finally:
        with town.control.session() as s:
            s.execute(sa.delete(DatasetSuspension))
