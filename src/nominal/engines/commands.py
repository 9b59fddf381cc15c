"""``nominal lake``: look at the lake's snapshots and tidy old ones."""

from __future__ import annotations

import typer

from nominal.config import home
from nominal.console import Output


def register(app: typer.Typer) -> None:
    lake_app = typer.Typer(
        help="The Parquet lake: snapshots and housekeeping.", no_args_is_help=True
    )
    app.add_typer(lake_app, name="lake")

    @lake_app.command("status")
    def status(
        json_mode: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Show the current snapshot and its tables."""
        from rich.table import Table

        from nominal.engines.lake import Lake

        out = Output(json_mode)
        lake = Lake(home().ensure().lake)
        snap = lake.current()
        if snap is None:
            out.print("The lake is empty.")
            out.result({"snapshot": None, "tables": {}})
            return
        table = Table(title=f"Snapshot {snap.id} ({snap.operation}, {snap.created_at})")
        table.add_column("table")
        table.add_column("files", justify="right")
        table.add_column("rows", justify="right")
        for name, entry in sorted(snap.tables.items()):
            table.add_row(name, str(len(entry.files)), f"{entry.rows:,}")
        out.print(table)
        out.result(
            {
                "snapshot": snap.id,
                "operation": snap.operation,
                "created_at": snap.created_at,
                "tables": {
                    n: {"files": len(e.files), "rows": e.rows} for n, e in snap.tables.items()
                },
            }
        )

    @lake_app.command("vacuum")
    def vacuum(
        keep: int = typer.Option(5, help="How many recent snapshots to keep."),
        json_mode: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Delete old snapshots and data files no kept snapshot refers to."""
        from nominal.engines.lake import Lake

        out = Output(json_mode)
        result = Lake(home().ensure().lake).vacuum(keep_last=keep)
        out.print(
            f"Removed {result['snapshots_removed']} snapshots and {result['files_removed']} files."
        )
        out.result(result)
