"""The ``nominal`` command line (Typer).

Each area of the hub registers its own commands from ``<area>/commands.py`` with a
``register(app)`` function, so this file only lists the areas. Commands import their
heavy dependencies inside the command function, which keeps ``nominal --help`` fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import typer

from nominal import __version__

app = typer.Typer(
    name="nominal",
    help="nominal: the multi-agency integrated analytics hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _area_modules(leaf: str) -> tuple[str, ...]:
    """``nominal.<area>.<leaf>`` for every area package that has such a module.

    Discovery (rather than a hand-kept list) lets each area add its commands without
    touching this file; sorted so the help text has a stable order.
    """
    import nominal

    found = []
    for area in pkgutil.iter_modules(nominal.__path__):
        if area.ispkg and importlib.util.find_spec(f"nominal.{area.name}.{leaf}") is not None:
            found.append(f"nominal.{area.name}.{leaf}")
    return tuple(sorted(found))


# Each module defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = _area_modules("commands")


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


if __name__ == "__main__":
    main()
