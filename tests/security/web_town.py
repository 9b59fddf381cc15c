"""A small linked town with hostile partner data, served by the real app (shared fixture code).

One police incident row is rewritten so a new person's name and address carry script
and HTML payloads (stored XSS through feed data); the rest is the ordinary synthetic
town, ingested and linked with the real pipeline, governed like the search tests.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
from search_governance import PASSWORD, PURPOSE, TOTP, setup_governance

from nominal.config import Home
from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.govern.admin import get_purpose, get_user
from nominal.govern.auth import issue_token, totp_now

XSS_GIVEN = "<script>alert('given')</script>"
XSS_FAMILY = "Zed<img src=x onerror=alert(1)>"
XSS_ADDRESS = '"><svg onload=alert(2)>'
XSS_DOB = "01/02/1911"  # a date of birth nobody else in the town has
__all__ = ["PURPOSE", "Town", "build_town", "sign_in", "token"]


@dataclass
class Town:
    home: Home
    control: ControlPlane
    users: dict[str, str]


def _poison(feeds: Path) -> None:
    target = sorted(feeds.glob("npol_incidents_*.csv"))[0]
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0].keys())
    rows[0].update(
        IncidentPersonRef="XSS-PERSON-1", Forename=XSS_GIVEN, Surname=XSS_FAMILY,
        AddressLine1=XSS_ADDRESS, DOB=XSS_DOB,
    )  # fmt: skip
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def build_town(root: Path, people: int = 250) -> Town:
    from nominal.ingest.api import ingest_paths
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate

    synth = root / "synth"
    generate(synth, people, seed=21)
    _poison(synth / "feeds")
    home = make_home(root / "home").ensure()
    summary = ingest_paths(home, [synth / "feeds"], contracts=synth / "contracts")
    assert summary.ok
    link_lake(home)
    control = ControlPlane(f"sqlite:///{root / 'control.db'}")
    users = setup_governance(control, synth / "contracts")
    return Town(home, control, users)


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
    data = {"username": username, "password": PASSWORD, "code": totp_now(TOTP[username]),
            "next": "/"}  # fmt: skip
    if csrf:
        data["csrf_token"] = csrf.group(1)
    response = client.post("/sign-in", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
