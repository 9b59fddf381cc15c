"""Scheduled runs (croniter) and the inbox drop folder watched by polling."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.pipeline.scheduler import (
    ScheduleError,
    Scheduler,
    add_schedule,
    list_schedules,
    next_time,
)


def test_next_time_follows_cron() -> None:
    at = datetime(2026, 12, 1, 1, 59, 30, tzinfo=UTC)
    assert next_time("0 2 * * *", at) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert next_time("0 2 * * *", datetime(2026, 12, 1, 2, 0, tzinfo=UTC)) == datetime(
        2026, 12, 2, 2, 0, tzinfo=UTC
    )


def test_schedule_runs_when_due_once(prepared_hub: Callable[[str | None], Home]) -> None:
    home = prepared_hub(None)
    control = ControlPlane(home.database_url)
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="not a valid cron"):
        add_schedule(control, "nightly", "every night", ["ingest"], now=now)
    add_schedule(control, "nightly", "0 2 * * *", ["ingest"], now=now)
    with pytest.raises(ScheduleError, match="already exists"):
        add_schedule(control, "nightly", "0 3 * * *", ["ingest"], now=now)
    scheduler = Scheduler(home, control, watch_inbox=False)
    assert scheduler.tick(now + timedelta(minutes=30)) == []  # not due yet
    # the scheduler was down over two nights: the missed window runs once
    reports = scheduler.tick(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    assert len(reports) == 1 and reports[0].ok
    assert not any(home.inbox.glob("*.csv"))  # ingested and moved to processed
    (listed,) = list_schedules(control)
    assert listed["last_run_id"] == reports[0].run_id
    assert listed["next_run_at"] == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert scheduler.tick(datetime(2026, 12, 3, 9, 1, tzinfo=UTC)) == []
    control.dispose()


def test_inbox_delivery_starts_a_run_once_complete(
    prepared_hub: Callable[[str | None], Home], small_town: Path
) -> None:
    home = prepared_hub(None)
    for f in list(home.inbox.iterdir()):
        f.unlink()
    control = ControlPlane(home.database_url)
    scheduler = Scheduler(home, control, inbox_stages=["ingest"])
    assert scheduler.tick() == []
    target = home.inbox / "npol_crimes_2024.csv"
    shutil.copy(small_town / "feeds" / "npol_crimes_2024.csv", target)
    assert scheduler.tick() == []  # seen once: maybe still being written
    (report,) = scheduler.tick()
    assert report.ok and not target.exists()
    assert (home.inbox / "processed" / "npol_crimes_2024.csv").exists()
    # a broken delivery fails its run once, and does not retrigger until it changes
    broken = home.inbox / "npol_crimes_2025.csv"
    broken.write_text("")
    scheduler.tick()
    (failed,) = scheduler.tick()
    assert failed.status == "failed" and "npol_crimes_2025.csv" in (failed.error or "")
    assert scheduler.tick() == [] and scheduler.tick() == []
    control.dispose()
