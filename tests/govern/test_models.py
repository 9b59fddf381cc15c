"""The governance schema migrates and round-trips on both databases."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.models import Agreement, OnboardingChecklist, User


def test_schema_round_trip(control: ControlPlane) -> None:
    with control.session() as s:
        admin.add_partner(s, "NPOL", "Northshire Police", "police")
        admin.add_partner(s, "KCC", "Kingsford County Council", "council")
        admin.add_purpose(s, "safeguarding_children", "Safeguarding children")
        s.add(
            __import__("nominal.govern.models", fromlist=["Dataset"]).Dataset(
                code="crimes",
                title="Crimes",
                partner_id=admin.get_partner(s, "NPOL").id,
                fields_json='["event_date", "given_name"]',
            )
        )
        s.flush()
        t1 = admin.add_agreement(
            s, "T1", 1, "Intent to share", parties=["NPOL", "KCC"], status="live"
        )
        t2 = admin.add_agreement(
            s,
            "T2",
            2,
            "Safeguarding",
            parent=t1.reference,
            purposes=["safeguarding_children"],
            start=date(2024, 1, 1),
            end=date(2030, 1, 1),
            legal_gateway="Children Act 2004 s.11",
        )
        admin.share_dataset(s, t2, "crimes", ["event_date"])
        admin.add_recipient(s, t2, "KCC", "practitioner")
        admin.set_agreement_status(s, t2, "live")
        admin.set_checklist(s, t2, "NPOL", tier1_signed=True, tier2_signed=True, dpia_recorded=True)
        user = admin.add_user(
            s, "ann", "Ann Analyst", "KCC", "analyst", password="correct horse battery"
        )
        admin.nominate(s, user, by="ig")
        admin.record_training(s, user, date(2026, 1, 1))
    with control.session() as s:
        agreement = s.scalar(sa.select(Agreement).where(Agreement.reference == "T2"))
        assert agreement is not None
        assert [p.code for p in agreement.purposes] == ["safeguarding_children"]
        assert agreement.datasets[0].fields == ["event_date"]
        assert agreement.state(date(2031, 1, 1)) == "expired"
        assert agreement.state(date(2025, 1, 1)) == "live"
        check = s.scalar(sa.select(OnboardingChecklist))
        assert check is not None and check.provides_data and not check.receives_data
        assert check.outstanding == ["feed_validated"]
        user = s.scalar(sa.select(User).where(User.username == "ann"))
        assert user is not None and user.trained_on(date(2026, 6, 1))
        assert not user.trained_on(date(2027, 6, 1))
        assert user.password_hash and user.password_hash.startswith("$argon2id$")


def test_rules_are_enforced(control: ControlPlane) -> None:
    with control.session() as s:
        admin.add_partner(s, "NPOL", "Northshire Police")
        with pytest.raises(admin.GovernError, match="role must be one of"):
            admin.add_user(s, "x", "X", "NPOL", "superuser")
        with pytest.raises(admin.GovernError, match="unknown partner"):
            admin.add_user(s, "x", "X", "NOPE", "analyst")
        t2 = admin.add_agreement(s, "T2", 2, "Use case")
        with pytest.raises(admin.GovernError, match="before it goes live"):
            admin.set_agreement_status(s, t2, "live")
    # The database itself refuses a role outside the list (not only the Python layer).
    with pytest.raises(sa.exc.IntegrityError), control.session() as s:
        s.execute(
            sa.text(
                "INSERT INTO users (username, full_name, partner_id, role, nominated, active, "
                "failed_attempts, created_at) VALUES ('y', 'Y', 1, 'root', false, true, 0, "
                "CURRENT_TIMESTAMP)"
            )
        )
