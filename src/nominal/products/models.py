"""Control-plane models of the products: joint tasking, pathways, the programme's risks.

Tasks and pathway enrolments hang off a nominal or household by the id they were
created with (``unit_id``); that id is never rewritten. When linking later merges or
splits nominals, :mod:`nominal.products.lineage` resolves the stored id to the live
one through ``gold.nominal_lineage``, so a task survives every re-link and its history
still shows the id it was raised against.

Partner teams name their partner by code (not a foreign key), so the products'
migrations do not depend on another area's.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nominal.db import Base, utcnow

TS = sa.DateTime(timezone=True)
UNIT_TYPES: tuple[str, ...] = ("nominal", "household")
TASK_KINDS: tuple[str, ...] = ("task", "referral")
TASK_STATUSES: tuple[str, ...] = ("open", "in_progress", "done", "cancelled")
TASK_PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
ENROLMENT_STATUSES: tuple[str, ...] = ("active", "completed", "escalated", "withdrawn")
STEP_STATUSES: tuple[str, ...] = ("pending", "complied", "missed", "waived")
RISK_STATUSES: tuple[str, ...] = ("open", "closed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Team(Base):
    """A partner's team that takes tasks (e.g. the police neighbourhood team)."""

    __tablename__ = "product_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    partner_code: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Task(Base):
    """A task or referral about one nominal or household, assigned to a partner team."""

    __tablename__ = "product_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="task")
    unit_type: Mapped[str] = mapped_column(sa.String(20))
    unit_id: Mapped[str] = mapped_column(sa.String(80), index=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("product_teams.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    priority: Mapped[str] = mapped_column(sa.String(20), default="normal")
    due_on: Mapped[date | None] = mapped_column(sa.Date)
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str | None] = mapped_column(sa.String(200))
    purpose: Mapped[str | None] = mapped_column(sa.String(80))
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(TS)

    team: Mapped[Team] = relationship(lazy="joined")
    notes: Mapped[list[TaskNote]] = relationship(
        back_populates="task", order_by="TaskNote.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {_in(TASK_KINDS)}", name="kind"),
        sa.CheckConstraint(f"unit_type IN {_in(UNIT_TYPES)}", name="unit_type"),
        sa.CheckConstraint(f"status IN {_in(TASK_STATUSES)}", name="status"),
        sa.CheckConstraint(f"priority IN {_in(TASK_PRIORITIES)}", name="priority"),
    )


class TaskNote(Base):
    """A dated note on a task (what was done, what was found); notes are never edited."""

    __tablename__ = "product_task_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("product_tasks.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(sa.String(120))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    task: Mapped[Task] = relationship(back_populates="notes")


class Pathway(Base):
    """An intervention pathway: ordered steps, each a condition due some days after
    enrolment (e.g. conditional pre-trial diversion, early help for a family)."""

    __tablename__ = "product_pathways"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    unit_type: Mapped[str] = mapped_column(sa.String(20), default="nominal")
    description: Mapped[str | None] = mapped_column(sa.Text)
    escalation_team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("product_teams.id"))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    steps: Mapped[list[PathwayStep]] = relationship(
        back_populates="pathway", order_by="PathwayStep.position", cascade="all, delete-orphan"
    )
    escalation_team: Mapped[Team | None] = relationship(lazy="joined")


class PathwayStep(Base):
    __tablename__ = "product_pathway_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_pathways.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(200))
    condition: Mapped[str | None] = mapped_column(sa.Text)
    due_days: Mapped[int] = mapped_column(sa.Integer)
    mandatory: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    pathway: Mapped[Pathway] = relationship(back_populates="steps")


class Enrolment(Base):
    """One nominal or household on a pathway; each step gets a due date on enrolment."""

    __tablename__ = "product_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[int] = mapped_column(sa.ForeignKey("product_pathways.id"))
    unit_type: Mapped[str] = mapped_column(sa.String(20))
    unit_id: Mapped[str] = mapped_column(sa.String(80), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    started_on: Mapped[date] = mapped_column(sa.Date)
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    pathway: Mapped[Pathway] = relationship(lazy="joined")
    steps: Mapped[list[EnrolmentStep]] = relationship(
        back_populates="enrolment", order_by="EnrolmentStep.due_on", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint(f"status IN {_in(ENROLMENT_STATUSES)}", name="status"),
        sa.CheckConstraint(f"unit_type IN {_in(UNIT_TYPES)}", name="unit_type"),
    )


class EnrolmentStep(Base):
    __tablename__ = "product_enrolment_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_enrolments.id", ondelete="CASCADE")
    )
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("product_pathway_steps.id"))
    due_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    note: Mapped[str | None] = mapped_column(sa.Text)
    escalated_at: Mapped[datetime | None] = mapped_column(TS)
    escalation_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("product_tasks.id"))

    enrolment: Mapped[Enrolment] = relationship(back_populates="steps")
    step: Mapped[PathwayStep] = relationship(lazy="joined")

    __table_args__ = (sa.CheckConstraint(f"status IN {_in(STEP_STATUSES)}", name="status"),)


class ProgrammeRisk(Base):
    """A risk to the programme, scored on the 5×5 likelihood × impact matrix."""

    __tablename__ = "product_programme_risks"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    owner: Mapped[str] = mapped_column(sa.String(200))
    likelihood: Mapped[int] = mapped_column(sa.Integer)
    impact: Mapped[int] = mapped_column(sa.Integer)
    mitigation: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint("likelihood BETWEEN 1 AND 5", name="likelihood"),
        sa.CheckConstraint("impact BETWEEN 1 AND 5", name="impact"),
        sa.CheckConstraint(f"status IN {_in(RISK_STATUSES)}", name="status"),
    )

    @property
    def score(self) -> int:
        return self.likelihood * self.impact

    @property
    def rating(self) -> str:
        """Red 15–25, amber 8–14, green 1–7: the usual public-sector 5×5 bands."""
        return "red" if self.score >= 15 else "amber" if self.score >= 8 else "green"
