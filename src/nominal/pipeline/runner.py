"""``nominal run``: the stages in dependency order, each recorded in the control plane.

A run is written to the control plane before anything happens, and each stage's row
before the stage starts, so a run killed mid-stage is visible as such. A failed (or
interrupted) run is resumed with its id: stages that succeeded are not run again, the
run starts from the first stage that did not succeed, and the retried stage gets a
second row (attempt 2) next to the failed one, so the history keeps both.

Only one run at a time: an exclusive, non-blocking ``flock`` on ``home/pipeline.lock``
(the lake already serialises its own transactions; this stops two orchestrators
interleaving stages).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from nominal.config import Home
from nominal.console import to_json
from nominal.db import ControlPlane
from nominal.engines.lake import Lake, Snapshot
from nominal.pipeline.models import PipelineRun, StageRun
from nominal.pipeline.stages import Stage, StageContext, StageError, plan, stages

log = logging.getLogger("nominal.pipeline")
ENGINES = ("duckdb", "spark")


class PipelineError(RuntimeError):
    """The run could not start (unknown stage, run in progress, nothing to resume)."""


@dataclass
class RunReport:
    """What ``run_pipeline`` did: the run id, its status and each stage's figures."""

    run_id: str
    status: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "stages": self.stages,
        }


@contextlib.contextmanager
def _exclusive(home: Home) -> Iterator[None]:
    home.ensure()
    with open(home.root / "pipeline.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError("another pipeline run is in progress on this home") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _counts(snapshot: Snapshot | None, tables: tuple[str, ...]) -> dict[str, int]:
    if snapshot is None:
        return {}
    return {t: snapshot.rows(t) for t in tables if snapshot.has(t)}


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, StageError):
        return str(exc)
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _start(
    control: ControlPlane,
    names: list[str] | None,
    engine: str,
    resume: str | None,
    trigger: str,
) -> tuple[str, list[Stage], int]:
    """Create the run (or reopen the one to resume); return its id, stages to run, attempt."""
    known = stages()
    with control.session() as session:
        if resume is None:
            chosen = plan(names)
            run = PipelineRun(
                id=_new_run_id(),
                stages_json=json.dumps([s.name for s in chosen]),
                engine=engine,
                trigger=trigger,
                status="running",
                attempts=1,
            )
            session.add(run)
            return run.id, chosen, 1
        found = session.get(PipelineRun, resume)
        if found is None:
            raise PipelineError(f"no pipeline run {resume!r} to resume")
        if found.status == "succeeded":
            raise PipelineError(f"run {resume} already succeeded: nothing to resume")
        done = {s.stage for s in found.stage_runs if s.status == "succeeded"}
        missing = [n for n in found.stages if n not in known]
        if missing:
            raise PipelineError(f"run {resume} has a stage this build lacks: {missing[0]}")
        remaining = [known[n] for n in found.stages if n not in done]
        # A stage left 'running' was interrupted (the process died): close it as failed.
        for s in found.stage_runs:
            if s.status == "running":
                s.status, s.error = "failed", "interrupted (the process stopped)"
                s.finished_at = datetime.now(UTC)
        found.attempts += 1
        found.status, found.error, found.finished_at = "running", None, None
        return found.id, remaining, found.attempts


def _run_stage(
    control: ControlPlane,
    home: Home,
    run_id: str,
    stage: Stage,
    position: int,
    attempt: int,
    engine: str,
    progress: Callable[[str], None],
    rich_progress: Any,
) -> dict[str, Any]:
    lake = Lake(home.ensure().lake)
    before = lake.current()
    with control.session() as session:
        row = StageRun(
            run_id=run_id,
            stage=stage.name,
            position=position,
            attempt=attempt,
            status="running",
            snapshot_before=before.id if before else None,
            inputs_json=json.dumps(_counts(before, stage.inputs)),
        )
        session.add(row)
        session.flush()
        row_id = row.id
    started = time.perf_counter()
    status, error, summary = "succeeded", None, {}
    log.info("stage started", extra={"run_id": run_id, "stage": stage.name, "attempt": attempt})
    try:
        missing = [t for t in stage.requires if before is None or not before.has(t)]
        if missing:
            raise StageError(
                f"{stage.name} needs {', '.join(missing)}, which the lake does not have: "
                f"run the stage that writes it first"
            )
        summary = stage.run(StageContext(home, engine, run_id, progress, rich_progress))
    except KeyboardInterrupt:
        status, error = "failed", "interrupted"
        raise
    except Exception as exc:
        status, error = "failed", _error_text(exc)
        log.error(
            "stage failed",
            extra={"run_id": run_id, "stage": stage.name, "error": error},
        )
        log.debug("stage traceback: %s", traceback.format_exc())
    finally:
        seconds = time.perf_counter() - started
        after = lake.current()
        with control.session() as session:
            done = session.get(StageRun, row_id)
            assert done is not None
            done.status, done.error = status, error
            done.finished_at = datetime.now(UTC)
            done.seconds = round(seconds, 3)
            done.snapshot_after = after.id if after else None
            done.outputs_json = json.dumps(_counts(after, stage.outputs))
            done.summary_json = to_json(summary)
        from nominal.ops.metrics import PIPELINE_STAGES

        PIPELINE_STAGES.labels(stage=stage.name, status=status).observe(seconds)
        figures = {
            "stage": stage.name,
            "attempt": attempt,
            "status": status,
            "seconds": round(seconds, 3),
            "outputs": _counts(after, stage.outputs),
            "error": error,
        }
    log.info("stage finished", extra={**figures, "run_id": run_id})
    return figures


