"""The Parquet lake: immutable data files, snapshot manifests and an atomic pointer.

Layout under ``home/lake``::

    bronze/<dataset>/<sha256>/<file name>   deliveries exactly as received (immutable)
    data/<layer>/<table>/<uuid>.parquet     immutable data files of silver and gold tables
    snapshots/<snapshot id>.json            one manifest per run: table -> data files
    CURRENT                                 the id of the snapshot readers use

A run builds on the current snapshot, writes new data files, writes its manifest and
finally replaces ``CURRENT`` with ``os.replace`` (atomic on POSIX). A reader resolves
``CURRENT`` once and reads only the files that manifest lists, so it never sees half
a run, and a run killed at any point leaves the last good snapshot untouched; its
orphaned files are removed by :meth:`Lake.vacuum`.

A table may also list **deletion files** (``deletes`` in the manifest): Parquet files
of ``(file, pos)``, a data file (relative to the lake) and a row position in it, the
rows no longer in the table. A run that changes a few rows of a large file writes
their positions instead of rewriting the file (``nominal link --incremental``); every
reader applies them (:func:`nominal.engines.duck.attach_snapshot`,
:meth:`Snapshot.read`, Spark's views), and :meth:`SnapshotWriter.replace` drops them
with the files they refer to.

Only one run writes at a time (an exclusive ``flock`` on ``lake/_lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: NumPy and PyArrow cost a link run 0.2 CPU-s
    import pyarrow as pa

MANIFEST_VERSION = 1


class LakeError(RuntimeError):
    """A lake operation could not be completed; the current snapshot is unchanged."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class TableEntry:
    files: tuple[str, ...]
    rows: int  # live rows: the files' rows less the deleted ones
    deletes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"files": list(self.files), "rows": self.rows}
        if self.deletes:
            out["deletes"] = list(self.deletes)
        return out


_rows_lock = threading.Lock()
_rows_con: list[Any] = []
# rows of files already counted, by path, size and modification time (data files are
# immutable once written: a link run counts each new file two or three times)
_rows_seen: dict[tuple[str, int, int], int] = {}


def note_rows(path: Path, rows: int) -> None:
    """Note the number of rows of a Parquet file just written (its writer knows it),
    so :func:`parquet_rows` need not read its footer."""
    stat = os.stat(path)
    with _rows_lock:
        if len(_rows_seen) > 10_000:
            _rows_seen.clear()
        _rows_seen[(str(path), stat.st_size, stat.st_mtime_ns)] = int(rows)


def parquet_rows(path: Path) -> int:
    """The number of rows of a Parquet file, from its footer (read by DuckDB, so a
    process that never handles Arrow data need not import PyArrow and NumPy)."""
    import duckdb

    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _rows_lock:
        if key in _rows_seen:
            return _rows_seen[key]
        if not _rows_con:
            _rows_con.append(duckdb.connect())
        found = (
            _rows_con[0]
            .execute("SELECT num_rows FROM parquet_file_metadata(?)", [str(path)])
            .fetchall()
        )
        if len(_rows_seen) > 10_000:
            _rows_seen.clear()
        _rows_seen[key] = int(found[0][0])
    return int(found[0][0])


def deleted_positions(lake_root: Path, deletes: list[Path]) -> dict[str, set[int]]:
    """Deleted row positions per data file (relative path) from deletion files."""
    import pyarrow.parquet as pq

    out: dict[str, set[int]] = {}
    for path in deletes:
        table = pq.read_table(path, columns=["file", "pos"])
        for file, pos in zip(
            table.column("file").to_pylist(), table.column("pos").to_pylist(), strict=True
        ):
            out.setdefault(file, set()).add(int(pos))
    return out


