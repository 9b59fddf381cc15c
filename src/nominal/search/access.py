"""Search behind the policy decision point: who may find whom, and see which fields.

A golden nominal joins records from many partners' datasets, each shared under its
own agreements. For a search by one user for one purpose:

* the policy decision point (:func:`nominal.govern.policy.decide`) is asked about every
  dataset; a nominal is found only if it has a record in at least one dataset the
  user may see for that purpose (deny by default: no covered dataset, no result);
* a golden-record value is shown only if a covered dataset the nominal has records in
  makes that field visible; every other value is shown as withheld, never silently
  dropped, so the practitioner knows something exists that they may not see;
* under a pseudonymised-only purpose, or for analysts, identifying fields are
  withheld and the nominal is known by its pseudonym;
* every search, allowed or denied, writes one audit entry with the purpose, the
  query, and the nominal ids returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.govern.audit import AuditLog
from nominal.govern.models import Dataset, User
from nominal.govern.policy import Decision, DecisionCache, decide, decide_many
from nominal.search.engine import Hit, SearchResult, search
from nominal.search.index import SearchIndex
from nominal.search.query import Query

WITHHELD = "withheld"
# Golden-record fields a search result or person view may show, as agreements name them.
RECORD_FIELDS: tuple[str, ...] = (
    "given_name",
    "middle_names",
    "family_name",
    "date_of_birth",
    "sex",
    "address_line_1",
    "town",
    "postcode",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
)


class SearchDenied(PermissionError):
    """No dataset may be searched by this user for this purpose; reasons say why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons) or "access denied")
        self.reasons = reasons


@dataclass
class SearchAccess:
    """The policy decisions for one user and purpose, per dataset."""

    username: str
    purpose: str
    decisions: dict[str, Decision]
    decided_at: float = field(default_factory=time.monotonic)

    @property
    def allowed_datasets(self) -> set[str]:
        return {code for code, d in self.decisions.items() if d.allowed}

    @property
    def allowed(self) -> bool:
        return bool(self.allowed_datasets)

    def denial_reasons(self) -> list[str]:
        reasons: list[str] = []
        for decision in self.decisions.values():
            for reason in decision.reasons:
                if reason not in reasons:
                    reasons.append(reason)
        if not reasons:
            return ["no dataset is shared with you for this purpose"]
        if len(reasons) > 3:
            return [*reasons[:3], f"and {len(reasons) - 3} more"]
        return reasons

    def visible_fields(self, datasets: Iterable[str]) -> set[str]:
        """Fields visible through any allowed dataset among ``datasets``."""
        visible: set[str] = set()
        for code in datasets:
            decision = self.decisions.get(code)
            if decision is not None and decision.allowed:
                visible |= decision.visible_columns
        return visible

    def pseudonymised_only(self) -> bool:
        allowed = [d for d in self.decisions.values() if d.allowed]
        return bool(allowed) and all(d.pseudonymised_only for d in allowed)

    def filter_record(self, record: dict[str, Any], datasets: Iterable[str]) -> dict[str, Any]:
        """The record with each field not visible replaced by ``"withheld"``."""
        visible = self.visible_fields(datasets)
        out: dict[str, Any] = {}
        for name, value in record.items():
            if name in RECORD_FIELDS:
                out[name] = value if name in visible else (WITHHELD if value is not None else None)
            else:
                out[name] = value
        if self.pseudonymised_only():
            out["nominal_id"] = WITHHELD
        return out


def decide_search(
    session: Session,
    user: User,
    purpose: str,
    at: datetime | None = None,
    *,
    cache: DecisionCache | None = None,
) -> SearchAccess:
    """Ask the policy decision point about every dataset for ``user`` and ``purpose``.

    With ``cache`` (and no ``at``: decisions for now), the decisions are reused while
    the control plane's policy version and the day are unchanged (see
    :class:`nominal.govern.policy.DecisionCache`): a change to any agreement, user or
    suspension still applies to the very next search.
    """
    if cache is not None and at is None:
        return cache.get(
            session, user, purpose, lambda now: _decide_search(session, user, purpose, now)
        )
    return _decide_search(session, user, purpose, at or datetime.now(UTC))


def _decide_search(session: Session, user: User, purpose: str, at: datetime) -> SearchAccess:
    datasets = list(session.scalars(sa.select(Dataset).order_by(Dataset.code)))
    # One decision per dataset, read in a handful of queries.
    decisions = decide_many(session, user, purpose, datasets, at)
    if not decisions:
        decisions["(none)"] = decide(session, user, purpose, None, None, at)
    return SearchAccess(user.username, purpose, decisions)


@dataclass
class GovernedHit:
    """A hit as the caller may see it."""

    nominal_id: str
    score: float
    match_weight: float
    reasons: list[str]
    record: dict[str, Any]
    datasets: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "nominal_id": self.nominal_id,
            "score": round(self.score, 4),
            "match_weight": round(self.match_weight, 2),
            "reasons": self.reasons,
            "record": {
                k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.record.items()
            },
        }


@dataclass
class GovernedResult:
    hits: list[GovernedHit]
    candidates: int
    seconds: float
    audit_seq: int | None

    def to_json(self) -> list[dict[str, Any]]:
        return [h.to_json() for h in self.hits]


def _governed(hit: Hit, access: SearchAccess) -> GovernedHit:
    record = access.filter_record(hit.record, hit.datasets)
    visible = access.allowed_datasets.intersection(hit.datasets)
    return GovernedHit(
        nominal_id=record["nominal_id"] if access.pseudonymised_only() else hit.nominal_id,
        score=hit.score,
        match_weight=hit.match_weight,
        reasons=hit.reasons,
        record=record,
        datasets=sorted(visible),
    )


def governed_search(
    index: SearchIndex,
    query: Query,
    access: SearchAccess,
    audit: AuditLog,
    user: User,
    *,
    limit: int = 20,
    client: str | None = None,
    phase: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> GovernedResult:
    """Search as ``user`` under ``access``; audited whether allowed or denied.

    Raises :class:`SearchDenied` (after auditing the denial) when no dataset is covered.
    ``phase(name)``, if given, times the ``search`` and ``audit`` steps.
    """
    timed = phase or (lambda _name: nullcontext())
    detail: dict[str, Any] = {"query": query.to_json(), "limit": limit}
    if not access.allowed:
        reasons = access.denial_reasons()
        audit.record(
            "search", "denied", user=user, purpose=access.purpose, client=client,
            detail={**detail, "reasons": reasons[:10]},
        )  # fmt: skip
        raise SearchDenied(reasons)
    with timed("search"):
        result: SearchResult = search(
            index, query, limit=limit, allowed_datasets=access.allowed_datasets
        )
        hits = [_governed(h, access) for h in result.hits]
    with timed("audit"):
        entry = audit.record(
            "search",
            "allowed",
            user=user,
            purpose=access.purpose,
            nominal_ids=[h.nominal_id for h in result.hits],
            client=client,
            detail={**detail, "results": len(hits), "candidates": result.candidates},
        )
    return GovernedResult(hits, result.candidates, result.seconds, entry.seq)
