"""Readers: turn one delivery file into a DuckDB relation of its source columns.

A reader is ``fn(con, path, contract, work_dir) -> str``: it returns SQL for a
relation (``read_csv(...)``, a registered Arrow table, ...) whose columns are the
file's own column names, rows in file order. Readers do not validate values (the
standardisation SQL does that for every format alike); they only refuse files that
cannot be read at all, with a :class:`ReadError` naming the file and, where known, the
row and field. New formats plug in with :func:`register_reader` (FHIR bundles, say)
without touching the pipeline.
"""

from __future__ import annotations

import codecs
import os
import re
import uuid
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path

import duckdb
import pyarrow as pa

from nominal.contracts.model import Contract
from nominal.engines.duck import sql_literal

Reader = Callable[[duckdb.DuckDBPyConnection, Path, Contract, Path], str]

# Encodings DuckDB's CSV reader decodes itself; anything else is transcoded first.
_DUCKDB_ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "latin-1": "latin-1",
    "utf-16": "utf-16",
}


class ReadError(ValueError):
    """A delivery cannot be read; the message names the file (and row/field if known)."""


# XLSX and DOCX are zip archives: a few kilobytes can declare gigabytes of XML (a zip
# bomb). Python's zipfile never inflates a member past its declared size (it fails the
# CRC instead), so checking the declared sizes before parsing bounds the work.
MAX_UNZIPPED_ENV = "NOMINAL_MAX_UNZIPPED_BYTES"
DEFAULT_MAX_UNZIPPED = 1 << 30
MAX_ZIP_RATIO = 500  # expansion allowed for a member of more than 1 MiB
MAX_ZIP_MEMBERS = 10_000


def check_zip(path: Path) -> None:
    """Refuse an archive that would expand beyond the limits, before any parser opens it."""
    limit = int(os.environ.get(MAX_UNZIPPED_ENV) or DEFAULT_MAX_UNZIPPED)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except Exception as exc:  # BadZipFile, NotImplementedError (zip version), OSError...
        raise ReadError(f"{path.name}: not a readable zip archive ({exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise ReadError(
            f"{path.name}: {len(members):,} archive members (more than {MAX_ZIP_MEMBERS:,})"
        )
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > 1 << 20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise ReadError(
                f"{path.name}: archive member {info.filename!r} expands "
                f"{info.file_size // max(info.compress_size, 1):,}x (more than {MAX_ZIP_RATIO}x: "
                "a zip bomb?)"
            )
    if total > limit:
        raise ReadError(
            f"{path.name}: the archive expands to {total:,} bytes (more than the limit of "
            f"{limit:,}, {MAX_UNZIPPED_ENV})"
        )


_READERS: dict[str, Reader] = {}
# Column parsers of the readers that parse in Python (openpyxl, json): ingest runs
# them in a child process it can kill at the parse time limit (nominal.ingest.limits).
Columns = dict[str, list[str | None]]
Parser = Callable[[Path, Contract], Columns]
_PARSERS: dict[str, Parser] = {}


def register_reader(format_type: str, fn: Reader, *, parse: Parser | None = None) -> None:
    """Use ``fn`` for deliveries whose contract says ``format: {type: format_type}``.

    A reader that parses in Python also gives ``parse(path, contract)``, returning the
    file's columns as text (what ``fn`` registers as a view): ingest then runs it in a
    child process under the parse time limit. DuckDB readers are interrupted in-process.
    """
    _READERS[format_type] = fn
    if parse is not None:
        _PARSERS[format_type] = parse
    else:
        _PARSERS.pop(format_type, None)


def is_isolated(format_type: str) -> bool:
    return format_type in _PARSERS


def register_columns(con: duckdb.DuckDBPyConnection, prefix: str, columns: Columns) -> str:
    """Register text columns as a view; its name."""
    table = pa.table({n: pa.array(c, pa.string()) for n, c in columns.items()})
    view = f"{prefix}_{uuid.uuid4().hex}"
    con.register(view, table)
    return view


def read_isolated(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, seconds: float | None = None
) -> str:
    """Parse ``path`` in a child process under the parse time limit; a view of its columns."""
    from nominal.ingest.limits import ParseFailed, run_limited

    parse = _PARSERS[contract.format.type]
    try:
        columns = run_limited(parse, path, contract, seconds=seconds)
    except ParseFailed as exc:
        raise ReadError(str(exc)) from None
    return register_columns(con, contract.format.type, columns)


def reader_for(format_type: str) -> Reader:
    try:
        return _READERS[format_type]
    except KeyError:
        raise ReadError(f"no reader for format {format_type!r}") from None


def _canonical_encoding(name: str) -> str:
    return codecs.lookup(name).name


