"""Model cards and cohorts in the real web app: signed in, purpose, policy, audit."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from insight_fixtures import Trained

from nominal.config import home as make_home
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccount, DemoAccounts, seed_demo

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture(scope="module")
def site(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, DemoAccounts, str]]:
    from nominal.web.app import create_app

    root = tmp_path_factory.mktemp("web") / "home"
    shutil.copytree(trained.home.root, root)
    hub = make_home(root).ensure()
    url = f"sqlite:///{hub.control_db_path}"
    demo = seed_demo(hub, trained.town / "contracts", database_url=url)
    app = create_app(hub, database_url=url, secure_cookies=False)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, demo, url


def _sign_in(client: TestClient, account: DemoAccount, url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"),
            {"u": account.username},
        )
    engine.dispose()
    client.cookies.clear()
    page = client.get("/sign-in")
    token = CSRF.search(page.text)
    assert token
    response = client.post(
        "/sign-in",
        data={
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
            "csrf_token": token.group(1),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def _audit(url: str) -> list[tuple[str, str, str | None]]:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        rows = con.execute(
            sa.text("SELECT action, outcome, dataset FROM audit_log ORDER BY seq")
        ).fetchall()
    engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def test_pages_need_a_signed_in_user(site: tuple[TestClient, DemoAccounts, str]) -> None:
    client, _, _ = site
    client.cookies.clear()
    assert client.get("/api/risk/models").status_code == 401
    assert client.get("/risk/models", follow_redirects=False).status_code == 303


def test_model_cards_for_every_signed_in_user(
    site: tuple[TestClient, DemoAccounts, str], trained: Trained
) -> None:
    client, demo, url = site
    _sign_in(client, demo.by_role("ig_lead"), url)
    models = client.get("/api/risk/models").json()["models"]
    assert {m["model"] for m in models} == {"da_high_risk", "not_school_ready", "cin_cp_escalation"}
    page = client.get("/risk/models")
    assert page.status_code == 200 and "/risk/models/cin_cp_escalation/card" in page.text
    card = client.get("/risk/models/cin_cp_escalation/card")
    m = trained.results["cin_cp_escalation"].model
    assert m is not None
    assert f"{m.metrics['lightgbm']['roc_auc']:.3f}" in card.text
    assert client.get("/risk/models/crystal_ball/card").status_code == 404


def test_cohort_needs_purpose_and_agreement_and_is_audited(
    site: tuple[TestClient, DemoAccounts, str],
) -> None:
    client, demo, url = site
    _sign_in(client, demo.by_role("practitioner"), url)
    listing = client.get("/cohorts")
    assert listing.status_code == 200 and "da-escalation" in listing.text
    assert client.get("/api/cohorts/da-escalation").status_code == 422  # no purpose
    before = len(_audit(url))
    answer = client.get("/api/cohorts/da-escalation", params={"purpose": "domestic_abuse"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["size"] == len(body["members"]) <= body["capacity"]
    assert all("unit_id" not in m and m["unit_pseudo"] for m in body["members"])
    assert all(m["reasons"] for m in body["members"][:10])
    after = _audit(url)[before:]
    assert ("read", "allowed", "domestic_abuse") in after

    page = client.get("/cohorts/da-escalation", params={"purpose": "domestic_abuse"})
    assert page.status_code == 200 and body["members"][0]["unit_pseudo"] in page.text

    exported = client.get("/cohorts/da-escalation.csv", params={"purpose": "domestic_abuse"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == body["size"]
    assert ("export", "allowed", "domestic_abuse") in _audit(url)


def test_feedback_on_an_entry_is_kept_and_audited(
    site: tuple[TestClient, DemoAccounts, str],
) -> None:
    client, demo, url = site
    _sign_in(client, demo.by_role("practitioner"), url)
    page = client.get("/cohorts")
    token = CSRF.search(page.text)
    assert token
    members = client.get(
        "/api/cohorts/cin-cp-escalation", params={"purpose": "safeguarding_children"}
    ).json()["members"]
    pseudo = members[0]["unit_pseudo"]
    headers = {"X-CSRF-Token": token.group(1)}
    sent = client.post(
        "/api/cohorts/cin-cp-escalation/feedback",
        params={"purpose": "safeguarding_children"},
        json={"unit_pseudo": pseudo, "feedback": "already known", "note": "open to early help"},
        headers=headers,
    )
    assert sent.status_code == 200, sent.text
    kept = client.get("/api/cohorts/cin-cp-escalation/feedback").json()["feedback"]
    assert kept[-1]["unit_pseudo"] == pseudo and kept[-1]["feedback"] == "already known"
    assert ("feedback", "allowed", "cin_cp_plans") in _audit(url)
    bad = client.post(
        "/api/cohorts/cin-cp-escalation/feedback",
        params={"purpose": "safeguarding_children"},
        json={"unit_pseudo": pseudo, "feedback": "whatever"},
        headers=headers,
    )
    assert bad.status_code == 422


def test_roles_outside_the_agreement_are_denied_and_audited(
    site: tuple[TestClient, DemoAccounts, str],
) -> None:
    client, demo, url = site
    _sign_in(client, demo.by_role("ig_lead"), url)
    denied = client.get(
        "/api/cohorts/cin-cp-escalation", params={"purpose": "safeguarding_children"}
    )
    assert denied.status_code == 403
    assert ("read", "denied", "cin_cp_plans") in _audit(url)
    assert client.get("/api/cohorts/nobody", params={"purpose": "research"}).status_code == 404


def test_card_and_cohort_files_are_self_contained(trained: Trained) -> None:
    html = Path(trained.results["da_high_risk"].paths["card_html"]).read_text()
    assert "<link" not in html and "<script" not in html
