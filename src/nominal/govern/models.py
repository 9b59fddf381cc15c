"""The control plane of governance: who may see what, why, and a record of what they saw.

Partners share data under agreements. A tier-1 agreement records the intent to share
between partners; a tier-2 agreement is one use case: the purposes it serves, its legal
gateway, the datasets and fields shared, and the recipient partners and roles. Sharing
under a tier-2 agreement starts only when each partner's onboarding checklist for it is
complete. Users belong to a partner, hold one role, and may see data only when trained,
in date and nominated. Every decision lands in the hash-chained audit log.

Lists of field names are kept as JSON text (``fields_json``) so that the same schema
works on SQLite and PostgreSQL without array types.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nominal.db import Base, utcnow

ROLES: tuple[str, ...] = ("practitioner", "analyst", "data_owner", "ig_lead", "admin")
ROLE_LABELS: dict[str, str] = {
    "practitioner": "Practitioner",
    "analyst": "Analyst",
    "data_owner": "Data owner",
    "ig_lead": "Information governance lead",
    "admin": "Administrator",
}
AGREEMENT_STATUSES: tuple[str, ...] = ("draft", "live", "suspended", "ended")
RIGHTS_KINDS: tuple[str, ...] = ("access", "rectification", "erasure", "restriction")
ALL_FIELDS = "*"

TS = sa.DateTime(timezone=True)


def _load(text: str | None) -> list[str]:
    return list(json.loads(text)) if text else []


def _dump(values: list[str] | tuple[str, ...] | set[str]) -> str:
    return json.dumps(sorted(set(values)))


class Partner(Base):
    """An organisation that shares data with the hub or receives it (police force, council, ...)."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    agency: Mapped[str | None] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Dataset(Base):
    """A dataset a partner provides through a feed, described by its contract file."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    feed: Mapped[str | None] = mapped_column(sa.String(80))
    contract_path: Mapped[str | None] = mapped_column(sa.String(500))
    agreement_ref: Mapped[str | None] = mapped_column(sa.String(80))
    fields_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    personal_fields_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    retention_years: Mapped[float | None] = mapped_column(sa.Float)
    retention_basis: Mapped[str] = mapped_column(sa.String(20), default="event_date")
    first_delivery_at: Mapped[datetime | None] = mapped_column(TS)
    last_delivery_at: Mapped[datetime | None] = mapped_column(TS)

    partner: Mapped[Partner] = relationship(lazy="joined")

    @property
    def fields(self) -> list[str]:
        return _load(self.fields_json)

    @fields.setter
    def fields(self, values: list[str]) -> None:
        self.fields_json = _dump(values)

    @property
    def personal_fields(self) -> list[str]:
        return _load(self.personal_fields_json)

    @personal_fields.setter
    def personal_fields(self, values: list[str]) -> None:
        self.personal_fields_json = _dump(values)


class Purpose(Base):
    """Why data is read (safeguarding children, fire prevention, research, ...)."""

    __tablename__ = "purposes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    # Research and similar purposes never see identities, whatever the role.
    pseudonymised_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)


agreement_purposes = sa.Table(
    "agreement_purposes",
    Base.metadata,
    sa.Column("agreement_id", sa.ForeignKey("agreements.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("purpose_id", sa.ForeignKey("purposes.id"), primary_key=True),
)

agreement_parties = sa.Table(
    "agreement_parties",
    Base.metadata,
    sa.Column("agreement_id", sa.ForeignKey("agreements.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("partner_id", sa.ForeignKey("partners.id"), primary_key=True),
)


class Agreement(Base):
    """An information sharing agreement: tier 1 (intent, between partners) or tier 2 (use case)."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(80), unique=True)
    tier: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(300))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agreements.id"))
    legal_gateway: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    start_date: Mapped[date | None] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    dpia_reference: Mapped[str | None] = mapped_column(sa.String(120))
    dpia_document: Mapped[str | None] = mapped_column(sa.String(500))
    signed_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    parent: Mapped[Agreement | None] = relationship(remote_side=[id])
    purposes: Mapped[list[Purpose]] = relationship(secondary=agreement_purposes)
    parties: Mapped[list[Partner]] = relationship(secondary=agreement_parties)
    datasets: Mapped[list[AgreementDataset]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan"
    )
    recipients: Mapped[list[AgreementRecipient]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("tier IN (1, 2)", name="tier"),)

    def in_date(self, day: date) -> bool:
        """Whether ``day`` falls within the agreement's start and end dates (inclusive)."""
        if self.start_date is not None and day < self.start_date:
            return False
        return not (self.end_date is not None and day > self.end_date)

    def state(self, day: date) -> str:
        """``live``, ``expired``, ``not started`` or the recorded status (draft, suspended...)."""
        if self.status != "live":
            return self.status
        if self.start_date is not None and day < self.start_date:
            return "not started"
        if self.end_date is not None and day > self.end_date:
            return "expired"
        return "live"


