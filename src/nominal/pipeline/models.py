"""Control-plane records of pipeline runs (SQLAlchemy 2, Alembic branch ``ops``).

A run is one execution of the pipeline's stages in dependency order. Each stage's
execution is a :class:`StageRun` row, written *before* the stage starts (status
``running``) and finished afterwards, so a crash mid-stage leaves a visible trace and
``nominal run --resume`` knows where to start again. Inputs and outputs are the lake
tables a stage read and wrote with their row counts, and the snapshots before and
after, kept as JSON text so the schema is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nominal.db import Base, utcnow

TS = sa.DateTime(timezone=True)
RUN_STATUSES = ("running", "succeeded", "failed")
STAGE_STATUSES = ("running", "succeeded", "failed", "skipped")


class PipelineRun(Base):
    """One run of the pipeline: which stages, on which engine, why, and how it ended."""

    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    stages_json: Mapped[str] = mapped_column(sa.Text)
    engine: Mapped[str] = mapped_column(sa.String(20))
    trigger: Mapped[str] = mapped_column(sa.String(40), default="manual")
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    seconds: Mapped[float | None] = mapped_column(sa.Float)
    error: Mapped[str | None] = mapped_column(sa.Text)

    stage_runs: Mapped[list[StageRun]] = relationship(
        back_populates="run", order_by="StageRun.id", cascade="all, delete-orphan"
    )

    @property
    def stages(self) -> list[str]:
        return list(json.loads(self.stages_json))


class StageRun(Base):
    """One execution of one stage within a run (a resumed stage has a second row)."""

    __tablename__ = "pipeline_stage_runs"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(sa.String(40))
    position: Mapped[int] = mapped_column(sa.Integer)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    seconds: Mapped[float | None] = mapped_column(sa.Float)
    snapshot_before: Mapped[str | None] = mapped_column(sa.String(80))
    snapshot_after: Mapped[str | None] = mapped_column(sa.String(80))
    inputs_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    outputs_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    summary_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    error: Mapped[str | None] = mapped_column(sa.Text)

    run: Mapped[PipelineRun] = relationship(back_populates="stage_runs")

    @property
    def inputs(self) -> dict[str, int]:
        return dict(json.loads(self.inputs_json or "{}"))

    @property
    def outputs(self) -> dict[str, int]:
        return dict(json.loads(self.outputs_json or "{}"))

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.summary_json or "{}"))


class Schedule(Base):
    """A cron-style schedule of pipeline runs, checked by ``nominal scheduler``."""

    __tablename__ = "pipeline_schedules"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    cron: Mapped[str] = mapped_column(sa.String(120))
    stages_json: Mapped[str] = mapped_column(sa.Text)
    engine: Mapped[str] = mapped_column(sa.String(20), default="duckdb")
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(TS)
    last_run_at: Mapped[datetime | None] = mapped_column(TS)
    last_run_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    @property
    def stages(self) -> list[str]:
        return list(json.loads(self.stages_json))
