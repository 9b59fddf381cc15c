"""Control-plane records of clerical review (SQLAlchemy 2, Alembic branch ``link``).

Pairs whose match probability falls in the uncertainty band become review items. A
reviewer's decision (match or non-match, who, when, why) is kept for the pair of
records, not for the nominals, so it survives re-clustering and id changes and
overrides the model on every later link run. Splitting a wrongly merged nominal
(rectification) is recorded as non-match decisions between the records split off and
the rest, with the split itself kept for the audit trail.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nominal.db import Base, utcnow


class LinkReviewItem(Base):
    """A pair of records the model was unsure about, waiting for a person to decide."""

    __tablename__ = "link_review_items"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    record_key_l: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    record_key_r: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    nominal_id_l: Mapped[str | None] = mapped_column(sa.String(64))
    nominal_id_r: Mapped[str | None] = mapped_column(sa.String(64))
    match_probability: Mapped[float] = mapped_column(sa.Float, nullable=False)
    match_weight: Mapped[float] = mapped_column(sa.Float, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="open")
    run_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (sa.UniqueConstraint("record_key_l", "record_key_r"),)


class LinkDecision(Base):
    """A reviewer's decision about a pair of records; it overrides the model."""

    __tablename__ = "link_decisions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    record_key_l: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    record_key_r: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    decision: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # match | non_match
    decided_by: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    split_id: Mapped[int | None] = mapped_column(sa.ForeignKey("link_splits.id"))

    __table_args__ = (sa.CheckConstraint("decision IN ('match', 'non_match')", name="decision"),)


class LinkSplit(Base):
    """A rectification: records split off a nominal that wrongly merged two people."""

    __tablename__ = "link_splits"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    nominal_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    record_keys: Mapped[str] = mapped_column(sa.Text, nullable=False)  # comma-separated
    decided_by: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
