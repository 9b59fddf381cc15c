"""The policy decision point: the one place that says who may read which fields, and why.

Every read of personal data (an API call, a page, an export, a re-identification) asks
:func:`decide` first and passes the data through :meth:`Decision.apply`. The rules, in
the words of the information sharing agreements:

* deny by default: nothing is visible unless every rule below is met;
* the user's account is active, the user is nominated, and their training is
  completed and in date on the day of the request;
* the dataset is not suspended by its data owner (read on every request, so a
  suspension takes effect on the next one);
* a tier-2 agreement is live on that day (status ``live``, within its start and end
  dates; its tier-1 agreement, if any, live too), lists the purpose, the dataset, and
  the user's partner and role among its recipients;
* the onboarding checklist of that agreement is complete for the partner providing the
  dataset and for the user's partner;
* only the fields the covering agreements list are visible; other requested fields are
  withheld (not an error);
* analysts, and everybody working under a pseudonymised-only purpose, never see
  identifying fields; lifting that for one record is re-identification
  (:mod:`nominal.govern.reidentify`), which needs a written justification.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from nominal.contracts.model import CANONICAL_IDENTITY_FIELDS
from nominal.govern.models import (
    ALL_FIELDS,
    Agreement,
    AgreementDataset,
    AgreementRecipient,
    Dataset,
    DatasetSuspension,
    OnboardingChecklist,
    Partner,
    PolicyVersion,
    Purpose,
    User,
)

# Columns that name a record only by its keyed pseudonym: kept whenever access is allowed,
# because without them pseudonymised data cannot be joined or re-identified on request.
PSEUDONYMOUS_COLUMNS: frozenset[str] = frozenset(
    {"record_key", "event_key", "nominal_pseudo", "household_pseudo", "unit_pseudo", "dataset"}
)

# Canonical field name -> column name in the silver tables where they differ.
FIELD_COLUMNS: dict[str, str] = {"record_id": "source_record_id"}


class AccessDenied(PermissionError):
    """The policy decision point refused the request; ``decision.reasons`` says why."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("; ".join(decision.reasons) or "access denied")
        self.decision = decision


T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """What the policy decision point decided for one request, with its reasons."""

    allowed: bool
    reasons: tuple[str, ...]
    visible_fields: tuple[str, ...]
    withheld_fields: tuple[str, ...]
    agreement_ids: tuple[int, ...] = ()
    agreement_refs: tuple[str, ...] = ()
    pseudonymised_only: bool = True
    dataset: str | None = None
    purpose: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def visible_columns(self) -> frozenset[str]:
        """Column names the caller may return: visible fields plus pseudonymous keys."""
        if not self.allowed:
            return frozenset()
        return frozenset(FIELD_COLUMNS.get(f, f) for f in self.visible_fields) | (
            PSEUDONYMOUS_COLUMNS
        )

    def require(self) -> Decision:
        if not self.allowed:
            raise AccessDenied(self)
        return self

    def apply(self, data: T) -> T:
        """Withhold every column that is not visible: a PyArrow table or a list of dicts.

        Columns the decision does not mention are withheld too (deny by default).
        Raises :class:`AccessDenied` if the request was not allowed at all.
        """
        self.require()
        keep = self.visible_columns
        if isinstance(data, pa.Table):
            return data.select([n for n in data.column_names if n in keep])
        if isinstance(data, list):
            return [{k: v for k, v in row.items() if k in keep} for row in data]  # type: ignore[return-value]
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k in keep}  # type: ignore[return-value]
        raise TypeError(f"cannot apply a decision to {type(data).__name__}")

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "visible_fields": list(self.visible_fields),
            "withheld_fields": list(self.withheld_fields),
            "agreements": list(self.agreement_refs),
            "pseudonymised_only": self.pseudonymised_only,
            "dataset": self.dataset,
            "purpose": self.purpose,
        }


def identity_fields(dataset: Dataset | None) -> frozenset[str]:
    """Fields that identify a person: the canonical identity fields and the contract's personal ones."""
    personal = set(dataset.personal_fields) if dataset is not None else set()
    return frozenset(CANONICAL_IDENTITY_FIELDS) | personal


def _lookup(session: Session, model: type[Any], value: Any) -> Any:
    if value is None or isinstance(value, model):
        return value
    return session.scalar(sa.select(model).where(model.code == str(value)))


