"""The ``nominal`` command line (Typer).

Each area of the hub registers its own commands from ``<area>/commands.py`` with a
``register(app)`` function, so this file only lists the areas. Commands import their
heavy dependencies inside the command function, which keeps ``nominal --help`` fast.
"""

from __future__ import annotations

import importlib

import typer

from nominal import __version__

app = typer.Typer(
    name="nominal",
    help="nominal: the multi-agency integrated analytics hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One line per area; each module defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = ("nominal.engines.commands", "nominal.synth.commands")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nominal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nominal: the multi-agency integrated analytics hub."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()