def _transcode(path: Path, encoding: str, work_dir: Path) -> Path:
    """Re-encode a text file as UTF-8 in the work folder, streaming, naming the bad line."""
    out = work_dir / f"{uuid.uuid4().hex}.utf8"
    with (
        open(path, encoding=encoding, newline="") as src,
        open(out, "w", encoding="utf-8", newline="") as dst,
    ):
        line_no = 0
        try:
            for line_no, line in enumerate(src, start=1):  # noqa: B007
                dst.write(line)
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"{path.name}: line {line_no + 1}: not valid {encoding} text ({exc.reason})"
            ) from None
    return out


# Encodings in which a file of ASCII bytes decodes to exactly those characters.
_ASCII_COMPATIBLE = {"utf-8", "utf-8-sig", "iso8859-1", "cp1252", "ascii"}


class TextScan:
    """What the bronze copy learns about a CSV delivery's bytes as they pass through.

    A value read from a CSV file can only begin or end with a space where the file has
    a space next to a delimiter, a quote or a line end (or at either end of the file),
    and can only hold a non-ASCII space if the file has a non-ASCII byte. A file with
    neither (``clean``) has no value that trimming changes, so standardisation skips
    the trim test for every value (:func:`nominal.ingest.standardise.text_sql` with
    ``clean=True``); the result is the same. Any doubt (a space beside a delimiter
    inside a quoted value, say) only means the usual per-value test runs.

    The space test is the C kernel's (``memchr`` for spaces, then their neighbours):
    about 0.03 CPU-s per 200 MiB, where the per-value trim test costs about 0.4 per
    million rows of 19 columns. Without the kernel there is no scan (``for_contract``
    gives None) and every value is tested as before.
    """

    def __init__(self, boundary: bytes) -> None:
        import numpy as np

        self._table = np.zeros(256, dtype=np.uint8)
        for b in boundary:
            self._table[b] = 1
        self._last = ord("\n")  # the start of the file is a field boundary
        self._clean = True

    @classmethod
    def for_contract(cls, contract: Contract) -> TextScan | None:
        """A scan for a CSV delivery of this contract, or None where it cannot help."""
        from nominal.ingest import hmac_native

        fmt = contract.format
        if fmt.type != "csv" or _READERS.get("csv") is not read_csv:
            return None
        if _canonical_encoding(fmt.encoding) not in _ASCII_COMPATIBLE:
            return None
        if not (fmt.delimiter + fmt.quote).isascii() or not hmac_native.available():
            return None
        return cls((fmt.delimiter + fmt.quote + "\r\n").encode("ascii"))

    def update(self, chunk: bytes) -> None:
        """The next bytes of the file, in order."""
        from nominal.ingest import hmac_native

        if not self._clean or not chunk:
            return
        self._clean = (
            chunk.isascii()
            and not (self._last == 0x20 and self._table[chunk[0]])
            and not hmac_native.space_at_boundary(chunk, self._table, self._last)
        )
        self._last = chunk[-1]

    @property
    def clean(self) -> bool:
        """After the last chunk: no value of the file begins or ends with a space."""
        return self._clean and self._last != 0x20  # a space at the very end ends a value


_LINE = re.compile(r"[Ll]ine:? ?(\d+)")
_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def duck_error(path: Path, exc: Exception) -> ReadError:
    """DuckDB's reader error as one line naming the file and line, without row contents.

    (DuckDB quotes the offending line; that is personal data, so it is left out.)
    """
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    detail = re.sub(r"^[A-Za-z ]+Error: ", "", first)
    found = _LINE.search(text)
    columns = _COLUMNS.search(text)
    if columns:
        detail = f"expected {columns.group(1)} columns, found {columns.group(2)}"
    elif "unicode" in text.lower():
        detail = "not valid text in the contract's encoding"
    if found:
        detail = re.sub(r"CSV Error on Line: \d+:? ?", "", detail) or detail
        return ReadError(f"{path.name}: line {found.group(1)}: {detail}")
    return ReadError(f"{path.name}: {detail}")


_duck_error = duck_error


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise ReadError(f"{path.name}: the file is empty")


# DuckDB's CSV read buffer. Ingest keeps file order (a quarantined row is named by its
# row number), and with the default buffer (32 MiB) the order-preserving insert of a
# parallel CSV scan costs about a third more CPU than an unordered one; with 64 MiB
# buffers most of that goes (1,000,000 rows of 19 columns into a table: 1.11-1.14
# CPU-s against 1.34-1.43, two threads, load 9-13; the staging statement 3.7-3.9
# against 4.1-4.3). The line length limit (max_line_size, 2 MB) is unchanged.
CSV_BUFFER_BYTES = 64 << 20


