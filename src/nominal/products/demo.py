"""Demo set-up for the products: a team per partner, the example pathways and a few
programme risks, so the tasking and benefits pages have something to work with."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.models import Partner
from nominal.products import pathways, tasking
from nominal.products.models import ProgrammeRisk, Team

EXAMPLE_RISKS: tuple[tuple[str, str, int, int, str], ...] = (
    (
        "Partners stop sending a feed",
        "Programme board",
        3,
        4,
        "Data sharing agreements with named data owners; feed freshness on the dashboard",
    ),
    (
        "Practitioners do not record outcomes",
        "Head of early help",
        4,
        3,
        "Outcome required to close a task; monthly compliance report",
    ),
    (
        "Linkage errors join two families",
        "Information governance lead",
        2,
        5,
        "Clerical review of uncertain links; merges and splits keep task history",
    ),
)


def seed_products(home: Home, database_url: str | None = None) -> dict[str, Any]:
    """Create (once) a team per partner, the example pathways and example risks."""
    control = ControlPlane(database_url or home.database_url)
    try:
        with control.session() as s:
            teams = 0
            for partner in s.scalars(sa.select(Partner).order_by(Partner.code)):
                code = f"{partner.code.lower()}-team"
                if s.scalar(sa.select(Team).where(Team.code == code)) is None:
                    tasking.add_team(s, code, f"{partner.name} team", partner.code)
                    teams += 1
            escalation = s.scalar(sa.select(Team).order_by(Team.id))
            made = pathways.install_examples(s, escalation_team=escalation)
            risks = 0
            if s.scalar(sa.select(sa.func.count()).select_from(ProgrammeRisk)) == 0:
                for title, owner, likelihood, impact, mitigation in EXAMPLE_RISKS:
                    s.add(
                        ProgrammeRisk(
                            title=title,
                            owner=owner,
                            likelihood=likelihood,
                            impact=impact,
                            mitigation=mitigation,
                        )
                    )
                    risks += 1
        return {"ok": True, "teams": teams, "pathways": len(made), "risks": risks}
    finally:
        control.dispose()
