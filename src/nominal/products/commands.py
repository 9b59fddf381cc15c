"""``nominal products ...``: the products from the command line.

``aggregate`` pre-aggregates demand for the dashboard and the map, ``demand`` prints
the dashboard's figures, ``duplicates`` the duplicate interventions,
``benefits`` the benefits realisation, ``escalate`` escalates missed pathway
conditions (run it daily), ``seed-demo`` sets up demo teams, pathways and risks. They
run as the hub itself on the machine that holds its home (no purpose is asked; the
web pages and ``nominal.connect()`` are how people read the data).
"""

from __future__ import annotations

from typing import Annotated

import typer

from nominal.console import Output

JSON = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def register(app: typer.Typer) -> None:
    products = typer.Typer(
        help="Dashboards, duplicate interventions, tasking, benefits.", no_args_is_help=True
    )
    app.add_typer(products, name="products")

    @products.command("demand")
    def demand_cmd(
        area: Annotated[str | None, typer.Option(help="output-area or ward code")] = None,
        age_band: Annotated[
            str | None, typer.Option(help="0-17, 18-24, 25-44, 45-64 or 65+")
        ] = None,
        agency: Annotated[str | None, typer.Option(help="one agency")] = None,
        json_mode: JSON = False,
    ) -> None:
        """The demand dashboard's headline figures."""
        from nominal.config import home
        from nominal.products import demand
        from nominal.products.aggregates import Aggregates
        from nominal.products.lakeview import Filters, ProductsError, open_snapshot

        out = Output(json_mode)
        try:
            con, snapshot = open_snapshot(home())
            board = demand.dashboard(
                con,
                Filters(area=area, age_band=age_band, agencies=(agency,) if agency else ()),
                aggregates=Aggregates.load(con, snapshot),
            )
        except ProductsError as exc:
            out.fail(str(exc))
            return
        out.result({"ok": True, **board.summary(), "by_agency": board.volumes.by_agency})

    @products.command("aggregate")
    def aggregate_cmd(json_mode: JSON = False) -> None:
        """Pre-aggregate demand for the dashboard and the map (the pipeline's ``products``
        stage does this after every link; run it by hand after an erasure or a rebuild)."""
        from nominal.config import home
        from nominal.products.aggregates import build

        out = Output(json_mode)
        with out.progress() as progress:
            task = progress.add_task("aggregating demand", total=None)
            result = build(home())
            progress.update(task, completed=1, total=1)
        for table, rows in result.get("rows", {}).items():
            out.print(f"{table:<28} {rows:>12,}")
        out.result({"ok": "skipped" not in result, **result})

    @products.command("duplicates")
    def duplicates_cmd(
        unit: Annotated[str, typer.Option(help="nominal or household")] = "nominal",
        json_mode: JSON = False,
    ) -> None:
        """Nominals (or households) with open involvement by two or more agencies."""
        from nominal.config import home
        from nominal.products import demand
        from nominal.products.lakeview import Filters, ProductsError, open_snapshot

        out = Output(json_mode)
        if unit not in demand.UNITS:
            out.fail("--unit must be nominal or household")
            return
        from nominal.products.aggregates import Aggregates

        try:
            con, snapshot = open_snapshot(home())
            total, rows = demand.duplicate_interventions(
                con, Filters(), unit, aggregates=Aggregates.load(con, snapshot)
            )
        except ProductsError as exc:
            out.fail(str(exc))
            return
        for row in rows[:20]:
            out.print(
                f"{row['unit_pseudo']}  since {row['overlap_since']}  "
                + ", ".join(i["agency"] for i in row["involvements"])
            )
        out.result(
            {
                "ok": True,
                "unit": unit,
                "total": total,
                "shown": [{k: v for k, v in r.items() if k != "unit_id"} for r in rows[:20]],
            }
        )

    @products.command("benefits")
    def benefits_cmd(json_mode: JSON = False) -> None:
        """Benefits realisation for the families worked."""
        from nominal.config import home
        from nominal.products import benefits
        from nominal.products.lakeview import ProductsError, open_snapshot

        out = Output(json_mode)
        try:
            con, _ = open_snapshot(home())
            with out.progress() as progress:
                task = progress.add_task("matching and counting", total=None)
                result = benefits.realise(con)
                progress.update(task, completed=1, total=1)
        except ProductsError as exc:
            out.fail(str(exc))
            return
        out.result({"ok": True, **result.to_json()})

    @products.command("escalate")
    def escalate_cmd(json_mode: JSON = False) -> None:
        """Escalate pathway conditions past their due date (run daily)."""
        from nominal.config import home
        from nominal.db import ControlPlane
        from nominal.products import pathways

        out = Output(json_mode)
        control = ControlPlane(home().database_url)
        try:
            with control.session() as s:
                missed = pathways.escalate_overdue(s, by="nominal")
                result = {
                    "ok": True,
                    "escalated": len(missed),
                    "tasks": [m.escalation_task_id for m in missed],
                }
        finally:
            control.dispose()
        out.result(result)

    @products.command("seed-demo")
    def seed_demo_cmd(json_mode: JSON = False) -> None:
        """Demo teams (one per partner), the example pathways and programme risks."""
        from nominal.config import home
        from nominal.products.demo import seed_products

        Output(json_mode).result(seed_products(home()))
