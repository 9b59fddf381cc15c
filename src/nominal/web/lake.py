"""A long-lived DuckDB connection on the current snapshot, shared by request threads and
replaced after a bounded number of uses.

Opening a connection on a snapshot makes a view for every table (about 50 ms of CPU,
more under load), so the server keeps one and hands each request a cursor on it. But a
DuckDB database keeps native memory from every query that reads a table made of many
Parquet files (``silver.identity`` is one file per delivery): about 2.4 KB per query
of the person view's record join, glibc heap that neither Python nor DuckDB's buffer
pool accounts for, given back only when the database is closed (measured in
docs/security.md, "Soak memory, by endpoint"). Under a sustained load of person views
that was the server's slow RSS creep. :class:`SnapshotConnection` therefore opens a
fresh connection after ``uses`` cursors (and when a run switches the snapshot) and
closes the old one once the last cursor taken from it is closed, so a request never
loses its cursor mid-query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

DEFAULT_USES = 500


@dataclass
class _Generation:
    snapshot_id: str
    con: duckdb.DuckDBPyConnection
    uses: int = 0
    active: int = 0
    retired: bool = False


class SnapshotConnection:
    """Cursors on one DuckDB connection per snapshot, renewed every ``uses`` cursors."""

    def __init__(
        self, open_connection: Callable[[Any], duckdb.DuckDBPyConnection], uses: int = DEFAULT_USES
    ) -> None:
        self._open = open_connection
        self.uses = uses
        self._lock = threading.Lock()
        self._current: _Generation | None = None
        self.opened = 0  # connections opened so far
        self.closed = 0  # connections closed so far

    def _retire(self, gen: _Generation) -> None:
        gen.retired = True
        if gen.active == 0:
            gen.con.close()
            self.closed += 1

    @contextmanager
    def cursor(self, snapshot: Any) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the connection for ``snapshot``, closed when the block ends."""
        with self._lock:
            gen = self._current
            if gen is None or gen.snapshot_id != snapshot.id or gen.uses >= self.uses:
                if gen is not None:
                    self._retire(gen)
                gen = self._current = _Generation(snapshot.id, self._open(snapshot))
                self.opened += 1
            gen.uses += 1
            gen.active += 1
            cur = gen.con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self._lock:
                gen.active -= 1
                if gen.retired and gen.active == 0:
                    gen.con.close()
                    self.closed += 1

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._retire(self._current)
                self._current = None


_shared_lock = threading.Lock()


def shared_connection(
    cache: dict[str, Any], key: str, open_connection: Callable[[Any], duckdb.DuckDBPyConnection]
) -> SnapshotConnection:
    """The process's :class:`SnapshotConnection` kept under ``key`` in the hub's cache,
    made on first use (the person view's and the cohorts' each have one)."""
    with _shared_lock:
        shared = cache.get(key)
        if shared is None:
            shared = cache[key] = SnapshotConnection(open_connection)
        return shared
