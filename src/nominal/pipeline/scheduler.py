"""``nominal scheduler``: cron-style scheduled runs and the inbox drop folder, by polling.

One loop, one process (run it under the process manager, see docs/operations.md).
Each tick:

1. every enabled schedule whose ``next_run_at`` has passed starts a run (triggered
   ``schedule:<name>``) and moves on to its next time (croniter); a missed window
   while the scheduler was down runs once, not once per missed slot;
2. the inbox is listed; a file that has kept the same size and modification time for
   one whole tick is a complete delivery (partners copying a large file over SFTP
   would otherwise be caught half-written), and any new complete delivery starts a
   run triggered ``inbox``. A file that is still there after its run (it failed) does
   not start another run until it changes.

Polling rather than inotify: it works the same on network file systems, where drop
folders usually live, and costs one directory listing per tick.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from croniter import croniter

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.pipeline.models import Schedule
from nominal.pipeline.runner import PipelineError, RunReport, run_pipeline
from nominal.pipeline.stages import plan

log = logging.getLogger("nominal.scheduler")


class ScheduleError(ValueError):
    """A schedule is invalid (bad cron expression, unknown stage, duplicate name)."""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def next_time(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the cron expression fires (UTC)."""
    value: datetime = croniter(cron, _aware(after)).get_next(datetime)
    return _aware(value)


def add_schedule(
    control: ControlPlane,
    name: str,
    cron: str,
    stages: list[str] | None = None,
    engine: str = "duckdb",
    now: datetime | None = None,
) -> Schedule:
    if not croniter.is_valid(cron):
        raise ScheduleError(f"{cron!r} is not a valid cron expression (e.g. '0 2 * * *')")
    chosen = [s.name for s in plan(stages)]
    now = now or datetime.now(UTC)
    with control.session() as session:
        if session.scalar(sa.select(Schedule).where(Schedule.name == name)) is not None:
            raise ScheduleError(f"a schedule named {name!r} already exists")
        schedule = Schedule(
            name=name,
            cron=cron,
            stages_json=json.dumps(chosen),
            engine=engine,
            enabled=True,
            next_run_at=next_time(cron, now),
        )
        session.add(schedule)
        session.flush()
        return schedule


def remove_schedule(control: ControlPlane, name: str) -> bool:
    with control.session() as session:
        found = session.scalar(sa.select(Schedule).where(Schedule.name == name))
        if found is None:
            return False
        session.delete(found)
        return True


def list_schedules(control: ControlPlane) -> list[dict[str, Any]]:
    with control.session() as session:
        return [
            {
                "name": s.name,
                "cron": s.cron,
                "stages": s.stages,
                "engine": s.engine,
                "enabled": s.enabled,
                "next_run_at": _aware(s.next_run_at) if s.next_run_at else None,
                "last_run_at": _aware(s.last_run_at) if s.last_run_at else None,
                "last_run_id": s.last_run_id,
            }
            for s in session.scalars(sa.select(Schedule).order_by(Schedule.name))
        ]


def _inbox_files(inbox: Path) -> dict[str, tuple[int, int]]:
    """Delivery files waiting in the inbox (not hidden, not in ``processed/``)."""
    if not inbox.is_dir():
        return {}
    found: dict[str, tuple[int, int]] = {}
    for path in inbox.rglob("*"):
        rel = path.relative_to(inbox)
        if not path.is_file() or rel.parts[0] == "processed":
            continue
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(".part"):
            continue
        st = path.stat()
        found[str(rel)] = (st.st_size, st.st_mtime_ns)
    return found


@dataclass
class Scheduler:
    """The scheduler's state between ticks (what it has seen in the inbox)."""

    home: Home
    control: ControlPlane
    watch_inbox: bool = True
    inbox_stages: list[str] | None = None
    engine: str = "duckdb"
    runner: Callable[..., RunReport] = run_pipeline
    send_webhooks: bool = True
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    _handled: dict[str, tuple[int, int]] = field(default_factory=dict)

    def tick(self, now: datetime | None = None) -> list[RunReport]:
        """Start whatever is due now; return the runs started."""
        now = _aware(now or datetime.now(UTC))
        reports: list[RunReport] = []
        with self.control.session() as session:
            due = session.scalars(
                sa.select(Schedule).where(Schedule.enabled.is_(True)).order_by(Schedule.name)
            ).all()
            due_now = [
                (s.id, s.name, s.stages, s.engine)
                for s in due
                if s.next_run_at is not None and _aware(s.next_run_at) <= now
            ]
        for schedule_id, name, stage_names, engine in due_now:
            report = self._run(stage_names, engine, f"schedule:{name}")
            with self.control.session() as session:
                s = session.get(Schedule, schedule_id)
                if s is not None:
                    s.last_run_at = now
                    s.last_run_id = report.run_id if report else None
                    s.next_run_at = next_time(s.cron, now)
            if report:
                reports.append(report)
        if self.watch_inbox:
            report = self._check_inbox()
            if report:
                reports.append(report)
        if self.send_webhooks:
            from nominal.feeds.alerts import deliver_due

            deliver_due(self.home, self.control, now=now)
        return reports

    def _check_inbox(self) -> RunReport | None:
        current = _inbox_files(self.home.inbox)
        stable = {
            name: sig
            for name, sig in current.items()
            if self._seen.get(name) == sig and self._handled.get(name) != sig
        }
        self._seen = current
        if not stable:
            return None
        log.info("new deliveries in the inbox", extra={"files": sorted(stable)})
        report = self._run(self.inbox_stages, self.engine, "inbox")
        # Whatever is still there after the run failed: wait until it changes.
        self._handled.update(
            {n: s for n, s in _inbox_files(self.home.inbox).items() if n in stable}
        )
        return report

    def _run(self, stages: list[str] | None, engine: str, trigger: str) -> RunReport | None:
        try:
            report = self.runner(self.home, stages, engine, trigger=trigger, control=self.control)
        except PipelineError as exc:
            log.warning("run not started", extra={"trigger": trigger, "error": str(exc)})
            return None
        log.info(
            "run finished",
            extra={"trigger": trigger, "run_id": report.run_id, "status": report.status},
        )
        return report

    def loop(self, poll_seconds: float = 30.0, max_ticks: int | None = None) -> int:
        """Tick every ``poll_seconds`` until stopped (or ``max_ticks`` ticks); return runs."""
        ticks = runs = 0
        while max_ticks is None or ticks < max_ticks:
            runs += len(self.tick())
            ticks += 1
            if max_ticks is None or ticks < max_ticks:
                time.sleep(poll_seconds)
        return runs
