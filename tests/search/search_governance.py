"""Agreements, purposes and users for search tests on a synthetic town.

One live tier-2 agreement shares every dataset for safeguarding with police
practitioners, except ``school_census`` whose identifying fields other than names
and date of birth are not shared (so tests can see fields withheld). A council
practitioner has no agreement at all; an analyst is covered but sees pseudonyms only.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.auth import new_totp_secret

PURPOSE = "safeguarding"
PARTIAL_DATASET = "school_attendance"
PARTIAL_FIELDS = ("record_id", "given_name", "family_name", "date_of_birth")
PASSWORD = "correct horse 1"
TOTP: dict[str, str] = {}


def setup_governance(control: ControlPlane, contracts: Path) -> dict[str, str]:
    """Register the contracts and the agreement; returns username by kind.

    Each user's TOTP secret is kept in :data:`TOTP` so tests can sign in.
    """
    today = date.today()
    with control.session() as s:
        datasets = admin.load_contract_folder(s, contracts)
        admin.add_purpose(s, PURPOSE, "Safeguarding a child or adult at risk")
        admin.add_purpose(s, "research", "Research", pseudonymised_only=True)
        partners = sorted({d.partner.code for d in datasets})
        admin.add_agreement(
            s, "ISA-1", 1, "Kettleby information sharing (tier 1)", parties=partners,
            start=today - timedelta(days=400), status="live",
        )  # fmt: skip
        t2 = admin.add_agreement(
            s, "ISA-2-SG", 2, "Safeguarding", parent="ISA-1", purposes=[PURPOSE, "research"],
            parties=partners, start=today - timedelta(days=300),
            legal_gateway="Children Act 2004 s.11",
        )  # fmt: skip
        for d in datasets:
            if d.code == PARTIAL_DATASET:
                admin.share_dataset(s, t2, d.code, [f for f in PARTIAL_FIELDS if f in d.fields])
            else:
                admin.share_dataset(s, t2, d.code)
        admin.add_recipient(s, t2, "NPOL", "practitioner")
        admin.add_recipient(s, t2, "NPOL", "analyst")
        admin.set_agreement_status(s, t2, "live")
        for code in partners:
            admin.set_checklist(
                s, t2, code, tier1_signed=True, tier2_signed=True, dpia_recorded=True,
                feed_validated=True, users_trained=True,
            )  # fmt: skip
        users = {"practitioner": ("pc.jones", "NPOL", "practitioner"),
                 "council": ("sw.khan", "KCC", "practitioner"),
                 "analyst": ("an.lee", "NPOL", "analyst")}  # fmt: skip
        for username, partner, role in users.values():
            TOTP.setdefault(username, new_totp_secret())
            user = admin.add_user(
                s, username, username, partner, role, password=PASSWORD, totp_secret=TOTP[username]
            )
            admin.nominate(s, user, by="dpo")
            admin.record_training(s, user, today - timedelta(days=10))
    return {kind: spec[0] for kind, spec in users.items()}