def active_suspension(session: Session, dataset_id: int, at: datetime) -> DatasetSuspension | None:
    return session.scalar(
        sa.select(DatasetSuspension)
        .where(
            DatasetSuspension.dataset_id == dataset_id,
            DatasetSuspension.suspended_at <= at,
            sa.or_(DatasetSuspension.lifted_at.is_(None), DatasetSuspension.lifted_at > at),
        )
        .limit(1)
    )


def _deny(
    reasons: list[str], requested: Sequence[str], dataset: str | None, purpose: str | None
) -> Decision:
    return Decision(
        allowed=False,
        reasons=tuple(reasons),
        visible_fields=(),
        withheld_fields=tuple(requested),
        pseudonymised_only=True,
        dataset=dataset,
        purpose=purpose,
    )


def decide(
    session: Session,
    user: User,
    purpose: Purpose | str | None,
    dataset: Dataset | str | None,
    fields: Iterable[str] | None = None,
    at: datetime | None = None,
    *,
    reidentify: bool = False,
) -> Decision:
    """Decide whether ``user`` may read ``fields`` of ``dataset`` for ``purpose`` at ``at``.

    ``fields=None`` asks for every field of the dataset. ``reidentify=True`` is used
    only by the audited re-identification path, which has already checked the written
    justification; it lifts the analyst's pseudonymisation but no other rule.
    """
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    day = at.date()
    purpose_obj: Purpose | None = _lookup(session, Purpose, purpose)
    dataset_obj: Dataset | None = _lookup(session, Dataset, dataset)
    ds_code = dataset_obj.code if dataset_obj else (str(dataset) if dataset else None)
    pu_code = purpose_obj.code if purpose_obj else (str(purpose) if purpose else None)
    requested = list(dict.fromkeys(fields)) if fields is not None else []
    if fields is None and dataset_obj is not None:
        requested = dataset_obj.fields

    reasons = _user_reasons(user, day)
    if purpose_obj is None:
        reasons.append(f"unknown purpose {pu_code!r}" if pu_code else "no purpose given")
    if dataset_obj is None:
        reasons.append(f"unknown dataset {ds_code!r}" if ds_code else "no dataset given")
    if purpose_obj is None or dataset_obj is None:
        return _deny(reasons, requested, ds_code, pu_code)

    facts = _load_facts(session, user, purpose_obj, [dataset_obj], at)[dataset_obj.id]
    return _decide_with(
        facts, user, purpose_obj, dataset_obj, requested, day, reasons, reidentify=reidentify
    )


@dataclass
class _Facts:
    """What the rules read from the control plane about one dataset for one request."""

    suspension: DatasetSuspension | None
    candidates: list[Agreement]  # tier-2 agreements naming the dataset, purpose, partner, role
    incomplete: dict[int, list[str]]  # agreement id -> partners whose onboarding is incomplete


def _load_facts(
    session: Session, user: User, purpose: Purpose, datasets: Sequence[Dataset], at: datetime
) -> dict[int, _Facts]:
    """The facts for each of ``datasets``, read in a fixed number of queries however many."""
    ids = [d.id for d in datasets]
    suspensions: dict[int, DatasetSuspension] = {}
    for suspension in session.scalars(
        sa.select(DatasetSuspension)
        .where(
            DatasetSuspension.dataset_id.in_(ids),
            DatasetSuspension.suspended_at <= at,
            sa.or_(DatasetSuspension.lifted_at.is_(None), DatasetSuspension.lifted_at > at),
        )
        .order_by(DatasetSuspension.id)
    ):
        suspensions.setdefault(suspension.dataset_id, suspension)
    candidates: dict[int, list[Agreement]] = {i: [] for i in ids}
    rows = session.execute(
        sa.select(AgreementDataset.dataset_id, Agreement)
        .join(AgreementDataset, AgreementDataset.agreement_id == Agreement.id)
        .join(AgreementRecipient, AgreementRecipient.agreement_id == Agreement.id)
        .where(
            Agreement.tier == 2,
            AgreementDataset.dataset_id.in_(ids),
            AgreementRecipient.partner_id == user.partner_id,
            AgreementRecipient.role == user.role,
            Agreement.purposes.any(Purpose.id == purpose.id),
        )
        .options(selectinload(Agreement.datasets), selectinload(Agreement.parent))
        .distinct()
        .order_by(AgreementDataset.dataset_id, Agreement.id)
    ).all()
    for dataset_id, agreement in rows:
        candidates[dataset_id].append(agreement)
    agreement_ids = {a.id for found in candidates.values() for a in found}
    partner_ids = {d.partner_id for d in datasets} | {user.partner_id}
    checklists: dict[tuple[int, int], OnboardingChecklist] = {}
    if agreement_ids:
        for checklist in session.scalars(
            sa.select(OnboardingChecklist).where(
                OnboardingChecklist.agreement_id.in_(agreement_ids),
                OnboardingChecklist.partner_id.in_(partner_ids),
            )
        ):
            checklists[(checklist.agreement_id, checklist.partner_id)] = checklist
    facts: dict[int, _Facts] = {}
    for dataset in datasets:
        incomplete: dict[int, list[str]] = {}
        for agreement in candidates[dataset.id]:
            missing: list[str] = []
            for pid in sorted({dataset.partner_id, user.partner_id}):
                found = checklists.get((agreement.id, pid))
                if found is None or not found.complete:
                    partner = session.get(Partner, pid)
                    missing.append(partner.code if partner else str(pid))
            incomplete[agreement.id] = missing
        facts[dataset.id] = _Facts(suspensions.get(dataset.id), candidates[dataset.id], incomplete)
    return facts


