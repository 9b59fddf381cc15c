"""Control-plane model of the insight area: practitioners' feedback on cohort entries.

A cohort entry a practitioner marks "already known" or "not a concern" is kept, with the
model version and as-of date that produced it, so that the next evaluation can ask how
often a model's top k told teams something they did not already know.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nominal.db import Base, utcnow

FEEDBACK: tuple[str, ...] = ("already known", "not a concern", "acted on", "other")


class CohortFeedback(Base):
    """One practitioner's feedback on one cohort entry (by pseudonym)."""

    __tablename__ = "insight_cohort_feedback"
    __table_args__ = (
        sa.CheckConstraint(
            "feedback IN (" + ", ".join(f"'{f}'" for f in FEEDBACK) + ")", name="feedback"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort: Mapped[str] = mapped_column(sa.String(80), index=True)
    model: Mapped[str] = mapped_column(sa.String(80))
    model_version: Mapped[str] = mapped_column(sa.String(40))
    as_of: Mapped[date] = mapped_column(sa.Date)
    unit_pseudo: Mapped[str] = mapped_column(sa.String(64), index=True)
    feedback: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str | None] = mapped_column(sa.Text)
    username: Mapped[str] = mapped_column(sa.String(120))
    partner: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
