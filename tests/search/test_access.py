"""Policy filtering and the audit record of a search, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from search_governance import PURPOSE, setup_governance
from search_town import Town

from nominal.db import ControlPlane
from nominal.govern.admin import get_user, suspend_dataset
from nominal.govern.audit import audit_log
from nominal.govern.models import AuditEntry
from nominal.search.access import SearchDenied, decide_search, governed_search
from nominal.search.query import parse_query


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, town: Town, tmp_path: Path) -> Iterator[ControlPlane]:
    url = (
        f"sqlite:///{tmp_path / 'control.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    plane = ControlPlane(url)
    setup_governance(plane, town.synth / "contracts")
    try:
        yield plane
    finally:
        plane.dispose()


def entries(control: ControlPlane) -> list[AuditEntry]:
    with control.session() as s:
        found = list(s.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)))
        for e in found:
            s.expunge(e)
        return found


def test_search_policy_and_audit(control: ControlPlane, town: Town) -> None:
    log = audit_log(control, town.home)
    # The first nominal whose name and date of birth are all known (index order is not fixed,
    # and a golden record may lack a date of birth).
    row = next(
        r
        for r in town.index.table.to_pylist()
        if r["given_name"] and r["family_name"] and r["date_of_birth"]
    )
    query = parse_query(given_name=row["given_name"], family_name=row["family_name"],
                        dob=row["date_of_birth"].isoformat())  # fmt: skip
    with control.session() as s:
        user = get_user(s, town.users["practitioner"])
        access = decide_search(s, user, PURPOSE)
        result = governed_search(town.index, query, access, log, user, limit=3)
    assert result.hits[0].nominal_id == row["unique_id"]
    with control.session() as s:
        council = get_user(s, town.users["council"])
        with pytest.raises(SearchDenied):
            governed_search(town.index, query, decide_search(s, council, PURPOSE), log, council)
        # The data owner suspends every dataset the person is known through: not found.
        for dataset in row["datasets"]:
            suspend_dataset(s, dataset, "dpo", "test of suspension")
    with control.session() as s:
        user = get_user(s, town.users["practitioner"])
        after = governed_search(town.index, query, decide_search(s, user, PURPOSE), log, user)
    assert row["unique_id"] not in {h.nominal_id for h in after.hits}
    log_entries = [e for e in entries(control) if e.action == "search"]
    assert [(e.outcome, e.username) for e in log_entries] == [
        ("allowed", town.users["practitioner"]),
        ("denied", town.users["council"]),
        ("allowed", town.users["practitioner"]),
    ]
    assert row["unique_id"] in json.loads(log_entries[0].nominal_ids)
    assert all(e.purpose == PURPOSE for e in log_entries)
    assert log.verify().ok


def test_decide_many_agrees_with_decide(control: ControlPlane, town: Town) -> None:
    """Search asks about every dataset at once; the answers are those of ``decide``, rule by
    rule (suspension, onboarding, agreement state, training, pseudonymised roles)."""
    from datetime import UTC, date, datetime, timedelta

    from nominal.govern.admin import (
        get_agreement,
        record_training,
        set_agreement_status,
        set_checklist,
    )
    from nominal.govern.models import Dataset
    from nominal.govern.policy import decide, decide_many

    def check(kind: str, purpose: str = PURPOSE) -> int:
        at = datetime.now(UTC)
        with control.session() as s:
            user = get_user(s, town.users[kind])
            datasets = list(s.scalars(sa.select(Dataset).order_by(Dataset.code)))
            many = decide_many(s, user, purpose, datasets, at)
            one = {d.code: decide(s, user, purpose, d, None, at) for d in datasets}
        assert many == one
        return sum(d.allowed for d in many.values())

    everything = check("practitioner")
    assert everything > 2
    assert check("analyst") == everything
    assert check("analyst", "research") == everything
    assert check("council") == 0
    assert check("practitioner", "no_such_purpose") == 0
    with control.session() as s:
        codes = list(s.scalars(sa.select(Dataset.code).order_by(Dataset.code)))
        suspend_dataset(s, codes[0], "dpo", "test")
    assert check("practitioner") == everything - 1
    with control.session() as s:
        partner = s.scalars(sa.select(Dataset).where(Dataset.code == codes[1])).one().partner
        set_checklist(s, get_agreement(s, "ISA-2-SG"), partner.code, dpia_recorded=False)
    assert check("practitioner") < everything - 1
    with control.session() as s:
        record_training(
            s, get_user(s, town.users["practitioner"]), date.today() - timedelta(days=900)
        )
    assert check("practitioner") == 0
    with control.session() as s:
        set_agreement_status(s, get_agreement(s, "ISA-2-SG"), "suspended")
    assert check("analyst") == 0


def test_cached_decisions_follow_every_change(control: ControlPlane, town: Town) -> None:
    """Decisions reused from the cache are always those decided afresh: every change to
    what the policy reads bumps the policy version (database triggers, so hand-written
    SQL too), and a suspension recorded ahead of time applies from its moment."""
    from datetime import UTC, datetime, timedelta

    from nominal.govern.models import Dataset, DatasetSuspension
    from nominal.govern.policy import DecisionCache, policy_version

    ahead = [timedelta(0)]  # how far the cache's clock is ahead of the real one

    def clock() -> datetime:
        return datetime.now(UTC) + ahead[0]

    cache = DecisionCache(clock=clock)

    def check(kind: str = "practitioner") -> int:
        with control.session() as s:
            user = get_user(s, town.users[kind])
            cached = decide_search(s, user, PURPOSE, cache=cache)
            fresh = decide_search(s, user, PURPOSE, clock())
        assert cached.decisions == fresh.decisions
        return len(cached.allowed_datasets)

    everything = check()
    assert everything > 2
    assert check() == everything and cache.hits == 1
    with control.session() as s:
        codes = list(s.scalars(sa.select(Dataset.code).order_by(Dataset.code)))
        before = policy_version(s)
        suspend_dataset(s, codes[0], "dpo", "test")
    with control.session() as s:
        assert policy_version(s) != before
    assert check() == everything - 1
    # Hand-written SQL, not the admin functions: the trigger still sees it.
    with control.session() as s:
        s.execute(sa.text("UPDATE users SET nominated = :f WHERE username = :u"),
                  {"f": False, "u": town.users["practitioner"]})  # fmt: skip
    assert check() == 0
    with control.session() as s:
        s.execute(sa.text("UPDATE users SET nominated = :t WHERE username = :u"),
                  {"t": True, "u": town.users["practitioner"]})  # fmt: skip
    assert check() == everything - 1
    # A suspension recorded to start in an hour: no write when it starts, yet it applies.
    with control.session() as s:
        dataset = s.scalars(sa.select(Dataset).where(Dataset.code == codes[1])).one()
        s.add(DatasetSuspension(dataset_id=dataset.id, suspended_by="dpo", reason="planned",
                                suspended_at=clock() + timedelta(hours=1)))  # fmt: skip
    assert check() == everything - 1
    hits = cache.hits
    assert check() == everything - 1 and cache.hits == hits + 1
    ahead[0] = timedelta(hours=2)
    assert check() == everything - 2
    assert check("council") == 0