class AgreementDataset(Base):
    """One dataset shared under a tier-2 agreement and the fields of it that are shared."""

    __tablename__ = "agreement_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"))
    # JSON list of field names, or ["*"] for every field of the dataset.
    fields_json: Mapped[str] = mapped_column(sa.Text, default='["*"]')

    agreement: Mapped[Agreement] = relationship(back_populates="datasets")
    dataset: Mapped[Dataset] = relationship(lazy="joined")

    __table_args__ = (sa.UniqueConstraint("agreement_id", "dataset_id", name="agreement_dataset"),)

    @property
    def fields(self) -> list[str]:
        return _load(self.fields_json)

    @fields.setter
    def fields(self, values: list[str]) -> None:
        self.fields_json = _dump(values)


class AgreementRecipient(Base):
    """A partner and role that may receive the data of a tier-2 agreement."""

    __tablename__ = "agreement_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    role: Mapped[str] = mapped_column(sa.String(20))

    agreement: Mapped[Agreement] = relationship(back_populates="recipients")
    partner: Mapped[Partner] = relationship(lazy="joined")

    __table_args__ = (sa.UniqueConstraint("agreement_id", "partner_id", "role", name="recipient"),)


class OnboardingChecklist(Base):
    """A partner's onboarding to one tier-2 agreement; sharing waits until it is complete."""

    __tablename__ = "onboarding_checklists"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    tier1_signed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    tier2_signed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    dpia_recorded: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Only partners that provide a dataset under the agreement need a validated feed;
    # only partners that receive data need nominated, trained users.
    feed_validated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    users_trained: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    provides_data: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    receives_data: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    agreement: Mapped[Agreement] = relationship()
    partner: Mapped[Partner] = relationship(lazy="joined")

    __table_args__ = (sa.UniqueConstraint("agreement_id", "partner_id", name="checklist"),)

    ITEMS: tuple[tuple[str, str], ...] = (
        ("tier1_signed", "Tier 1 agreement signed"),
        ("tier2_signed", "Tier 2 agreement signed"),
        ("dpia_recorded", "Data protection impact assessment recorded"),
        ("feed_validated", "Feed contract validated on a first delivery"),
        ("users_trained", "Users nominated and trained"),
    )

    def required_items(self) -> list[str]:
        items = ["tier1_signed", "tier2_signed", "dpia_recorded"]
        if self.provides_data:
            items.append("feed_validated")
        if self.receives_data:
            items.append("users_trained")
        return items

    @property
    def outstanding(self) -> list[str]:
        return [item for item in self.required_items() if not getattr(self, item)]

    @property
    def complete(self) -> bool:
        return not self.outstanding


class User(Base):
    """A person who signs in: one partner, one role, training and nomination, credentials."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(120), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(200))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    role: Mapped[str] = mapped_column(sa.String(20))
    nominated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    nominated_by: Mapped[str | None] = mapped_column(sa.String(120))
    training_completed_on: Mapped[date | None] = mapped_column(sa.Date)
    training_expires_on: Mapped[date | None] = mapped_column(sa.Date)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(200))
    failed_attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(TS)
    last_totp_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    partner: Mapped[Partner] = relationship(lazy="joined")

    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    def trained_on(self, day: date) -> bool:
        return (
            self.training_completed_on is not None
            and self.training_completed_on <= day
            and self.training_expires_on is not None
            and day <= self.training_expires_on
        )


class UserSession(Base):
    """A signed-in browser session; the cookie carries only a signed random id."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 of the secret id
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TS)
    client: Mapped[str | None] = mapped_column(sa.String(100))

    user: Mapped[User] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token for machines, scoped to one user and one purpose; only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose_id: Mapped[int] = mapped_column(sa.ForeignKey("purposes.id"))
    label: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)

    user: Mapped[User] = relationship(lazy="joined")
    purpose: Mapped[Purpose] = relationship(lazy="joined")