@dataclass(frozen=True)
class Snapshot:
    """One consistent version of every table in the lake."""

    lake_root: Path
    id: str
    parent: str | None
    created_at: str
    operation: str
    tables: dict[str, TableEntry]
    summary: dict[str, Any] = field(default_factory=dict)

    def has(self, table: str) -> bool:
        return table in self.tables

    def files(self, table: str) -> list[Path]:
        """Absolute paths of the table's data files (empty list if the table is absent)."""
        entry = self.tables.get(table)
        return [self.lake_root / f for f in entry.files] if entry else []

    def rows(self, table: str) -> int:
        entry = self.tables.get(table)
        return entry.rows if entry else 0

    def deletes(self, table: str) -> list[Path]:
        """Absolute paths of the table's deletion files (rows no longer in it)."""
        entry = self.tables.get(table)
        return [self.lake_root / f for f in entry.deletes] if entry else []

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """Read a whole table with PyArrow (small tables; use DuckDB for large ones)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.files(table)
        if not files:
            raise LakeError(f"table {table!r} is not in snapshot {self.id}")
        gone = deleted_positions(self.lake_root, self.deletes(table))
        parts = []
        for f in files:
            part = pq.read_table(f, columns=columns)
            drop = gone.get(str(f.relative_to(self.lake_root)))
            if drop:
                # one vectorised mask, not a Python test per row
                keep = np.ones(part.num_rows, dtype=bool)
                keep[np.fromiter(drop, dtype=np.int64, count=len(drop))] = False
                part = part.filter(pa.array(keep))
            parts.append(part)
        return pa.concat_tables(parts, promote_options="default")

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "id": self.id,
            "parent": self.parent,
            "created_at": self.created_at,
            "operation": self.operation,
            "tables": {name: entry.to_json() for name, entry in sorted(self.tables.items())},
            "summary": self.summary,
        }


class SnapshotWriter:
    """Builds the next snapshot from the current one; nothing is visible until commit."""

    def __init__(self, lake: Lake, base: Snapshot | None, operation: str) -> None:
        self.lake = lake
        self.base = base
        self.operation = operation
        self.tables: dict[str, TableEntry] = dict(base.tables) if base else {}
        self.summary: dict[str, Any] = {}
        self._new_files: list[Path] = []
        self.committed: Snapshot | None = None

    # -- data files ---------------------------------------------------------------
    def new_file(self, table: str) -> Path:
        """A fresh path for a data file of ``table`` (layer.name), for DuckDB's COPY."""
        layer, _, name = table.partition(".")
        if not name:
            raise LakeError(f"table name {table!r} must be <layer>.<name>")
        folder = self.lake.root / "data" / layer / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.parquet"
        self._new_files.append(path)
        return path

    def write_arrow(self, table: str, data: pa.Table) -> Path:
        import pyarrow.parquet as pq

        path = self.new_file(table)
        pq.write_table(data, path, compression="zstd")
        return path

    def _entry(self, paths: list[Path], deletes: list[Path] | None = None) -> TableEntry:
        rows = 0
        rel: list[str] = []
        for path in paths:
            if not path.exists():
                raise LakeError(f"data file {path} was not written")
            rows += parquet_rows(path)
            rel.append(str(path.relative_to(self.lake.root)))
        gone: list[str] = []
        for path in deletes or []:
            if not path.exists():
                raise LakeError(f"deletion file {path} was not written")
            rows -= parquet_rows(path)
            gone.append(str(path.relative_to(self.lake.root)))
        return TableEntry(tuple(rel), rows, tuple(gone))

    # -- table operations ----------------------------------------------------------
    def replace(self, table: str, paths: list[Path], deletes: list[Path] | None = None) -> None:
        """The table becomes exactly these files (less the rows ``deletes`` lists:
        deletion files of ``(file, pos)`` naming only these files, each row once)."""
        self.tables[table] = self._entry(paths, deletes or [])

    def append(self, table: str, paths: list[Path]) -> None:
        """Add files to the table, keeping the files it already has."""
        new = self._entry(paths)
        old = self.tables.get(table)
        if old is None:
            self.tables[table] = new
        else:
            self.tables[table] = TableEntry(old.files + new.files, old.rows + new.rows, old.deletes)

    def drop(self, table: str) -> None:
        self.tables.pop(table, None)

    def files(self, table: str) -> list[Path]:
        entry = self.tables.get(table)
        return [self.lake.root / f for f in entry.files] if entry else []

    def deletes(self, table: str) -> list[Path]:
        entry = self.tables.get(table)
        return [self.lake.root / f for f in entry.deletes] if entry else []

    def rows(self, table: str) -> int:
        entry = self.tables.get(table)
        return entry.rows if entry else 0

    def commit(self, summary: dict[str, Any] | None = None) -> Snapshot:
        # every new file on disk before the manifest names it; the fsyncs run side by
        # side (each waits on the disk, not the CPU: one after another, a run writing
        # thirty small files waited for thirty flushes in turn)
        written = [path for path in self._new_files if path.exists()]
        if len(written) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(written))) as pool:
                list(pool.map(_fsync_file, written))
        elif written:
            _fsync_file(written[0])
        stamp = datetime.now(UTC)
        snap = Snapshot(
            lake_root=self.lake.root,
            id=f"{stamp:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}",
            parent=self.base.id if self.base else None,
            created_at=stamp.isoformat(),
            operation=self.operation,
            tables=dict(self.tables),
            summary={**self.summary, **(summary or {})},
        )
        _atomic_write_text(
            self.lake.snapshots_dir / f"{snap.id}.json", json.dumps(snap.to_json(), indent=1)
        )
        _atomic_write_text(self.lake.pointer, snap.id + "\n")
        self.committed = snap
        return snap


