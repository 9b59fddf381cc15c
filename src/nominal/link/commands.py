"""``nominal link``, ``nominal link-file`` and ``nominal review``: the linking commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nominal.console import Output


def register(app: typer.Typer) -> None:
    @app.command("link")
    def link(
        engine: Annotated[
            str, typer.Option("--engine", help="duckdb (default) or spark (pyspark local mode).")
        ] = "duckdb",
        full: Annotated[
            bool,
            typer.Option(
                "--full/--incremental",
                help="Relink everything (default), or only new and changed records.",
            ),
        ] = True,
        retrain: Annotated[
            bool, typer.Option("--retrain", help="Train a new model version first.")
        ] = False,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Link silver records into golden nominals, households and gold tables."""
        from nominal.config import home
        from nominal.engines.lake import LakeError
        from nominal.link.model import ModelError
        from nominal.link.pipeline import LinkError, link_lake

        output = Output(json_mode)
        with output.progress(transient=True) as progress:
            task = progress.add_task("link", total=None)
            try:
                summary = link_lake(
                    home(),
                    engine=engine,
                    mode="full" if full else "incremental",
                    retrain=retrain,
                    progress=lambda step: progress.update(task, description=step),
                )
            except (LinkError, LakeError, ModelError) as exc:
                output.fail(str(exc))
        if summary.get("new_records") == 0 and summary.get("changed") is False:
            output.print("Nothing new to link.")
        else:
            output.print(
                f"Linked {summary['records']:,} records into {summary['nominals']:,} nominals "
                f"({summary['mode']}, {summary['engine']}) in {summary['seconds']:.1f}s; "
                f"{summary['review_queued']} pairs queued for review."
            )
        output.result(summary)

    @app.command("link-file")
    def link_file_command(
        inputs: Annotated[list[Path], typer.Argument(help="One CSV to dedupe, or two to link.")],
        id_column: Annotated[str, typer.Option("--id-column", help="Record id column.")],
        out: Annotated[Path, typer.Option("--out", help="Output CSV: record_id,nominal_id.")],
        mapping: Annotated[
            str,
            typer.Option("--map", help="canonical=source[,canonical=source...] column mapping."),
        ] = "",
        threshold: Annotated[
            float | None, typer.Option("--threshold", help="Match probability threshold.")
        ] = None,
        family_veto: Annotated[
            bool,
            typer.Option(
                "--family-veto",
                help="Never link likely twins or same-named parent and child "
                "(for files of people living in families, as the hub's own data).",
            ),
        ] = False,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Dedupe one CSV file, or link two, with the same standardisation and model."""
        from nominal.link.linkfile import LinkFileError, link_files

        output = Output(json_mode)
        if not 1 <= len(inputs) <= 2:
            output.fail("give one CSV file to dedupe or two to link")
        try:
            summary = link_files(
                inputs, id_column, mapping, out, threshold=threshold, veto=family_veto
            )
        except LinkFileError as exc:
            output.fail(str(exc))
        output.print(
            f"{summary['records']:,} records -> {summary['nominals']:,} nominals; wrote {out}"
        )
        output.result({"ok": True, **summary})

    review = typer.Typer(help="Clerical review of uncertain pairs.", no_args_is_help=True)
    app.add_typer(review, name="review")

    @review.command("list")
    def review_list(
        status: Annotated[str, typer.Option("--status", help="open, decided or all.")] = "open",
        limit: Annotated[int, typer.Option("--limit")] = 50,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """List review items, most uncertain first."""
        from nominal.config import home
        from nominal.link.review import list_items

        output = Output(json_mode)
        items = list_items(home(), status=status, limit=limit)
        for item in items:
            output.print(
                f"{item['id']:>6}  p={item['match_probability']:.3f}  "
                f"{item['nominal_id_l']} ~ {item['nominal_id_r']}  "
                f"{item['record_key_l'][:12]}… {item['record_key_r'][:12]}…"
            )
        if not items:
            output.print("No review items.")
        output.result({"ok": True, "items": items})

    @review.command("decide")
    def review_decide(
        decision: Annotated[str, typer.Argument(help="match or non_match")],
        item: Annotated[int | None, typer.Option("--item", help="Review item id.")] = None,
        records: Annotated[
            str | None, typer.Option("--records", help="KEY1,KEY2 instead of --item.")
        ] = None,
        by: Annotated[str, typer.Option("--by", help="Who decides.")] = "",
        reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Record a match / non-match decision; it overrides the model from now on."""
        from nominal.config import home
        from nominal.link.review import ReviewError, decide

        output = Output(json_mode)
        keys = None
        if records:
            parts = [p.strip() for p in records.split(",") if p.strip()]
            if len(parts) != 2:
                output.fail("--records needs exactly two record keys: KEY1,KEY2")
            keys = (parts[0], parts[1])
        try:
            done = decide(
                home(), decision=decision, by=by, reason=reason, item_id=item, record_keys=keys
            )
        except ReviewError as exc:
            output.fail(str(exc))
        output.print(f"Recorded {done.decision} for {done.record_key_l} ~ {done.record_key_r}.")
        output.result({"ok": True, **done.__dict__})

    @review.command("split")
    def review_split(
        nominal_id: Annotated[str, typer.Argument(help="The wrongly merged nominal.")],
        records: Annotated[
            str, typer.Option("--records", help="Comma-separated record keys to split off.")
        ],
        by: Annotated[str, typer.Option("--by", help="Who decides.")] = "",
        reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
        relink: Annotated[
            bool, typer.Option("--relink/--no-relink", help="Apply now (incremental link).")
        ] = True,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Split records off a nominal (rectification); lineage records the split."""
        from nominal.config import home
        from nominal.link.pipeline import link_lake
        from nominal.link.review import ReviewError, split

        output = Output(json_mode)
        keys = [k.strip() for k in records.split(",") if k.strip()]
        try:
            summary = split(home(), nominal_id, keys, by=by, reason=reason)
        except ReviewError as exc:
            output.fail(str(exc))
        if relink:
            summary["link"] = link_lake(home(), mode="incremental")
        output.print(f"Split {summary['records_split']} records off {nominal_id}.")
        output.result({"ok": True, **summary})
