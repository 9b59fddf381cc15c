"""``nominal synth``: write a synthetic town's partner feeds, contracts, documents and truth."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from nominal.console import Output


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        out: Annotated[
            Path, typer.Option("--out", help="Folder to write into (its sub-folders are replaced).")
        ],
        people: Annotated[int, typer.Option("--people", help="Number of people.")] = 20_000,
        seed: Annotated[
            int, typer.Option("--seed", help="Random seed (same seed, same files).")
        ] = 42,
        as_of: Annotated[
            str, typer.Option("--as-of", help="End of the period (YYYY-MM-DD).")
        ] = "2026-10-31",
        years: Annotated[int, typer.Option("--years", help="Years of history before --as-of.")] = 6,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Generate a synthetic multi-agency population with ground truth."""
        from nominal.synth import generate

        output = Output(json_mode)
        try:
            end = datetime.strptime(as_of, "%Y-%m-%d").date()
        except ValueError:
            output.fail(f"--as-of: {as_of!r} is not a date in the form YYYY-MM-DD")
        if people < 50:
            output.fail("--people must be at least 50")
        if not 2 <= years <= 20:
            output.fail("--years must be between 2 and 20")
        if out.exists() and not out.is_dir():
            output.fail(f"--out: {out} exists and is not a folder")
        with output.progress() as progress:
            summary = generate(out, people, seed=seed, as_of=end, years=years, progress=progress)
        output.print(
            f"Wrote {summary.people:,} people in {summary.households:,} households, "
            f"{summary.total_records:,} records in {summary.files} files to {out} "
            f"in {summary.seconds:.1f}s."
        )
        for dataset, count in summary.records.items():
            output.print(f"  {dataset:<26} {count:>10,}")
        output.result({"ok": True, **summary.to_dict()})