class PolicyVersion(Base):
    """One row: a counter that database triggers bump on every change to a table the policy
    decision point reads (migration ``govern_0002``), so decisions can be cached on it."""

    __tablename__ = "policy_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger)


class DatasetSuspension(Base):
    """A data owner's suspension of sharing a dataset; in force until lifted."""

    __tablename__ = "dataset_suspensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"))
    suspended_by: Mapped[str] = mapped_column(sa.String(120))
    reason: Mapped[str] = mapped_column(sa.Text)
    suspended_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(TS)
    lifted_by: Mapped[str | None] = mapped_column(sa.String(120))

    dataset: Mapped[Dataset] = relationship(lazy="joined")


class AuditEntry(Base):
    """One append-only audit record; ``hash`` chains it to the entry before it.

    ``seq`` is assigned by the writer as the previous entry's plus one and is unique,
    as is ``prev_hash``: two writers racing for the same place in the chain cannot both
    commit, so the chain never forks.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(TS)
    user_id: Mapped[int | None] = mapped_column(sa.Integer)
    username: Mapped[str | None] = mapped_column(sa.String(120))
    partner: Mapped[str | None] = mapped_column(sa.String(40))
    role: Mapped[str | None] = mapped_column(sa.String(20))
    purpose: Mapped[str | None] = mapped_column(sa.String(80))
    action: Mapped[str] = mapped_column(sa.String(80))
    dataset: Mapped[str | None] = mapped_column(sa.String(80))
    record_keys: Mapped[str] = mapped_column(sa.Text, default="[]")
    nominal_ids: Mapped[str] = mapped_column(sa.Text, default="[]")
    justification: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    client: Mapped[str | None] = mapped_column(sa.String(100))
    detail: Mapped[str] = mapped_column(sa.Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.Index("ix_audit_log_username", "username"),
        sa.Index("ix_audit_log_dataset", "dataset"),
    )


class AuditAnchor(Base):
    """A periodic witness of the chain: the head's hash, sealed with a key kept outside the DB."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))
    seal: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class RightsRequest(Base):
    """A data subject's request: access, rectification, erasure or restriction."""

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    subject: Mapped[str] = mapped_column(sa.String(200))  # nominal id or description
    record_keys: Mapped[str] = mapped_column(sa.Text, default="[]")
    partner: Mapped[str | None] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.Text, default="{}")
    requested_by: Mapped[str] = mapped_column(sa.String(120))
    received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(TS)
    outcome: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.CheckConstraint(f"kind IN {RIGHTS_KINDS!r}", name="kind"),)


class ErasedRecord(Base):
    """A record erased on request: ingest must never bring it back."""

    __tablename__ = "erased_records"

    record_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    dataset: Mapped[str | None] = mapped_column(sa.String(80))
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rights_requests.id"))
    erased_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    snapshot_id: Mapped[str | None] = mapped_column(sa.String(80))


class RestrictedRecord(Base):
    """A record whose processing is restricted: kept, but withheld from every read."""

    __tablename__ = "restricted_records"

    record_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rights_requests.id"))
    restricted_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(TS)


class RetentionRun(Base):
    """What a retention sweep removed, per dataset."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    dataset: Mapped[str] = mapped_column(sa.String(80))
    cutoff: Mapped[date] = mapped_column(sa.Date)
    events_removed: Mapped[int] = mapped_column(sa.Integer, default=0)
    records_removed: Mapped[int] = mapped_column(sa.Integer, default=0)
    snapshot_id: Mapped[str | None] = mapped_column(sa.String(80))
