"""A time limit on parsing one delivery: a hostile file fails clearly instead of hanging ingest.

A few hundred bytes can keep a parser busy for hours: an XLSX sheet whose last cell is
``XFD1048576`` makes openpyxl yield a billion empty cells, a PDF can nest its page tree
without end. Every parse of a delivery therefore runs under ``NOMINAL_PARSE_SECONDS``
(default 600 s; ``0`` turns the limit off):

* **Python parsers** (openpyxl, the FHIR reader, pypdf, python-docx) run in a forked
  child process (:func:`run_limited`) that is killed when the time is up -- a thread
  cannot be stopped, and C code inside a parser (zlib, lxml) never returns to Python
  to be interrupted. A fork costs milliseconds and inherits the settings and imports
  (a ``forkserver`` or ``spawn`` child would re-import the main module: ~1 s a file).
  The child only parses and sends back plain Python values; it never touches DuckDB,
  whose threads in the parent make anything but parsing after a fork unsafe;
* **DuckDB readers** (CSV, NDJSON, Parquet) run in-process and are stopped with
  ``interrupt()`` from a timer (:func:`interrupt_after`).

Either way the caller gets :class:`ParseTimeout` (:class:`ParseFailed` if the child
died), whose message names the file and the limit; ingest turns it into a failed
delivery (the bytes stay in bronze, the other deliveries go on) or, for a document, a
quarantine row.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import duckdb

PARSE_SECONDS_ENV = "NOMINAL_PARSE_SECONDS"
DEFAULT_PARSE_SECONDS = 600.0

T = TypeVar("T")


class ParseFailed(RuntimeError):
    """The parser process ended without an answer (killed, out of memory, crashed)."""


class ParseTimeout(ParseFailed):
    """Parsing one file took longer than the limit; the message names the file."""


def parse_seconds() -> float:
    """The per-file parse limit in seconds (0: no limit)."""
    raw = os.environ.get(PARSE_SECONDS_ENV)
    if not raw:
        return DEFAULT_PARSE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{PARSE_SECONDS_ENV}={raw!r} is not a number of seconds") from None
    return max(value, 0.0)


def timeout_message(path: Path, seconds: float) -> str:
    return (
        f"{path.name}: parsing took longer than the limit of {seconds:g} s "
        f"({PARSE_SECONDS_ENV}); the file was stopped, not read"
    )


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:
        result = ("error", exc)
    try:
        conn.send(result)
    except Exception as exc:  # an unpicklable result or exception
        conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


def run_limited(fn: Callable[..., T], path: Path, *args: Any, seconds: float | None = None) -> T:
    """``fn(path, *args)`` in a child process, killed after ``seconds``.

    ``fn`` must be a module-level function and its result picklable. An exception in
    the child is raised here; running out of time raises :class:`ParseTimeout`. With
    no limit (``seconds`` or ``NOMINAL_PARSE_SECONDS`` 0) ``fn`` runs in this process.
    """
    limit = parse_seconds() if seconds is None else seconds
    if limit <= 0 or multiprocessing.current_process().daemon:
        # (a daemonic process may not start children: there, no limit can be enforced)
        return fn(path, *args)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, (path, *args)), daemon=True)
    # The forked child inherits every object of this process, DuckDB connections and
    # other native handles with threads that do not exist in the child among them; a
    # garbage collection there that finalised one crashed the child (segfault). Frozen
    # objects are never collected, so the child only ever collects what it made.
    gc.freeze()
    try:
        proc.start()
    finally:
        gc.unfreeze()
    child.close()  # the child's end lives in the child now: EOF if it dies without a word
    try:
        if not parent.poll(limit):
            raise ParseTimeout(timeout_message(path, limit))
        try:
            status, value = parent.recv()
        except EOFError:
            proc.join(5)
            raise ParseFailed(
                f"{path.name}: the parser process ended without an answer "
                f"(exit code {proc.exitcode})"
            ) from None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if status == "error":
        raise value
    return value


@contextmanager
def interrupt_after(
    con: duckdb.DuckDBPyConnection, path: Path, seconds: float | None = None
) -> Iterator[None]:
    """Interrupt DuckDB queries on ``con`` still running after ``seconds``.

    Raises :class:`ParseTimeout` (naming ``path``) in place of DuckDB's interrupt error.
    """
    limit = parse_seconds() if seconds is None else seconds
    if limit <= 0:
        yield
        return
    fired = threading.Event()
    finished = threading.Event()

    def stop() -> None:
        # An interrupt landing between two queries is lost, so keep interrupting until
        # the block is left; the block then fails with ParseTimeout whatever it raised.
        fired.set()
        while not finished.is_set():
            con.interrupt()
            finished.wait(0.05)

    timer = threading.Timer(limit, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
        if fired.is_set():  # it finished, but after the limit
            raise ParseTimeout(timeout_message(path, limit))
    except ParseTimeout:
        raise
    except Exception:
        # The interrupt surfaces as DuckDB's InterruptException or as whatever a reader
        # made of it (a ReadError): after the timer fired, it is the time limit.
        if fired.is_set():
            raise ParseTimeout(timeout_message(path, limit)) from None
        raise
    finally:
        finished.set()
        timer.cancel()
