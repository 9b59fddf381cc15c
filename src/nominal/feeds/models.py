"""Control-plane records of the feed API and alerts (Alembic branch ``ops``).

* :class:`FeedToken`: a bearer token for a partner's system, scoped to that partner
  and to named feeds (push) and, separately, to pulling; only its hash is kept.
* :class:`FeedUpload`: one delivery pushed over HTTPS, resumable: the bytes received so
  far (``offset``) are durable, so an interrupted upload continues where it stopped.
  ``(partner, delivery_id)`` is unique: a partner retrying a delivery with the same id
  gets the same upload back, never a second copy.
* :class:`AlertSubscription`, :class:`Alert`, :class:`WebhookDelivery`: a partner's
  subscription to events on the nominals it works with; each alert once (unique
  idempotency key); and the durable outbox of webhook deliveries with retries.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nominal.db import Base, utcnow

TS = sa.DateTime(timezone=True)
ALERT_KINDS = ("new_incident", "new_agency", "risk_threshold")


class FeedToken(Base):
    """A partner system's credential for the feed API."""

    __tablename__ = "feed_tokens"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    partner_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    feeds_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    can_pull: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    label: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)

    @property
    def feeds(self) -> list[str]:
        return list(json.loads(self.feeds_json or "[]"))


class FeedUpload(Base):
    """A delivery pushed through the API: declared length, bytes received, outcome."""

    __tablename__ = "feed_uploads"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    partner_code: Mapped[str] = mapped_column(sa.String(40))
    delivery_id: Mapped[str] = mapped_column(sa.String(200))
    feed: Mapped[str] = mapped_column(sa.String(80))
    file_name: Mapped[str] = mapped_column(sa.String(300))
    length: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    checksum: Mapped[str | None] = mapped_column(sa.String(64))  # SHA-256 the partner declared
    sha256: Mapped[str | None] = mapped_column(sa.String(64))  # what arrived
    status: Mapped[str] = mapped_column(sa.String(20), default="uploading")
    message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (sa.UniqueConstraint("partner_code", "delivery_id", name="delivery"),)


class AlertSubscription(Base):
    """A partner's subscription to events on the nominals it works with."""

    __tablename__ = "alert_subscriptions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    partner_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    kinds_json: Mapped[str] = mapped_column(sa.Text)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(500))
    risk_model: Mapped[str | None] = mapped_column(sa.String(80))
    risk_threshold: Mapped[float | None] = mapped_column(sa.Float)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # events received by the hub after this moment are new to the subscriber
    seen_until: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    @property
    def kinds(self) -> list[str]:
        return list(json.loads(self.kinds_json))


class Alert(Base):
    """One alert for one partner; the idempotency key makes it happen at most once."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("alert_subscriptions.id", ondelete="CASCADE")
    )
    partner_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    nominal_id: Mapped[str] = mapped_column(sa.String(64))
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    payload_json: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(TS)

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.payload_json))


class RiskState(Base):
    """Nominals currently above a subscription's risk threshold (so only a crossing alerts)."""

    __tablename__ = "alert_risk_state"

    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("alert_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    nominal_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    score: Mapped[float] = mapped_column(sa.Float)
    since: Mapped[datetime] = mapped_column(TS, default=utcnow)


class WebhookDelivery(Base):
    """The outbox: an alert to POST to a subscriber's webhook, retried with back-off."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(TS)

    alert: Mapped[Alert] = relationship(lazy="joined")

    __table_args__ = (sa.Index("ix_webhook_outbox_due", "status", "next_attempt_at"),)
