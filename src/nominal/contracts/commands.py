"""``nominal contracts``: register partner feed contracts and list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nominal.config import home
from nominal.console import Output


def register(app: typer.Typer) -> None:
    contracts_app = typer.Typer(
        help="Feed contracts: what each partner sends.", no_args_is_help=True
    )
    app.add_typer(contracts_app, name="contracts")

    @contracts_app.command("add")
    def add(
        path: Annotated[Path, typer.Argument(help="A contract YAML file or a folder of them.")],
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Validate contracts and register them with the hub."""
        from nominal.contracts.model import ContractError
        from nominal.contracts.registry import add_contracts

        out = Output(json_mode)
        try:
            added = add_contracts(home().ensure(), path)
        except ContractError as exc:
            out.fail(str(exc))
        for c in added:
            out.print(f"Added [bold]{c.feed}[/] ({c.partner.name}, {c.dataset}) -> {c.path}")
        out.result({"ok": True, "added": [c.feed for c in added]})

    @contracts_app.command("list")
    def list_(
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """List the registered contracts."""
        from rich.table import Table

        from nominal.contracts.model import ContractError
        from nominal.contracts.registry import registered_contracts

        out = Output(json_mode)
        try:
            contracts = registered_contracts(home().ensure())
        except ContractError as exc:
            out.fail(str(exc))
        table = Table(title=f"{len(contracts)} feed contracts")
        for col in ("feed", "partner", "dataset", "format", "pattern", "agreement", "retention"):
            table.add_column(col)
        rows = []
        for c in contracts:
            row = {
                "feed": c.feed,
                "partner": c.partner.code,
                "dataset": c.dataset,
                "format": c.format.type,
                "pattern": c.deliveries.pattern,
                "agreement": c.agreement,
                "retention_years": c.retention.years,
            }
            rows.append(row)
            table.add_row(*(str(v) for v in row.values()))
        out.print(table)
        out.result({"ok": True, "contracts": rows})
