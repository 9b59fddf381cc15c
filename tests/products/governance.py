"""A small governed hub for the products' tests: every partner of the synthetic
contracts, one tier-1 agreement, and tier-2 agreements that share only *some*
datasets, so tests can prove the products show exactly what is shared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from nominal.contracts.model import load_contracts
from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.models import OnboardingChecklist

PASSWORD = "correct-horse-battery-9"
# The analyst's (and practitioner's) agreement shares these datasets only.
SHARED = (
    "crimes",
    "police_incidents",
    "domestic_abuse",
    "mental_health",
    "early_help",
    "cin_cp_plans",
)


@dataclass
class Governed:
    partners: list[str]
    analyst: str = "ana"
    practitioner: str = "pat"
    research: str = "research"
    safeguarding: str = "safeguarding"
    host_partner: str = ""


def govern_hub(
    control: ControlPlane, contracts: Path, totp: dict[str, str] | None = None
) -> Governed:
    today = date.today()
    with control.session() as s:
        found = load_contracts(contracts)
        for contract in found:
            admin.register_contract(s, contract)
        partners = sorted({c.partner.code for c in found})
        admin.add_purpose(
            s, "research", "Research", "pseudonymised analysis", pseudonymised_only=True
        )
        admin.add_purpose(s, "safeguarding", "Safeguarding", "protecting people at risk")
        tier1 = admin.add_agreement(
            s,
            "ISA-T1",
            1,
            "Overarching",
            purposes=["research", "safeguarding"],
            parties=partners,
            start=today - timedelta(days=365),
            status="live",
        )
        tier2 = admin.add_agreement(
            s,
            "ISA-T2-PRODUCTS",
            2,
            "Demand and safeguarding",
            parent=tier1.reference,
            purposes=["research", "safeguarding"],
            parties=partners,
            start=today - timedelta(days=365),
        )
        for code in SHARED:
            admin.share_dataset(s, tier2, code)
        host = partners[0]
        for partner in partners:
            for role in ("analyst", "practitioner", "admin"):
                admin.add_recipient(s, tier2, partner, role)
        items = {name: True for name, _ in OnboardingChecklist.ITEMS}
        for agreement in (tier1, tier2):
            for partner in partners:
                admin.set_checklist(s, agreement, partner, **items)
        admin.set_agreement_status(s, tier2, "live")
        for username, role in (("ana", "analyst"), ("pat", "practitioner"), ("adm", "admin")):
            user = admin.add_user(
                s,
                username,
                username.title(),
                host,
                role,
                password=PASSWORD,
                totp_secret=(totp or {}).get(username),
            )
            admin.nominate(s, user, "test")
            admin.record_training(s, user, today - timedelta(days=10), today + timedelta(days=300))
    return Governed(partners=partners, host_partner=host)