def decide_many(
    session: Session,
    user: User,
    purpose: Purpose | str | None,
    datasets: Sequence[Dataset],
    at: datetime | None = None,
) -> dict[str, Decision]:
    """:func:`decide` for every field of each of ``datasets`` (code -> decision).

    The same rules and the same reasons as asking :func:`decide` once per dataset, read
    from the control plane in a handful of queries rather than a handful per dataset;
    nothing is cached between calls, so a suspension applies to the very next request.
    """
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    day = at.date()
    purpose_obj: Purpose | None = _lookup(session, Purpose, purpose)
    if purpose_obj is None:
        return {d.code: decide(session, user, purpose, d, None, at) for d in datasets}
    facts = _load_facts(session, user, purpose_obj, datasets, at)
    out: dict[str, Decision] = {}
    for dataset in datasets:
        reasons = _user_reasons(user, day)
        out[dataset.code] = _decide_with(
            facts[dataset.id], user, purpose_obj, dataset, dataset.fields, day, reasons
        )
    return out


def _user_reasons(user: User, day: date) -> list[str]:
    reasons: list[str] = []
    if not user.active:
        reasons.append("the account is disabled")
    if not user.nominated:
        reasons.append(f"{user.username} is not nominated to see shared data")
    if not user.trained_on(day):
        reasons.append(f"{user.username} has no in-date data sharing training on {day}")
    return reasons


def _decide_with(
    facts: _Facts,
    user: User,
    purpose_obj: Purpose,
    dataset_obj: Dataset,
    requested: Sequence[str],
    day: date,
    reasons: list[str],
    *,
    reidentify: bool = False,
) -> Decision:
    """The rules applied to the facts read for one dataset (``reasons`` so far: the user's)."""
    ds_code, pu_code = dataset_obj.code, purpose_obj.code
    suspension = facts.suspension
    if suspension is not None:
        reasons.append(
            f"sharing of {dataset_obj.code} is suspended by its data owner "
            f"({suspension.suspended_by}: {suspension.reason})"
        )

    candidates = facts.candidates
    if not candidates:
        reasons.append(
            f"no tier-2 agreement shares {dataset_obj.code} with "
            f"{user.partner.code} {user.role}s for {purpose_obj.code}"
        )
    covering: list[Agreement] = []
    for agreement in candidates:
        state = agreement.state(day)
        if state != "live":
            reasons.append(f"agreement {agreement.reference} is {state} on {day}")
            continue
        parent = agreement.parent
        if parent is not None and parent.state(day) != "live":
            reasons.append(
                f"tier-1 agreement {parent.reference} of {agreement.reference} "
                f"is {parent.state(day)} on {day}"
            )
            continue
        incomplete = facts.incomplete[agreement.id]
        if incomplete:
            reasons.append(
                f"onboarding to {agreement.reference} is not complete for {', '.join(incomplete)}"
            )
            continue
        covering.append(agreement)

    user_ok = user.active and user.nominated and user.trained_on(day)
    if not user_ok or suspension is not None or not covering:
        return _deny(reasons, requested, ds_code, pu_code)

    covered: set[str] = set()
    for agreement in covering:
        for shared in agreement.datasets:
            if shared.dataset_id == dataset_obj.id:
                names = shared.fields
                covered |= set(dataset_obj.fields) if ALL_FIELDS in names else set(names)
    pseudonymised_only = purpose_obj.pseudonymised_only or (
        user.role == "analyst" and not reidentify
    )
    identifying = identity_fields(dataset_obj)
    visible: list[str] = []
    withheld: list[str] = []
    for name in requested:
        if name in covered and not (pseudonymised_only and name in identifying):
            visible.append(name)
        else:
            withheld.append(name)
    notes = []
    if withheld:
        notes.append(f"{len(withheld)} field(s) withheld: not shared for this purpose or role")
    return Decision(
        allowed=True,
        reasons=tuple(notes),
        visible_fields=tuple(visible),
        withheld_fields=tuple(withheld),
        agreement_ids=tuple(a.id for a in covering),
        agreement_refs=tuple(a.reference for a in covering),
        pseudonymised_only=pseudonymised_only,
        dataset=ds_code,
        purpose=pu_code,
    )


