"""``nominal backup create|restore`` and ``nominal config``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nominal.config import home
from nominal.console import Output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary.")]


def _apply_config_file() -> None:
    """Let a configuration file set the home and database before any command runs."""
    from nominal.ops.settings import SettingsError, apply

    try:
        apply()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


def register(app: typer.Typer) -> None:
    _apply_config_file()
    backup_app = typer.Typer(
        help="Back up and restore the lake and control plane.", no_args_is_help=True
    )
    app.add_typer(backup_app, name="backup")

    @backup_app.command("create")
    def backup_create(
        to: Annotated[Path, typer.Option("--to", help="Folder to write the backup into.")] = Path(
            "backups"
        ),
        method: Annotated[
            str | None,
            typer.Option(
                "--method", help="PostgreSQL only: pg_dump (default if installed) or sql-copy."
            ),
        ] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Back up the current lake snapshot, bronze, keys, contracts, models and control plane."""
        from nominal.ops.backup import BackupError, create_backup

        out = Output(json_mode)
        try:
            manifest = create_backup(home().ensure(), to, method)
        except BackupError as exc:
            out.fail(str(exc))
        lake = manifest["lake"]
        out.print(
            f"Backup {manifest['path']}: snapshot {lake['snapshot']}, {lake['data_files']} data files, "
            f"{lake['bronze_files']} deliveries, control plane by {manifest['control_method']}."
        )
        out.result({"ok": True, **manifest})

    @backup_app.command("restore")
    def backup_restore(
        source: Path,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing lake.")] = False,
        json_mode: JsonOpt = False,
    ) -> None:
        """Restore a backup folder into this home and its control-plane database."""
        from nominal.ops.backup import BackupError, restore_backup

        out = Output(json_mode)
        try:
            result = restore_backup(home().ensure(), source, force=force)
        except BackupError as exc:
            out.fail(str(exc))
        out.print(
            f"Restored {source} (snapshot {result['snapshot']}, control plane by {result['control_method']})."
        )
        out.result({"ok": True, **result})

    @app.command("config")
    def config(json_mode: JsonOpt = False) -> None:
        """Show the effective operational settings and where each came from."""
        from nominal.ops.settings import SettingsError, settings

        out = Output(json_mode)
        try:
            conf = settings()
        except SettingsError as exc:
            out.fail(str(exc))
        values = conf.to_dict()
        if values.get("database_url"):
            from sqlalchemy.engine import make_url

            values["database_url"] = make_url(values["database_url"]).render_as_string(
                hide_password=True
            )
        for key, value in values.items():
            out.print(f"{key:<26} {value}")
        out.result(values)
