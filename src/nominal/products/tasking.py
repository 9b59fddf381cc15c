"""Joint tasking: tasks and referrals about a nominal or household, assigned to a
partner team, with notes, status and outcome; team queues; the multi-agency meeting
view.

Functions take a control-plane session and, where nominals must be resolved or
described, a DuckDB connection over the lake. Who may do what is decided by the
callers (pages and CLI) through the policy decision point; this module only keeps
the records straight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.products.demand import INTERVENTION_EVENT_TYPES
from nominal.products.lakeview import ProductsError, as_of_date, has_table
from nominal.products.lineage import Lineage
from nominal.products.models import (
    TASK_KINDS,
    TASK_PRIORITIES,
    TASK_STATUSES,
    UNIT_TYPES,
    Task,
    TaskNote,
    Team,
)


class TaskingError(ProductsError):
    """A task cannot be created or changed as asked."""


def add_team(session: Session, code: str, name: str, partner_code: str) -> Team:
    if session.scalar(sa.select(Team).where(Team.code == code)) is not None:
        raise TaskingError(f"team {code!r} already exists")
    team = Team(code=code, name=name, partner_code=partner_code)
    session.add(team)
    session.flush()
    return team


def team_by_code(session: Session, code: str) -> Team:
    team = session.scalar(sa.select(Team).where(Team.code == code))
    if team is None:
        raise TaskingError(f"unknown team {code!r}")
    return team


def create_task(
    session: Session,
    *,
    unit_type: str,
    unit_id: str,
    title: str,
    team: Team | str,
    created_by: str,
    kind: str = "task",
    priority: str = "normal",
    due_on: date | None = None,
    source: str | None = None,
    purpose: str | None = None,
    note: str | None = None,
) -> Task:
    """A new open task; ``source`` says where it was raised (search, person, cohort:…)."""
    if unit_type not in UNIT_TYPES:
        raise TaskingError(f"unit_type must be one of {', '.join(UNIT_TYPES)}, not {unit_type!r}")
    if kind not in TASK_KINDS:
        raise TaskingError(f"kind must be one of {', '.join(TASK_KINDS)}, not {kind!r}")
    if priority not in TASK_PRIORITIES:
        raise TaskingError(f"priority must be one of {', '.join(TASK_PRIORITIES)}")
    if not unit_id.strip():
        raise TaskingError("a task needs the nominal or household it is about")
    if not title.strip():
        raise TaskingError("a task needs a title")
    chosen = team if isinstance(team, Team) else team_by_code(session, team)
    task = Task(
        kind=kind,
        unit_type=unit_type,
        unit_id=unit_id.strip(),
        title=title.strip(),
        team=chosen,
        priority=priority,
        due_on=due_on,
        source=source,
        purpose=purpose,
        created_by=created_by,
    )
    session.add(task)
    if note:
        task.notes.append(TaskNote(author=created_by, text=note))
    session.flush()
    return task


def tasks_from_cohort(
    session: Session,
    con: duckdb.DuckDBPyConnection,
    cohort: str,
    *,
    team: Team | str,
    created_by: str,
    title: str,
    unit_ids: list[str] | None = None,
    purpose: str | None = None,
    due_on: date | None = None,
) -> list[Task]:
    """One task per member of ``cohort`` (or of the chosen members); members that
    already have an open task for the same team are skipped, so a repeated click
    does not double the work."""
    if not has_table(con, "gold.cohorts"):
        raise TaskingError("there are no cohorts yet: run `nominal score` first")
    rows = con.execute(
        "SELECT unit_type, unit_id FROM gold.cohorts WHERE cohort = ? ORDER BY rank", [cohort]
    ).fetchall()
    if not rows:
        raise TaskingError(f"cohort {cohort!r} has no members")
    chosen_team = team if isinstance(team, Team) else team_by_code(session, team)
    wanted = set(unit_ids) if unit_ids else None
    created: list[Task] = []
    for unit_type, unit_id in rows:
        if wanted is not None and unit_id not in wanted:
            continue
        kind = "household" if unit_type == "household" else "nominal"
        if kind == "nominal" and unit_type not in ("nominal", "person"):
            continue  # area cohorts are not tasks about a person
        exists = session.scalar(
            sa.select(Task.id).where(
                Task.unit_id == unit_id,
                Task.team_id == chosen_team.id,
                Task.status.in_(("open", "in_progress")),
            )
        )
        if exists is not None:
            continue
        created.append(
            create_task(
                session,
                unit_type=kind,
                unit_id=unit_id,
                title=title,
                team=chosen_team,
                created_by=created_by,
                source=f"cohort:{cohort}",
                purpose=purpose,
                due_on=due_on,
            )
        )
    return created


def update_task(
    session: Session,
    task: Task,
    *,
    by: str,
    status: str | None = None,
    team: Team | str | None = None,
    outcome: str | None = None,
    note: str | None = None,
) -> Task:
    """Change status, reassign, record the outcome or add a note (each change noted)."""
    changes: list[str] = []
    if status is not None and status != task.status:
        if status not in TASK_STATUSES:
            raise TaskingError(f"status must be one of {', '.join(TASK_STATUSES)}")
        if status == "done" and not (outcome or task.outcome):
            raise TaskingError("record the outcome before marking a task done")
        changes.append(f"status {task.status} → {status}")
        task.status = status
        task.closed_at = datetime.now(UTC) if status in ("done", "cancelled") else None
    if team is not None:
        chosen = team if isinstance(team, Team) else team_by_code(session, team)
        if chosen.id != task.team_id:
            changes.append(f"reassigned to {chosen.name}")
            task.team = chosen
    if outcome:
        task.outcome = outcome.strip()
        changes.append("outcome recorded")
    text = "; ".join(changes)
    if note:
        text = f"{text}. {note.strip()}" if text else note.strip()
    if text:
        task.notes.append(TaskNote(author=by, text=text))
    session.flush()
    return task


@dataclass
class QueueItem:
    task: Task
    live_unit_id: str | None  # None: the nominal (household) was erased or retired

    @property
    def overdue(self) -> bool:
        return (
            self.task.due_on is not None
            and self.task.status in ("open", "in_progress")
            and self.task.due_on < date.today()
        )


def queue(
    session: Session,
    lineage: Lineage | None,
    *,
    team: str | None = None,
    statuses: tuple[str, ...] = ("open", "in_progress"),
    unit_id: str | None = None,
    unit_type: str | None = None,
) -> list[QueueItem]:
    """A team's queue (or all teams'), oldest urgent first, each task's nominal or
    household resolved to its live id. ``unit_id`` lists the tasks about one nominal (or
    household, with ``unit_type``) under any id it ever had."""
    query = sa.select(Task).where(Task.status.in_(statuses))
    if team:
        query = query.join(Team).where(Team.code == team)
    if unit_type is not None:
        query = query.where(Task.unit_type == unit_type)
    if unit_id is not None:
        ids = aliases(lineage, unit_id, unit_type)
        query = query.where(Task.unit_id.in_(sorted(ids)))
    order = sa.case({p: i for i, p in enumerate(reversed(TASK_PRIORITIES))}, value=Task.priority)
    tasks = session.scalars(query.order_by(order, Task.due_on.is_(None), Task.due_on, Task.id))
    items = []
    for task in tasks.unique():
        live = lineage.resolve(task.unit_id, task.unit_type) if lineage else task.unit_id
        items.append(QueueItem(task, live))
    return items


def aliases(lineage: Lineage | None, unit_id: str, unit_type: str | None) -> set[str]:
    """The ids a task or enrolment about ``unit_id`` may be stored under (of either
    kind of unit when ``unit_type`` is None)."""
    if lineage is None:
        return {unit_id}
    kinds = (unit_type,) if unit_type else UNIT_TYPES
    return set().union(*(lineage.aliases(unit_id, kind) for kind in kinds))


def meeting_view(
    session: Session,
    con: duckdb.DuckDBPyConnection,
    lineage: Lineage | None,
    *,
    datasets: tuple[str, ...] | None = None,
    as_of: date | None = None,
) -> list[dict[str, Any]]:
    """Cases for the multi-agency meeting: every nominal or household with an open task,
    its tasks by team, and every agency's involvement (open interventions and the
    latest event per agency) from the datasets the viewer may see."""
    as_of = as_of or as_of_date(con)
    cases: dict[tuple[str, str], dict[str, Any]] = {}
    for item in queue(session, lineage):
        live = item.live_unit_id or item.task.unit_id
        case = cases.setdefault(
            (item.task.unit_type, live),
            {"unit_type": item.task.unit_type, "unit_id": live, "tasks": [], "involvement": []},
        )
        case["tasks"].append(item)
    if not cases:
        return []
    key_col = {"nominal": "nominal_id", "household": "household_id"}
    for unit_type, column in key_col.items():
        ids = [uid for (ut, uid) in cases if ut == unit_type]
        if not ids:
            continue
        params: list[Any] = list(ids)
        where = f"{column} IN ({', '.join('?' * len(ids))}) AND event_date <= ?"
        params.append(as_of)
        if datasets is not None:
            if not datasets:
                continue
            where += f" AND dataset IN ({', '.join('?' * len(datasets))})"
            params.extend(datasets)
        types = ", ".join(f"'{t}'" for t in INTERVENTION_EVENT_TYPES)
        day = f"DATE '{as_of.isoformat()}'"
        rows = con.execute(
            f"""SELECT {column}, any_value({column.replace("_id", "_pseudo")}), agency,
                       count(*) AS events, max(event_date)::DATE AS last_event,
                       bool_or(event_type IN ({types}) AND
                               ((event_end_date IS NULL AND coalesce(event_status, 'open') <> 'closed')
                                OR event_end_date > {day})) AS open_involvement
                FROM gold.events WHERE {where} GROUP BY {column}, agency ORDER BY agency""",
            params,
        ).fetchall()
        for uid, pseudo, agency, events, last_event, open_involvement in rows:
            case = cases[(unit_type, uid)]
            case["pseudo"] = pseudo
            case["involvement"].append(
                {
                    "agency": agency,
                    "events": int(events),
                    "last_event": last_event,
                    "open": bool(open_involvement),
                }
            )
    return sorted(
        cases.values(),
        key=lambda c: (
            -sum(1 for i in c["involvement"] if i["open"]),
            -len(c["tasks"]),
            c["unit_id"],
        ),
    )