def policy_version(session: Session) -> int | None:
    """The control plane's policy version, or None where nothing keeps one.

    Database triggers (migration ``govern_0002``) bump it in the same transaction as any
    change to a table a decision reads, on SQLite and PostgreSQL; on any other database
    there are no triggers and decisions must not be cached.
    """
    if session.get_bind().dialect.name not in ("sqlite", "postgresql"):
        return None
    found: int | None = session.scalar(
        sa.select(PolicyVersion.version).where(PolicyVersion.id == 1)
    )
    return found


def _next_suspension_change(session: Session, at: datetime) -> datetime | None:
    """The first moment after ``at`` when a recorded suspension starts or is lifted.

    A suspension (or its lifting) may be recorded ahead of time: the decisions change
    then without any write, so a cached decision must not outlive that moment.
    """
    starts = sa.select(sa.func.min(DatasetSuspension.suspended_at)).where(
        DatasetSuspension.suspended_at > at
    )
    lifts = sa.select(sa.func.min(DatasetSuspension.lifted_at)).where(
        DatasetSuspension.lifted_at > at
    )
    moments = [session.scalar(starts), session.scalar(lifts)]
    found = [m if m.tzinfo is not None else m.replace(tzinfo=UTC) for m in moments if m]
    return min(found) if found else None


@dataclass
class _Cached:
    version: int
    day: date
    until: datetime | None
    value: Any


@dataclass
class DecisionCache:
    """Decisions for (user, purpose), reused while nothing they depend on can have changed.

    An entry is used only if the control plane's :func:`policy_version` is the one it
    was decided under (any change to users, partners, purposes, datasets, agreements,
    recipients, onboarding or suspensions bumps it, in the same transaction), the UTC
    day is the same (agreement dates and training are per day), and no suspension
    recorded ahead of time has started or been lifted since. Reading the version is one
    single-row query, so a suspension still takes effect on the very next request.
    """

    max_entries: int = 4096
    _entries: OrderedDict[tuple[int, str], _Cached] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def get(
        self, session: Session, user: User, purpose: str, decide_now: Callable[[datetime], T]
    ) -> T:
        """The cached decisions for ``user`` and ``purpose`` now, or ``decide_now(at)``."""
        version = policy_version(session)
        at = self.clock()
        if version is None:
            return decide_now(at)
        key = (user.id, purpose)
        with self._lock:
            found = self._entries.get(key)
        if (
            found is not None
            and found.version == version
            and found.day == at.date()
            and (found.until is None or at < found.until)
        ):
            self.hits += 1
            value: T = found.value
            return value
        self.misses += 1
        # The version was read before the facts: an entry can only be newer than its key.
        value = decide_now(at)
        entry = _Cached(version, at.date(), _next_suspension_change(session, at), value)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value


def _incomplete_onboarding(
    session: Session, agreement: Agreement, partner_ids: set[int]
) -> list[str]:
    """Partners (codes) whose onboarding checklist for ``agreement`` is missing or incomplete."""
    checklists = {
        c.partner_id: c
        for c in session.scalars(
            sa.select(OnboardingChecklist).where(
                OnboardingChecklist.agreement_id == agreement.id,
                OnboardingChecklist.partner_id.in_(partner_ids),
            )
        )
    }
    missing: list[str] = []
    for pid in sorted(partner_ids):
        checklist = checklists.get(pid)
        if checklist is None or not checklist.complete:
            partner = session.get(Partner, pid)
            missing.append(partner.code if partner else str(pid))
    return missing