def read_csv(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, work_dir: Path) -> str:
    _check_not_empty(path)
    fmt = contract.format
    enc = _canonical_encoding(fmt.encoding)
    duck_enc = {_canonical_encoding(k): v for k, v in _DUCKDB_ENCODINGS.items()}.get(enc)
    source = path
    if duck_enc is None:
        source, duck_enc = _transcode(path, fmt.encoding, work_dir), "utf-8"
    with open(source, "rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head and duck_enc != "utf-16":
        raise ReadError(f"{path.name}: line 1: binary data, not {fmt.encoding} text")
    header = _csv_header(path, source, duck_enc, fmt.delimiter, fmt.quote) if fmt.header else None
    if header is not None:
        # The header names the columns; DuckDB's sniffer is not asked, so a ragged row
        # is an error on its own line rather than a reason to guess another layout.
        cols = ", ".join(f"{sql_literal(name)}: 'VARCHAR'" for name in header)
        layout = f"header = true, auto_detect = false, columns = {{{cols}}}"
    else:
        layout = "header = false, all_varchar = true"
    sql = (
        f"read_csv({sql_literal(str(source))}, delim = {sql_literal(fmt.delimiter)}, "
        f"quote = {sql_literal(fmt.quote)}, escape = {sql_literal(fmt.quote)}, {layout}, "
        f"encoding = {sql_literal(duck_enc)}, strict_mode = true, null_padding = false, "
        f"buffer_size = {CSV_BUFFER_BYTES})"
    )
    try:
        con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
    except duckdb.Error as exc:
        raise _duck_error(path, exc) from None
    return sql


def _csv_header(path: Path, source: Path, encoding: str, delimiter: str, quote: str) -> list[str]:
    import csv

    py_encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        if encoding == "utf-16":
            with open(source, encoding="utf-16", newline="") as text:
                first = text.readline()
        else:  # the first line's bytes only, so a bad byte further down is named there
            with open(source, "rb") as handle:
                first = handle.readline().decode(py_encoding)
        header = next(csv.reader([first], delimiter=delimiter, quotechar=quote), None)
    except UnicodeDecodeError as exc:
        raise ReadError(f"{path.name}: line 1: not valid {encoding} text ({exc.reason})") from None
    except csv.Error as exc:
        raise ReadError(f"{path.name}: line 1 (header): {exc}") from None
    if not header or all(not h.strip() for h in header):
        raise ReadError(f"{path.name}: line 1 (header): no column names")
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ReadError(f"{path.name}: line 1 (header): column {name!r} appears twice")
        seen.add(name)
    return names


def read_ndjson(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, work_dir: Path
) -> str:
    _check_not_empty(path)
    source = path
    if _canonical_encoding(contract.format.encoding) not in ("utf-8",):
        source = _transcode(path, contract.format.encoding, work_dir)
    sql = (
        f"read_json({sql_literal(str(source))}, format = 'newline_delimited', "
        "records = true, sample_size = -1, union_by_name = true)"
    )
    try:
        con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
    except duckdb.Error as exc:
        raise _duck_error(path, exc) from None
    return sql


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_columns(path: Path, contract: Contract) -> Columns:
    """The first (or the contract's) sheet's columns as text, dates ISO (openpyxl, streaming)."""
    _check_not_empty(path)
    from openpyxl import load_workbook

    check_zip(path)

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl, zipfile, zlib and XML errors alike
        raise ReadError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    row_no = 0
    try:
        sheet_name = contract.format.sheet
        if sheet_name is not None and sheet_name not in book.sheetnames:
            raise ReadError(f"{path.name}: no sheet named {sheet_name!r} (has {book.sheetnames})")
        sheet = book[sheet_name] if sheet_name else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ReadError(f"{path.name}: the sheet is empty")
        names = [
            str(h).strip() if h is not None else f"column{i + 1}" for i, h in enumerate(header)
        ]
        columns: list[list[str | None]] = [[] for _ in names]
        for row_no, row in enumerate(rows, start=1):
            if row is None or all(v is None for v in row):
                continue
            if len(row) > len(names) and any(v is not None for v in row[len(names) :]):
                raise ReadError(f"{path.name}: row {row_no}: more cells than header columns")
            for i in range(len(names)):
                columns[i].append(_cell_text(row[i]) if i < len(row) else None)
    except ReadError:
        raise
    except Exception as exc:  # a corrupt sheet part: zlib, XML or openpyxl errors
        raise ReadError(
            f"{path.name}: row {row_no + 1}: not a readable XLSX sheet "
            f"({type(exc).__name__}: {exc})"
        ) from None
    finally:
        book.close()
    return dict(zip(names, columns, strict=True))


def read_xlsx(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, work_dir: Path
) -> str:
    """XLSX in this process (ingest itself parses in a child: :func:`read_isolated`)."""
    return register_columns(con, "xlsx", xlsx_columns(path, contract))


def read_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, work_dir: Path
) -> str:
    _check_not_empty(path)
    sql = f"read_parquet({sql_literal(str(path))})"
    try:
        con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
    except duckdb.Error as exc:
        raise _duck_error(path, exc) from None
    return sql


register_reader("csv", read_csv)
register_reader("ndjson", read_ndjson)
register_reader("xlsx", read_xlsx, parse=xlsx_columns)
register_reader("parquet", read_parquet)
