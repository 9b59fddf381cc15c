"""``nominal ingest``, ``nominal dq show`` and ``nominal geography import``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from nominal.config import home
from nominal.console import Output


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(help="Delivery files or folders (default: the inbox)."),
        ] = None,
        contracts: Annotated[
            Path | None,
            typer.Option(
                "--contracts", help="Use the contracts in this folder, not the registered ones."
            ),
        ] = None,
        contract: Annotated[
            Path | None, typer.Option("--contract", help="Use this one contract for the files.")
        ] = None,
        inbox: Annotated[
            bool, typer.Option("--inbox", help="Process the home's inbox/ drop folder.")
        ] = False,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", help="Date retention is judged at (YYYY-MM-DD; default today)."
            ),
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Take in partner deliveries: bronze copy, validation, quarantine, silver tables."""
        from rich.table import Table

        from nominal.contracts.model import ContractError
        from nominal.engines.lake import LakeError
        from nominal.ingest.api import ingest_paths
        from nominal.ingest.pipeline import IngestError

        out = Output(json_mode)
        h = home().ensure()
        when = None
        if as_of is not None:
            try:
                when = datetime.strptime(as_of, "%Y-%m-%d").date()
            except ValueError:
                out.fail(f"--as-of: {as_of!r} is not a date in the form YYYY-MM-DD")
        chosen = None if (inbox or not paths) else list(paths)
        source = contract or contracts
        try:
            with out.progress() as progress:
                summary = ingest_paths(h, chosen, progress, contracts=source, as_of=when)
        except (ContractError, IngestError, LakeError) as exc:
            out.fail(str(exc))
        table = Table(title=f"Ingest: {len(summary.deliveries)} files, snapshot {summary.snapshot}")
        for col in ("file", "feed", "status", "rows in", "accepted", "quarantined"):
            table.add_column(col, justify="right" if col[0] in "raq" else "left")
        for d in summary.deliveries:
            table.add_row(
                Path(d.file).name, d.feed or "-", d.status, f"{d.rows_in:,}",
                f"{d.rows_accepted:,}", f"{d.rows_quarantined:,}",
            )  # fmt: skip
        out.print(table)
        out.print(
            f"rows in {summary.rows_in:,} = accepted {summary.rows_accepted:,} "
            f"+ quarantined {summary.rows_quarantined:,} ({summary.seconds:.1f}s)"
        )
        problems = [d for d in summary.deliveries if d.status in ("failed", "no_contract")]
        for d in problems:
            out.err.print(f"[bold red]{d.status}:[/] {d.message}", highlight=False)
        out.result(summary.to_dict())
        if problems:
            raise typer.Exit(1)

    dq_app = typer.Typer(help="Data-quality reports per delivery.", no_args_is_help=True)
    app.add_typer(dq_app, name="dq")

    @dq_app.command("show")
    def dq_show(
        delivery: Annotated[
            str | None,
            typer.Argument(help="Delivery id (or its start) or file name; default: list them."),
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Show the data-quality report of a delivery, or list the reports."""
        from rich.table import Table

        from nominal.ingest.dq import list_reports

        out = Output(json_mode)
        reports = list_reports(home().ensure())
        if delivery is None:
            table = Table(title=f"{len(reports)} data-quality reports")
            for col in ("delivery", "feed", "file", "rows in", "quarantined"):
                table.add_column(col)
            for r in reports:
                table.add_row(
                    r["delivery_id"][:12], r["feed"], r["file_name"], f"{r['rows_in']:,}",
                    f"{r['rows_quarantined']:,}",
                )  # fmt: skip
            out.print(table)
            out.result({"ok": True, "reports": [
                {k: r[k] for k in ("delivery_id", "feed", "file_name", "rows_in",
                                   "rows_quarantined", "path")} for r in reports]})  # fmt: skip
            return
        found = [
            r for r in reports
            if r["delivery_id"].startswith(delivery) or r["file_name"] == delivery
        ]  # fmt: skip
        if not found:
            out.fail(f"no data-quality report for delivery {delivery!r}")
        r = found[-1]
        table = Table(title=f"{r['file_name']} ({r['feed']}): {r['rows_in']:,} rows in, "
                      f"{r['rows_quarantined']:,} quarantined")  # fmt: skip
        for col in ("field", "completeness", "validity", "distinct", "invalid"):
            table.add_column(col)
        for name, f in r["fields"].items():
            table.add_row(
                name,
                "-" if f["completeness"] is None else f"{100 * f['completeness']:.1f}%",
                "-" if f["validity"] is None else f"{100 * f['validity']:.1f}%",
                f"{f['distinct']:,}", f"{f['invalid']:,}",
            )  # fmt: skip
        out.print(table)
        for reason in r["quarantine_reasons"]:
            out.print(f"  quarantined: {reason['field']}: {reason['reason']} x {reason['rows']:,}")
        out.print(f"HTML: {Path(r['path']).with_suffix('.html')}")
        out.result({"ok": True, **r})

    geo_app = typer.Typer(help="Reference geography (ONS formats).", no_args_is_help=True)
    app.add_typer(geo_app, name="geography")

    @geo_app.command("import")
    def geography_import(
        postcodes: Annotated[Path, typer.Option("--postcodes", help="ONS Postcode Directory CSV.")],
        output_areas: Annotated[
            Path, typer.Option("--output-areas", help="Output Area boundaries GeoJSON.")
        ],
        wards: Annotated[
            Path | None, typer.Option("--wards", help="Ward boundaries GeoJSON.")
        ] = None,
        deprivation: Annotated[
            Path | None, typer.Option("--deprivation", help="Deprivation (IMD) CSV.")
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Load reference.postcodes, reference.output_areas and reference.wards."""
        from nominal.ingest.api import import_geography
        from nominal.ingest.geography import GeographyError

        out = Output(json_mode)
        try:
            summary = import_geography(home().ensure(), postcodes, output_areas, wards, deprivation)
        except GeographyError as exc:
            out.fail(str(exc))
        out.print(
            f"Loaded {summary.postcodes:,} postcodes, {summary.output_areas:,} output areas "
            f"and {summary.wards:,} wards (snapshot {summary.snapshot})."
        )
        out.result(summary.to_dict())