class Lake:
    """The lake of one hub home."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.snapshots_dir = self.root / "snapshots"
        self.pointer = self.root / "CURRENT"
        self.bronze = self.root / "bronze"
        for folder in (self.root, self.snapshots_dir, self.bronze, self.root / "data"):
            folder.mkdir(parents=True, exist_ok=True)

    # -- reading ----------------------------------------------------------------------
    def current(self) -> Snapshot | None:
        if not self.pointer.exists():
            return None
        return self.snapshot(self.pointer.read_text().strip())

    def require_current(self) -> Snapshot:
        snap = self.current()
        if snap is None:
            raise LakeError(f"the lake at {self.root} is empty: run `nominal ingest` first")
        return snap

    def snapshot(self, snapshot_id: str) -> Snapshot:
        path = self.snapshots_dir / f"{snapshot_id}.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise LakeError(f"snapshot {snapshot_id} not found in {self.snapshots_dir}") from exc
        return Snapshot(
            lake_root=self.root,
            id=raw["id"],
            parent=raw.get("parent"),
            created_at=raw["created_at"],
            operation=raw["operation"],
            tables={
                name: TableEntry(
                    tuple(entry["files"]), int(entry["rows"]), tuple(entry.get("deletes", ()))
                )
                for name, entry in raw["tables"].items()
            },
            summary=raw.get("summary", {}),
        )

    def history(self) -> list[Snapshot]:
        """Snapshots from the current one back through its parents (newest first).

        The chain ends at the oldest snapshot still kept: vacuum, erasure and retention
        remove older manifests on purpose (erased data must not stay reachable).
        """
        out: list[Snapshot] = []
        snap = self.current()
        while snap is not None:
            out.append(snap)
            if not snap.parent or not (self.snapshots_dir / f"{snap.parent}.json").exists():
                break
            snap = self.snapshot(snap.parent)
        return out

    # -- writing ----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.root / "_lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def transaction(self, operation: str) -> Iterator[SnapshotWriter]:
        """Build a new snapshot on top of the current one.

        The snapshot is committed only if the block calls ``writer.commit()``; if the
        block raises, its new files are removed and the current snapshot stays.
        """
        with self.lock():
            writer = SnapshotWriter(self, self.current(), operation)
            try:
                yield writer
            except BaseException:
                if writer.committed is None:
                    for path in writer._new_files:
                        path.unlink(missing_ok=True)
                raise

    def vacuum(self, keep_last: int = 5) -> dict[str, int]:
        """Delete snapshots older than the last ``keep_last`` and unreferenced data files.

        Erasure and retention call this with ``keep_last=1`` so that removed personal
        data does not survive in an older snapshot.
        """
        with self.lock():
            keep = self.history()[: max(1, keep_last)]
            keep_ids = {s.id for s in keep}
            referenced = {
                f for s in keep for entry in s.tables.values() for f in entry.files + entry.deletes
            }
            removed_snapshots = 0
            for manifest in self.snapshots_dir.glob("*.json"):
                if manifest.stem not in keep_ids:
                    manifest.unlink()
                    removed_snapshots += 1
            removed_files = 0
            data_root = self.root / "data"
            for path in data_root.rglob("*.parquet"):
                if str(path.relative_to(self.root)) not in referenced:
                    path.unlink()
                    removed_files += 1
            for tmp in self.root.rglob(".*.tmp"):
                tmp.unlink()
            return {"snapshots_removed": removed_snapshots, "files_removed": removed_files}

    def remove_bronze(self, relative: str) -> None:
        """Remove one bronze delivery (erasure or retention of a whole delivery)."""
        target = (self.root / relative).resolve()
        if self.bronze.resolve() not in target.parents:
            raise LakeError(f"{relative} is not inside the bronze layer")
        shutil.rmtree(target.parent if target.is_file() else target, ignore_errors=True)
