"""Demo governance: partners, purposes, agreements and a user for every role.

Built from the synthetic feed contracts (``nominal synth ... --out DIR`` writes them to
``DIR/contracts``): each partner of a contract becomes a partner, each contract a
dataset, each agreement a contract names becomes a live tier-2 agreement (resting on
one tier-1 agreement between every partner) covering its datasets for the demo
purposes, with complete onboarding. The demo users all have the password
``demo-password-1234`` and a TOTP secret; ``nominal user demo-code USER`` prints the
current code. Never use these accounts outside a demo.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from nominal.config import Home
from nominal.contracts.model import load_contracts
from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.auth import hash_password, new_totp_secret
from nominal.govern.models import Agreement, AgreementRecipient, OnboardingChecklist, User

DEMO_PASSWORD = "demo-password-1234"  # noqa: S105 - the published demo password

PURPOSES: tuple[tuple[str, str, str, bool], ...] = (
    (
        "safeguarding_children",
        "Safeguarding children",
        "Identifying and protecting children at risk of harm (Children Act 1989 s.47, Children Act 2004 s.11).",
        False,
    ),
    (
        "domestic_abuse",
        "Domestic abuse risk management",
        "Assessing and managing the risk to victims of domestic abuse and their households.",
        False,
    ),
    (
        "fire_prevention",
        "Fire prevention",
        "Targeting home fire safety visits at the people most at risk (Fire and Rescue Services Act 2004 s.6).",
        False,
    ),
    (
        "research",
        "Research on pseudonymised data",
        "Analysis and model building on pseudonymised, linked data only.",
        True,
    ),
)

LEGAL_GATEWAY = (
    "Crime and Disorder Act 1998 s.17 and s.115; Children Act 2004 s.11; "
    "UK GDPR art. 6(1)(e) and 9(2)(g) with Data Protection Act 2018 sch. 1"
)

# (username, full name, partner code, role)
USERS: tuple[tuple[str, str, str, str], ...] = (
    ("pat.practitioner", "Pat Practitioner", "KCC", "practitioner"),
    ("ann.analyst", "Ann Analyst", "KCC", "analyst"),
    ("dan.owner", "Dan Owner", "NPOL", "data_owner"),
    ("iris.ig", "Iris Governance", "KCC", "ig_lead"),
    ("adam.admin", "Adam Administrator", "KCC", "admin"),
)
RECIPIENT_ROLES = ("practitioner", "analyst", "data_owner")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    full_name: str
    partner: str
    role: str
    password: str
    totp_secret: str


@dataclass
class DemoAccounts:
    accounts: list[DemoAccount] = field(default_factory=list)
    partners: int = 0
    datasets: int = 0
    agreements: int = 0
    purposes: int = 0

    def by_role(self, role: str) -> DemoAccount:
        for account in self.accounts:
            if account.role == role:
                return account
        raise KeyError(role)

    def to_json(self) -> dict[str, Any]:
        return {
            "partners": self.partners,
            "datasets": self.datasets,
            "agreements": self.agreements,
            "purposes": self.purposes,
            "accounts": [
                {
                    "username": a.username,
                    "role": a.role,
                    "partner": a.partner,
                    "password": a.password,
                }
                for a in self.accounts
            ],
        }


def seed_demo(
    home: Home,
    contracts_folder: str | Path,
    *,
    database_url: str | None = None,
    today: date | None = None,
) -> DemoAccounts:
    """Create (or refresh) the demo governance in ``home``'s control plane."""
    today = today or datetime.now(UTC).date()
    contracts = load_contracts(contracts_folder)
    control = ControlPlane(database_url or home.database_url)
    result = DemoAccounts()
    try:
        with control.session() as s:
            for code, name, description, pseudo in PURPOSES:
                admin.add_purpose(s, code, name, description, pseudonymised_only=pseudo)
            datasets = [admin.register_contract(s, c) for c in contracts]
            partner_codes = sorted({c.partner.code for c in contracts})
            partners = [admin.get_partner(s, code) for code in partner_codes]
            tier1 = s.scalar(sa.select(Agreement).where(Agreement.reference == "ISA-T1-HUB"))
            if tier1 is None:
                tier1 = admin.add_agreement(
                    s,
                    "ISA-T1-HUB",
                    1,
                    "Integrated analytics hub: intent to share",
                    parties=partner_codes,
                    legal_gateway=LEGAL_GATEWAY,
                    start=today - timedelta(days=730),
                    end=today + timedelta(days=3 * 365),
                    status="live",
                )
            by_ref: dict[str, list[str]] = defaultdict(list)
            for c in contracts:
                by_ref[c.agreement].append(c.dataset)
            for ref, codes in sorted(by_ref.items()):
                agreement = s.scalar(sa.select(Agreement).where(Agreement.reference == ref))
                if agreement is None:
                    agreement = admin.add_agreement(
                        s,
                        ref,
                        2,
                        "Sharing " + ", ".join(sorted(codes)).replace("_", " "),
                        parent=tier1.reference,
                        legal_gateway=LEGAL_GATEWAY,
                        purposes=[p[0] for p in PURPOSES],
                        start=today - timedelta(days=365),
                        end=today + timedelta(days=2 * 365),
                        dpia_reference=f"DPIA-{ref}",
                        dpia_document=f"dpia/{ref}.pdf",
                    )
                    agreement.parties = list(partners)
                for code in codes:
                    admin.share_dataset(s, agreement, code, ["*"])
                have = {(r.partner_id, r.role) for r in agreement.recipients}
                for partner in partners:
                    for role in RECIPIENT_ROLES:
                        if (partner.id, role) not in have:
                            agreement.recipients.append(
                                AgreementRecipient(partner=partner, role=role)
                            )
                admin.set_agreement_status(s, agreement, "live")
                existing = {
                    c.partner_id: c
                    for c in s.scalars(
                        sa.select(OnboardingChecklist).where(
                            OnboardingChecklist.agreement_id == agreement.id
                        )
                    )
                }
                providers = {d.partner_id for d in datasets if d.code in codes}
                for partner in partners:
                    checklist = existing.get(partner.id) or OnboardingChecklist(
                        agreement_id=agreement.id, partner_id=partner.id
                    )
                    for item, _label in OnboardingChecklist.ITEMS:
                        setattr(checklist, item, True)
                    checklist.provides_data = partner.id in providers
                    checklist.receives_data = True
                    s.add(checklist)
                s.flush()
            # One argon2id hash for the one published demo password (hashing is slow on purpose).
            demo_hash = hash_password(DEMO_PASSWORD)
            for username, full_name, partner_code, role in USERS:
                user = s.scalar(sa.select(User).where(User.username == username))
                if user is None:
                    user = admin.add_user(s, username, full_name, partner_code, role)
                    user.password_hash = demo_hash
                else:
                    user.password_hash = demo_hash
                    user.totp_secret = user.totp_secret or new_totp_secret()
                    user.failed_attempts = 0
                    user.locked_until = None
                admin.nominate(s, user, by="demo")
                admin.record_training(
                    s, user, today - timedelta(days=30), today + timedelta(days=335)
                )
                assert user.totp_secret is not None
                result.accounts.append(
                    DemoAccount(
                        username, full_name, partner_code, role, DEMO_PASSWORD, user.totp_secret
                    )
                )
            result.partners = len(partner_codes)
            result.datasets = len(datasets)
            result.agreements = len(by_ref) + 1
            result.purposes = len(PURPOSES)
    finally:
        control.dispose()
    return result