def run_pipeline(
    home: Home,
    names: list[str] | None = None,
    engine: str = "duckdb",
    *,
    resume: str | None = None,
    trigger: str = "manual",
    control: ControlPlane | None = None,
    progress: Any = None,
) -> RunReport:
    """Run the stages (default all) in dependency order, or resume a failed run.

    ``progress`` is an optional Rich ``Progress``: one bar for the run, advanced per
    stage, with the stage's own messages as its description.
    """
    if engine not in ENGINES:
        raise PipelineError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    owned = control is None
    control = control or ControlPlane(home.database_url)
    try:
        with _exclusive(home):
            if resume is not None:
                with control.session() as session:
                    found = session.get(PipelineRun, resume)
                    if found is not None:
                        engine = found.engine  # a resumed run keeps its engine
            run_id, todo, attempt = _start(control, names, engine, resume, trigger)
            return _execute(control, home, run_id, todo, attempt, engine, progress)
    finally:
        if owned:
            control.dispose()


def _execute(
    control: ControlPlane,
    home: Home,
    run_id: str,
    todo: list[Stage],
    attempt: int,
    engine: str,
    progress: Any,
) -> RunReport:
    started = time.perf_counter()
    report = RunReport(run_id, "running")
    task = progress.add_task(f"Run {run_id}", total=len(todo)) if progress else None

    def say(message: str) -> None:
        if progress is not None:
            progress.update(task, description=message)

    with control.session() as session:
        run = session.get(PipelineRun, run_id)
        assert run is not None
        order = {name: i for i, name in enumerate(run.stages)}
    try:
        for stage in todo:
            say(f"{stage.name}: {stage.description}")
            figures = _run_stage(
                control,
                home,
                run_id,
                stage,
                order[stage.name],
                attempt,
                engine,
                lambda m, s=stage.name: say(f"{s}: {m}"),  # type: ignore[misc]
                progress,
            )
            report.stages.append(figures)
            if progress is not None:
                progress.advance(task)
            if figures["status"] != "succeeded":
                report.status = "failed"
                report.error = f"{stage.name}: {figures['error']}"
                break
        else:
            report.status = "succeeded"
    except KeyboardInterrupt:
        report.status, report.error = "failed", "interrupted"
        raise
    finally:
        report.seconds = time.perf_counter() - started
        with control.session() as session:
            run = session.get(PipelineRun, run_id)
            assert run is not None
            run.status = report.status if report.status != "running" else "failed"
            run.error = report.error
            run.finished_at = datetime.now(UTC)
            run.seconds = round((run.seconds or 0.0) + report.seconds, 3)  # total over attempts
    return report


def run_history(control: ControlPlane, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs with their stage rows, newest first (the operations page's data)."""
    with control.session() as session:
        runs = session.scalars(
            sa.select(PipelineRun).order_by(PipelineRun.started_at.desc()).limit(limit)
        ).all()
        return [run_json(r) for r in runs]


def run_json(run: PipelineRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "status": run.status,
        "engine": run.engine,
        "trigger": run.trigger,
        "attempts": run.attempts,
        "stages": run.stages,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "seconds": run.seconds,
        "error": run.error,
        "stage_runs": [
            {
                "stage": s.stage,
                "attempt": s.attempt,
                "status": s.status,
                "started_at": s.started_at,
                "seconds": s.seconds,
                "snapshot_before": s.snapshot_before,
                "snapshot_after": s.snapshot_after,
                "inputs": s.inputs,
                "outputs": s.outputs,
                "error": s.error,
            }
            for s in run.stage_runs
        ],
    }
