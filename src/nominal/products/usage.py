"""System usage from the audit log: sign-ins, searches, views and queries by partner,
role and week.

Every read of personal data already leaves an audit entry, so usage needs no
tracking of its own: it is a summary of the tamper-evident log. Actions are grouped
into the kinds a programme board asks about (:func:`kind_of`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.govern.models import AuditEntry

KINDS: tuple[str, ...] = ("sign-ins", "searches", "views", "queries", "changes")


def kind_of(action: str) -> str | None:
    """The usage kind of an audit action (None: not counted as use, e.g. a seal)."""
    name = action.lower()
    if name == "sign_in":
        return "sign-ins"
    if "search" in name:
        return "searches"
    if name.startswith("workbench"):
        return "queries"
    if name in ("read", "reidentify", "export") or name.startswith(
        ("view", "read", "dashboard", "map")
    ):
        return "views"
    if "." in name or name.startswith(("task", "pathway", "create", "update")):
        return "changes"
    return None


def week_of(at: datetime) -> date:
    """The Monday of the ISO week of ``at``."""
    day = at.date()
    return day - timedelta(days=day.weekday())


@dataclass
class UsageRow:
    week: date
    partner: str
    role: str
    kind: str
    allowed: int
    denied: int

    def to_json(self) -> dict[str, Any]:
        return {
            "week": self.week.isoformat(),
            "partner": self.partner,
            "role": self.role,
            "kind": self.kind,
            "allowed": self.allowed,
            "denied": self.denied,
        }


def usage(session: Session, *, weeks: int = 12, now: datetime | None = None) -> list[UsageRow]:
    """Counts of use by week, partner, role and kind over the last ``weeks`` weeks.

    Sign-ins that failed have no partner or role yet (the user was not identified);
    they are counted under ``unknown``.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(weeks=weeks)
    counts: Counter[tuple[date, str, str, str, bool]] = Counter()
    rows = session.execute(
        sa.select(
            AuditEntry.at,
            AuditEntry.partner,
            AuditEntry.role,
            AuditEntry.action,
            AuditEntry.outcome,
        )
        .where(AuditEntry.at >= since)
        .execution_options(yield_per=5000)
    )
    for at, partner, role, action, outcome in rows:
        kind = kind_of(action)
        if kind is None:
            continue
        counts[
            (week_of(at), partner or "unknown", role or "unknown", kind, outcome == "allowed")
        ] += 1
    merged: dict[tuple[date, str, str, str], UsageRow] = {}
    for (week, partner, role, kind, ok), n in counts.items():
        row = merged.setdefault(
            (week, partner, role, kind), UsageRow(week, partner, role, kind, 0, 0)
        )
        if ok:
            row.allowed += n
        else:
            row.denied += n
    return sorted(merged.values(), key=lambda r: (r.week, r.partner, r.role, KINDS.index(r.kind)))


def totals(rows: list[UsageRow], by: str) -> dict[str, dict[str, int]]:
    """``{partner|role|week: {kind: allowed count}}`` for the summary tables."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        key = row.week.isoformat() if by == "week" else getattr(row, by)
        bucket = out.setdefault(key, dict.fromkeys(KINDS, 0))
        bucket[row.kind] += row.allowed
    return dict(sorted(out.items()))
