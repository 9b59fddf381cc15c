"""Intervention pathways: configurable steps with conditions and due dates, compliance
per step, and escalation when a condition is missed.

Examples shipped with the demo (:data:`EXAMPLE_PATHWAYS`): *conditional pre-trial
diversion* (prosecution is held over while the person complies with conditions; a
missed condition goes back to the police decision maker) and *early help for a
family*. A deployment defines its own with :func:`define_pathway` or the CLI.

Escalation is a task: when a mandatory step is past its due date and not complied
with, :func:`escalate_overdue` marks it missed, marks the enrolment escalated and
raises an urgent task for the pathway's escalation team about the same nominal or
household (once; running it again does nothing new).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.products.lineage import Lineage
from nominal.products.models import (
    STEP_STATUSES,
    UNIT_TYPES,
    Enrolment,
    EnrolmentStep,
    Pathway,
    PathwayStep,
    Team,
)
from nominal.products.tasking import TaskingError, aliases, create_task, team_by_code

EXAMPLE_PATHWAYS: tuple[dict[str, Any], ...] = (
    {
        "code": "pretrial-diversion",
        "name": "Conditional pre-trial diversion",
        "unit_type": "nominal",
        "description": "Prosecution is held over while the person complies with agreed "
        "conditions; a missed condition is referred back to the police decision maker.",
        "steps": [
            ("Sign the diversion contract", "Contract signed in the presence of a navigator", 7),
            ("Needs assessment", "Attends the needs assessment with the navigator", 14),
            ("Victim awareness course", "Completes the victim awareness course", 56),
            ("No further offending", "No new charge or caution during the period", 112),
        ],
    },
    {
        "code": "early-help-family",
        "name": "Early help for a family",
        "unit_type": "household",
        "description": "A lead practitioner, a family assessment and a team around the "
        "family, reviewed every twelve weeks.",
        "steps": [
            ("Lead practitioner allocated", "A named lead practitioner is agreed", 5),
            ("Family assessment", "Early help assessment completed with the family", 28),
            ("Team around the family meeting", "First meeting held with every agency", 42),
            ("Twelve-week review", "Plan reviewed; outcomes recorded", 84),
        ],
    },
)


class PathwayError(TaskingError):
    """A pathway cannot be defined or used as asked."""


def define_pathway(
    session: Session,
    code: str,
    name: str,
    steps: list[tuple[str, str | None, int]],
    *,
    unit_type: str = "nominal",
    description: str | None = None,
    escalation_team: Team | str | None = None,
) -> Pathway:
    """A new pathway with ordered steps ``(name, condition, days after enrolment)``."""
    if unit_type not in UNIT_TYPES:
        raise PathwayError(f"unit_type must be one of {', '.join(UNIT_TYPES)}")
    if session.scalar(sa.select(Pathway).where(Pathway.code == code)) is not None:
        raise PathwayError(f"pathway {code!r} already exists")
    if not steps:
        raise PathwayError("a pathway needs at least one step")
    for i, (_name, _cond, days) in enumerate(steps, start=1):
        if days < 0:
            raise PathwayError(f"step {i}: due days must not be negative")
    team = (
        team_by_code(session, escalation_team)
        if isinstance(escalation_team, str)
        else escalation_team
    )
    pathway = Pathway(
        code=code, name=name, unit_type=unit_type, description=description, escalation_team=team
    )
    for position, (step_name, condition, days) in enumerate(steps, start=1):
        pathway.steps.append(
            PathwayStep(position=position, name=step_name, condition=condition, due_days=days)
        )
    session.add(pathway)
    session.flush()
    return pathway


def enrol(
    session: Session,
    pathway: Pathway | str,
    unit_id: str,
    *,
    by: str,
    started_on: date | None = None,
) -> Enrolment:
    """Put a nominal or household on a pathway; every step gets its due date now."""
    chosen = (
        session.scalar(sa.select(Pathway).where(Pathway.code == pathway))
        if isinstance(pathway, str)
        else pathway
    )
    if chosen is None:
        raise PathwayError(f"unknown pathway {pathway!r}")
    start = started_on or date.today()
    enrolment = Enrolment(
        pathway=chosen, unit_type=chosen.unit_type, unit_id=unit_id, started_on=start, created_by=by
    )
    for step in chosen.steps:
        enrolment.steps.append(
            EnrolmentStep(step=step, due_on=start + timedelta(days=step.due_days))
        )
    session.add(enrolment)
    session.flush()
    return enrolment


def record_step(
    session: Session,
    step: EnrolmentStep,
    status: str,
    *,
    on: date | None = None,
    note: str | None = None,
) -> EnrolmentStep:
    """Record compliance with a step (``complied``, ``missed`` or ``waived``)."""
    if status not in STEP_STATUSES or status == "pending":
        raise PathwayError(f"status must be one of complied, missed, waived, not {status!r}")
    step.status = status
    step.completed_on = on or date.today()
    step.note = note
    enrolment = step.enrolment
    if all(s.status in ("complied", "waived") for s in enrolment.steps):
        enrolment.status = "completed"
    session.flush()
    return step


@dataclass
class Compliance:
    enrolment: Enrolment
    live_unit_id: str | None
    complied: int
    pending: int
    overdue: int
    missed: int

    @property
    def status(self) -> str:
        """Green: on track; amber: a step is overdue; red: a condition was missed."""
        if self.missed:
            return "red"
        if self.overdue:
            return "amber"
        return "green"


def compliance(
    session: Session,
    lineage: Lineage | None,
    *,
    today: date | None = None,
    unit_id: str | None = None,
    unit_type: str | None = None,
) -> list[Compliance]:
    """Each enrolment's compliance on ``today`` (resolved to the live nominal or
    household id); ``unit_id`` (of ``unit_type``) under any id it ever had."""
    today = today or date.today()
    query = sa.select(Enrolment).order_by(Enrolment.id)
    if unit_type is not None:
        query = query.where(Enrolment.unit_type == unit_type)
    if unit_id is not None:
        ids = aliases(lineage, unit_id, unit_type)
        query = query.where(Enrolment.unit_id.in_(sorted(ids)))
    out = []
    for e in session.scalars(query).unique():
        statuses = [s.status for s in e.steps]
        overdue = sum(1 for s in e.steps if s.status == "pending" and s.due_on < today)
        live = lineage.resolve(e.unit_id, e.unit_type) if lineage else e.unit_id
        out.append(
            Compliance(
                e,
                live,
                complied=statuses.count("complied") + statuses.count("waived"),
                pending=statuses.count("pending"),
                overdue=overdue,
                missed=statuses.count("missed"),
            )
        )
    return out


def escalate_overdue(
    session: Session, *, today: date | None = None, by: str = "nominal"
) -> list[EnrolmentStep]:
    """Mark overdue mandatory steps of active enrolments missed and escalate each once."""
    today = today or date.today()
    steps = session.scalars(
        sa.select(EnrolmentStep)
        .join(Enrolment)
        .join(PathwayStep, EnrolmentStep.step_id == PathwayStep.id)
        .where(
            Enrolment.status.in_(("active", "escalated")),
            EnrolmentStep.status == "pending",
            EnrolmentStep.due_on < today,
            PathwayStep.mandatory.is_(True),
        )
        .order_by(EnrolmentStep.id)
    ).all()
    for step in steps:
        enrolment = step.enrolment
        step.status = "missed"
        step.completed_on = today
        step.escalated_at = datetime.now(UTC)
        enrolment.status = "escalated"
        team = enrolment.pathway.escalation_team
        if team is not None:
            task = create_task(
                session,
                unit_type=enrolment.unit_type,
                unit_id=enrolment.unit_id,
                title=f"Escalation: {step.step.name} missed ({enrolment.pathway.name})",
                team=team,
                created_by=by,
                priority="urgent",
                due_on=today + timedelta(days=2),
                source=f"pathway:{enrolment.pathway.code}",
                note=f"Condition: {step.step.condition or step.step.name}; due {step.due_on}",
            )
            step.escalation_task_id = task.id
    session.flush()
    return list(steps)


def install_examples(session: Session, escalation_team: Team | None = None) -> list[Pathway]:
    """Define the example pathways that do not exist yet."""
    made = []
    for spec in EXAMPLE_PATHWAYS:
        if session.scalar(sa.select(Pathway).where(Pathway.code == spec["code"])) is not None:
            continue
        made.append(
            define_pathway(
                session,
                spec["code"],
                spec["name"],
                list(spec["steps"]),
                unit_type=spec["unit_type"],
                description=spec["description"],
                escalation_team=escalation_team,
            )
        )
    return made
