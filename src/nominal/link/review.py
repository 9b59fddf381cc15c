"""Clerical review: list the queue, record decisions, split a wrongly merged nominal.

A decision is stored for the pair of records (never for nominal ids, which can
change), so every later link run applies it: a ``match`` adds an edge between the
two records whatever the model says, a ``non_match`` removes their edge. Splitting a
nominal records ``non_match`` between each record split off and each record left,
then re-links the affected nominals at once so the split shows in the gold tables
and in ``gold.nominal_lineage`` (a ``split`` row from the old id to the new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.link.models import LinkDecision, LinkReviewItem, LinkSplit

DECISIONS = ("match", "non_match")


class ReviewError(ValueError):
    """A review request that cannot be carried out (unknown item, bad decision, ...)."""


@dataclass(frozen=True)
class Decided:
    record_key_l: str
    record_key_r: str
    decision: str


def list_items(home: Home, status: str = "open", limit: int = 50) -> list[dict[str, Any]]:
    """Review items, most uncertain first (probability nearest one half)."""
    cp = ControlPlane(home.database_url)
    try:
        with cp.session() as session:
            query = select(LinkReviewItem)
            if status != "all":
                query = query.where(LinkReviewItem.status == status)
            items = session.scalars(query).all()
            rows = [
                {
                    "id": i.id,
                    "record_key_l": i.record_key_l,
                    "record_key_r": i.record_key_r,
                    "nominal_id_l": i.nominal_id_l,
                    "nominal_id_r": i.nominal_id_r,
                    "match_probability": round(i.match_probability, 4),
                    "match_weight": round(i.match_weight, 2),
                    "status": i.status,
                    "run_id": i.run_id,
                }
                for i in items
            ]
    finally:
        cp.dispose()
    rows.sort(key=lambda r: (abs(float(r["match_probability"] or 0) - 0.5), int(r["id"] or 0)))
    return rows[:limit]


def decide(
    home: Home,
    *,
    decision: str,
    by: str,
    reason: str,
    item_id: int | None = None,
    record_keys: tuple[str, str] | None = None,
) -> Decided:
    """Record a reviewer's decision on a review item or on any pair of records."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not by.strip() or not reason.strip():
        raise ReviewError("a decision needs the reviewer (--by) and a reason (--reason)")
    cp = ControlPlane(home.database_url)
    try:
        with cp.session() as session:
            if item_id is not None:
                item = session.get(LinkReviewItem, item_id)
                if item is None:
                    raise ReviewError(f"review item {item_id} not found")
                left, right = item.record_key_l, item.record_key_r
                item.status = "decided"
            elif record_keys is not None:
                left, right = sorted(record_keys)
                if left == right:
                    raise ReviewError("a decision needs two different records")
                for item in session.scalars(
                    select(LinkReviewItem).where(
                        LinkReviewItem.record_key_l == left, LinkReviewItem.record_key_r == right
                    )
                ):
                    item.status = "decided"
            else:
                raise ReviewError("give a review item id or two record keys")
            session.add(
                LinkDecision(
                    record_key_l=left,
                    record_key_r=right,
                    decision=decision,
                    decided_by=by,
                    reason=reason,
                )
            )
    finally:
        cp.dispose()
    return Decided(left, right, decision)


def split(
    home: Home, nominal_id: str, record_keys: list[str], *, by: str, reason: str
) -> dict[str, Any]:
    """Split ``record_keys`` off ``nominal_id`` (rectification of a wrong merge)."""
    from nominal.link.pipeline import table_rows

    if not by.strip() or not reason.strip():
        raise ReviewError("a split needs the reviewer (--by) and a reason (--reason)")
    members = {
        r["record_key"]
        for r in table_rows(
            home, "gold.nominal_records", f"nominal_id = '{nominal_id.replace(chr(39), '')}'"
        )
    }
    if not members:
        raise ReviewError(f"nominal {nominal_id} not found in gold.nominal_records")
    chosen = set(record_keys)
    unknown = chosen - members
    if unknown:
        raise ReviewError(f"records not in nominal {nominal_id}: {', '.join(sorted(unknown))}")
    rest = members - chosen
    if not chosen or not rest:
        raise ReviewError("a split must leave records on both sides")
    cp = ControlPlane(home.database_url)
    try:
        with cp.session() as session:
            record = LinkSplit(
                nominal_id=nominal_id,
                record_keys=",".join(sorted(chosen)),
                decided_by=by,
                reason=reason,
            )
            session.add(record)
            session.flush()
            for a in sorted(chosen):
                for b in sorted(rest):
                    left, right = sorted((a, b))
                    session.add(
                        LinkDecision(
                            record_key_l=left,
                            record_key_r=right,
                            decision="non_match",
                            decided_by=by,
                            reason=reason,
                            split_id=record.id,
                        )
                    )
            split_id = record.id
    finally:
        cp.dispose()
    return {"split_id": split_id, "nominal_id": nominal_id, "records_split": len(chosen)}
