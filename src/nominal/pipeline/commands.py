"""``nominal run``, ``nominal runs``, ``nominal schedule`` and ``nominal scheduler``."""

from __future__ import annotations

from typing import Annotated

import typer

from nominal.config import home
from nominal.console import Output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary.")]


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        stages: Annotated[
            str | None,
            typer.Option(
                "--stages", help="Comma-separated stages (default all: ingest,link,features,score)."
            ),
        ] = None,
        engine: Annotated[str, typer.Option("--engine", help="duckdb or spark.")] = "duckdb",
        resume: Annotated[
            str | None,
            typer.Option("--resume", help="Resume this failed run from its failed stage."),
        ] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Run the pipeline's stages in dependency order, recording each in the control plane."""
        from nominal.pipeline.runner import PipelineError, run_pipeline
        from nominal.pipeline.stages import StageError

        out = Output(json_mode)
        if resume and stages:
            out.fail("--resume continues the run's own stages: do not give --stages as well")
        try:
            with out.progress() as progress:
                report = run_pipeline(
                    home().ensure(), _split(stages), engine, resume=resume, progress=progress
                )
        except (PipelineError, StageError) as exc:
            out.fail(str(exc))
        for s in report.stages:
            mark = "[green]ok[/]" if s["status"] == "succeeded" else "[red]failed[/]"
            rows = ", ".join(f"{t} {n:,}" for t, n in s["outputs"].items())
            out.print(f"{s['stage']:<10} {mark} {s['seconds']:>8.1f}s  {rows}")
            if s["error"]:
                out.print(f"           {s['error']}", markup=False)
        if not report.ok:
            out.print(
                f"Run {report.run_id} failed. Fix the cause, then: nominal run --resume {report.run_id}"
            )
            out.result(report.to_dict())
            raise typer.Exit(1)
        out.print(f"Run {report.run_id} succeeded in {report.seconds:.1f}s.")
        out.result(report.to_dict())

    @app.command("runs")
    def runs(
        limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
        json_mode: JsonOpt = False,
    ) -> None:
        """List recent pipeline runs and their stages."""
        from rich.table import Table

        from nominal.db import ControlPlane
        from nominal.pipeline.runner import run_history

        out = Output(json_mode)
        control = ControlPlane(home().ensure().database_url)
        history = run_history(control, limit)
        control.dispose()
        table = Table(title="Pipeline runs")
        for col in ("run", "status", "trigger", "engine", "stages", "seconds", "error"):
            table.add_column(col)
        for r in history:
            table.add_row(
                r["run_id"],
                r["status"],
                r["trigger"],
                r["engine"],
                ",".join(r["stages"]),
                f"{r['seconds'] or 0:.1f}",
                r["error"] or "",
            )
        out.print(table)
        out.result({"runs": history})

    schedule_app = typer.Typer(help="Cron-style scheduled pipeline runs.", no_args_is_help=True)
    app.add_typer(schedule_app, name="schedule")

    @schedule_app.command("add")
    def schedule_add(
        name: str,
        cron: Annotated[
            str, typer.Option("--cron", help="Cron expression, UTC, e.g. '0 2 * * *'.")
        ],
        stages: Annotated[str | None, typer.Option("--stages")] = None,
        engine: Annotated[str, typer.Option("--engine")] = "duckdb",
        json_mode: JsonOpt = False,
    ) -> None:
        """Add a schedule (run by `nominal scheduler`)."""
        from nominal.db import ControlPlane
        from nominal.pipeline.scheduler import ScheduleError, add_schedule
        from nominal.pipeline.stages import StageError

        out = Output(json_mode)
        control = ControlPlane(home().ensure().database_url)
        try:
            s = add_schedule(control, name, cron, _split(stages), engine)
        except (ScheduleError, StageError) as exc:
            out.fail(str(exc))
        finally:
            control.dispose()
        out.print(f"Schedule {name}: {cron}, next run {s.next_run_at:%Y-%m-%d %H:%M} UTC.")
        out.result({"ok": True, "name": name, "next_run_at": s.next_run_at})

    @schedule_app.command("list")
    def schedule_list(json_mode: JsonOpt = False) -> None:
        """List the schedules."""
        from nominal.db import ControlPlane
        from nominal.pipeline.scheduler import list_schedules

        out = Output(json_mode)
        control = ControlPlane(home().ensure().database_url)
        found = list_schedules(control)
        control.dispose()
        for s in found:
            out.print(
                f"{s['name']:<20} {s['cron']:<16} {','.join(s['stages'])}  next {s['next_run_at']}"
            )
        out.result({"schedules": found})

    @schedule_app.command("remove")
    def schedule_remove(name: str, json_mode: JsonOpt = False) -> None:
        """Remove a schedule."""
        from nominal.db import ControlPlane
        from nominal.pipeline.scheduler import remove_schedule

        out = Output(json_mode)
        control = ControlPlane(home().ensure().database_url)
        removed = remove_schedule(control, name)
        control.dispose()
        if not removed:
            out.fail(f"no schedule named {name!r}")
        out.print(f"Removed schedule {name}.")
        out.result({"ok": True, "name": name})

    @app.command("scheduler")
    def scheduler(
        poll: Annotated[float, typer.Option("--poll", help="Seconds between checks.")] = 30.0,
        watch_inbox: Annotated[
            bool, typer.Option("--watch-inbox/--no-watch-inbox", help="Run when deliveries arrive.")
        ] = True,
        ticks: Annotated[
            int | None,
            typer.Option("--ticks", help="Stop after this many checks (default: never)."),
        ] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Run scheduled pipeline runs and watch the inbox drop folder, until stopped."""
        from nominal.db import ControlPlane
        from nominal.ops.logs import configure_logging
        from nominal.pipeline.scheduler import Scheduler

        out = Output(json_mode)
        configure_logging()
        h = home().ensure()
        control = ControlPlane(h.database_url)
        try:
            runs = Scheduler(h, control, watch_inbox=watch_inbox).loop(poll, ticks)
        except KeyboardInterrupt:
            runs = -1
        finally:
            control.dispose()
        out.result({"ok": True, "runs": runs})
