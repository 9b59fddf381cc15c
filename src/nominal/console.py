"""Command-line output: Rich progress for people, one JSON summary line for machines.

Every command takes ``--json``. Then progress and messages go to stderr and the last
line on stdout is one JSON object, so scripts can run ``nominal ... --json | tail -1``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_default, sort_keys=False)


class Output:
    """What a command prints: human text and progress, or a JSON summary."""

    def __init__(self, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        # With --json, stdout carries only the summary; everything else goes to stderr.
        self.console = Console(stderr=json_mode, quiet=quiet, highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def print(self, *args: Any, **kwargs: Any) -> None:
        self.console.print(*args, **kwargs)

    @contextmanager
    def progress(self, transient: bool = False) -> Iterator[Progress]:
        """A Rich progress bar (on stderr in --json mode)."""
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=transient,
        )
        with progress:
            yield progress

    def result(self, summary: Any) -> None:
        """Print the machine-readable summary (last line of stdout) in --json mode."""
        if self.json_mode:
            sys.stdout.write(to_json(summary) + "\n")
            sys.stdout.flush()

    def fail(self, message: str, code: int = 1, **details: Any) -> NoReturn:
        """Stop with a clear message (never a traceback) and a non-zero exit code."""
        # soft_wrap: a file path or field name in the message stays on one line, so it can be
        # copied and searched for, whatever the terminal's width.
        self.err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if self.json_mode:
            sys.stdout.write(to_json({"ok": False, "error": message, **details}) + "\n")
            sys.stdout.flush()
        raise typer.Exit(code)
