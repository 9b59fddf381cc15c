"""The person view shows the documents that mention the person, under policy and audited.

A synthetic town with its case notes ingested, linked, and the mentions stage run for
real (``find_mentions``); the app is driven in-process with the search tests' agreements.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from search_governance import PURPOSE, setup_governance

from nominal.config import Home
from nominal.config import home as make_home
from nominal.db import ControlPlane
from nominal.govern.admin import get_purpose, get_user, lift_suspension, suspend_dataset
from nominal.govern.auth import issue_token
from nominal.govern.models import AuditEntry
from nominal.mentions import find_mentions, mentions_for

# building the town (synth, ingest, link, mentions) takes minutes on a loaded machine
pytestmark = pytest.mark.timeout(1800)

DOCUMENTS = "case_notes"  # the dataset synth's case notes are delivered as


@dataclass
class MentionTown:
    home: Home
    control: ControlPlane
    users: dict[str, str]
    client: TestClient


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MentionTown]:
    from nominal.ingest.api import ingest_paths
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate
    from nominal.web.app import create_app

    root = tmp_path_factory.mktemp("mention-town")
    synth = root / "synth"
    generate(synth, 300, seed=7)
    home = make_home(root / "home").ensure()
    summary = ingest_paths(
        home, [synth / "feeds", synth / "documents"], contracts=synth / "contracts"
    )
    assert summary.ok
    link_lake(home)
    found = find_mentions(home)
    assert found["matched"] > 0, found
    control = ControlPlane(f"sqlite:///{root / 'control.db'}")
    users = setup_governance(control, synth / "contracts")
    app = create_app(home, database_url=control.url, secure_cookies=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield MentionTown(home, control, users, client)
    control.dispose()


def _token(town: MentionTown, kind: str, purpose: str = PURPOSE) -> dict[str, str]:
    with town.control.session() as s:
        issued = issue_token(s, get_user(s, town.users[kind]), get_purpose(s, purpose))
    return {"Authorization": f"Bearer {issued.token}"}


def _last_view_audit(town: MentionTown) -> dict[str, Any]:
    with town.control.session() as s:
        entry = s.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "view_person")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).one()
        return {"nominal_ids": json.loads(entry.nominal_ids), "detail": json.loads(entry.detail)}


def _mentioned(town: MentionTown) -> tuple[str, list[dict[str, Any]]]:
    """A nominal some document mentions, and its mentions (unfiltered, straight from gold)."""
    from nominal.engines import duck
    from nominal.engines.lake import Lake

    con = duck.connect(Lake(town.home.lake).require_current())
    (nominal_id,) = con.execute(
        "SELECT nominal_id FROM gold.document_mentions ORDER BY nominal_id LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    con.close()
    return nominal_id, mentions_for(town.home, nominal_id)


def test_practitioner_sees_the_passages_and_the_read_is_audited(town: MentionTown) -> None:
    nominal_id, expected = _mentioned(town)
    assert expected and all(m["dataset"] == DOCUMENTS for m in expected)
    body = town.client.get(
        f"/api/people/{nominal_id}", params={"purpose": PURPOSE},
        headers=_token(town, "practitioner"),
    ).json()  # fmt: skip
    shown = body["documents"]
    assert [(d["document_id"], d["passage"]) for d in shown] == [
        (m["document_id"], m["passage"]) for m in expected
    ]
    family = body["golden"]["family_name"]
    assert all(family.lower() in d["passage"].lower() for d in shown)  # the passage names them
    assert all(d["file_name"].startswith("case_note_") and d["score"] >= 0.9 for d in shown)
    audit = _last_view_audit(town)
    assert audit["nominal_ids"] == [nominal_id]
    assert audit["detail"]["documents"] == sorted({m["document_id"] for m in expected})
    page = town.client.get(
        f"/people/{nominal_id}", params={"purpose": PURPOSE}, headers=_token(town, "practitioner")
    )
    assert page.status_code == 200
    assert "Mentioned in documents" in page.text
    assert shown[0]["file_name"] in page.text


def test_suspended_documents_dataset_hides_the_passages(town: MentionTown) -> None:
    nominal_id, expected = _mentioned(town)
    with town.control.session() as s:
        suspend_dataset(s, DOCUMENTS, "dpo", "test: documents withdrawn")
    try:
        body = town.client.get(
            f"/api/people/{nominal_id}", params={"purpose": PURPOSE},
            headers=_token(town, "practitioner"),
        ).json()  # fmt: skip
        assert body["documents"] == []  # the rest of the view is still there
        assert body["timeline"] or body["records"]
        assert _last_view_audit(town)["detail"]["documents"] == []
    finally:
        with town.control.session() as s:
            lift_suspension(s, DOCUMENTS, "dpo")
    assert expected  # and they come back once the suspension is lifted
    again = town.client.get(
        f"/api/people/{nominal_id}", params={"purpose": PURPOSE},
        headers=_token(town, "practitioner"),
    ).json()  # fmt: skip
    assert len(again["documents"]) == len(expected)


def test_pseudonymised_purpose_withholds_the_passage(town: MentionTown) -> None:
    nominal_id, expected = _mentioned(town)
    response = town.client.get(
        f"/api/people/{nominal_id}", params={"purpose": "research"},
        headers=_token(town, "analyst", "research"),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    shown = response.json()["documents"]
    assert len(shown) == len(expected)
    assert {(d["passage"], d["mention"], d["file_name"]) for d in shown} == {
        ("withheld", "withheld", "withheld")
    }
    for m in expected:
        assert m["passage"] not in response.text


def test_no_agreement_no_documents(town: MentionTown) -> None:
    nominal_id, _ = _mentioned(town)
    response = town.client.get(
        f"/api/people/{nominal_id}", params={"purpose": PURPOSE}, headers=_token(town, "council")
    )
    assert response.status_code == 403
    assert "passage" not in response.text


def test_mentions_for_filters_by_dataset(town: MentionTown, tmp_path: Path) -> None:
    nominal_id, expected = _mentioned(town)
    assert mentions_for(town.home, nominal_id, datasets=[DOCUMENTS]) == expected
    assert mentions_for(town.home, nominal_id, datasets=["police_incidents"]) == []
    assert mentions_for(town.home, nominal_id, datasets=[]) == []
