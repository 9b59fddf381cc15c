"""``nominal backup create|restore``: the lake and the control plane, consistently.

A backup is one folder::

    nominal-backup-<UTC time>/
      manifest.json        what is in it, how the control plane was copied, checksums
      lake/                CURRENT, the snapshot manifests, every data file the current
                           snapshot lists, and bronze (the deliveries as received)
      keys/ contracts/ models/   the pseudonymisation and audit-seal keys, feed
                           contracts, trained models (without the keys a restored lake
                           cannot be linked to new deliveries, nor the audit chain checked)
      control/             the control plane (one of the methods below)

The lake's writers are held off (its lock) while the snapshot pointer, manifests and
files are copied, so the copy is one consistent snapshot. Data files are immutable,
so they are hard-linked when the backup is on the same file system (instant, no
extra space until the lake's copy is vacuumed) and copied otherwise.

The control plane is copied with:

* **SQLite**: the online backup API (``sqlite3.Connection.backup``), a consistent copy
  while the hub keeps running (``control/control.db``);
* **PostgreSQL**: ``pg_dump`` (plain SQL, ``--clean --if-exists``; restored with
  ``psql``) when ``pg_dump`` is on the PATH (``control/control.sql``); otherwise a
  SQL-level copy of every table of the hub's models as JSON lines
  (``control/tables/*.jsonl``; restored by migrating an empty schema and inserting
  the rows in foreign-key order). The manifest says which was used.

The backup holds personal data and the keys: keep it encrypted at rest, with the
same access controls as the hub itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from nominal import __version__
from nominal.config import Home
from nominal.engines.lake import Lake

FORMAT_VERSION = 1
HOME_FOLDERS = ("keys", "contracts", "models")


class BackupError(RuntimeError):
    """A backup or restore could not be completed; the message says why."""


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_lake(lake: Lake, target: Path) -> dict[str, Any]:
    """Copy the current snapshot (and bronze) under the lake's lock."""
    target.mkdir(parents=True)
    with lake.lock():
        snap = lake.current()
        files: list[str] = []
        if snap is not None:
            shutil.copy2(lake.pointer, target / "CURRENT")
            (target / "snapshots").mkdir()
            shutil.copy2(lake.snapshots_dir / f"{snap.id}.json", target / "snapshots")
            for entry in snap.tables.values():
                # deletion files too: without them deleted rows would come back
                for rel in entry.files + entry.deletes:
                    _link_or_copy(lake.root / rel, target / rel)
                    files.append(rel)
        bronze = 0
        if lake.bronze.is_dir():
            for path in lake.bronze.rglob("*"):
                if path.is_file():
                    _link_or_copy(path, target / path.relative_to(lake.root))
                    bronze += 1
    return {
        "snapshot": snap.id if snap else None,
        "tables": {n: e.rows for n, e in snap.tables.items()} if snap else {},
        "data_files": len(files),
        "bronze_files": bronze,
    }


# -- control plane --------------------------------------------------------------------
def _sqlite_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: not a SQLite file")
    return Path(database)


def _sqlite_copy(src: Path, dst: Path) -> None:
    """SQLite's online backup API: consistent while other connections write."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


def _pg_args(url: str) -> tuple[list[str], dict[str, str], str | None]:
    """libpq connection arguments, environment and schema (from ``search_path``) of a URL."""
    u = sa.engine.make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-d", u.database or "postgres"]
    if u.username:
        args += ["-U", u.username]
    env = {**os.environ}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    schema = None
    options = u.query.get("options")
    text = options if isinstance(options, str) else (options[0] if options else "")
    if "search_path=" in text:
        schema = text.split("search_path=", 1)[1].split()[0].split(",")[0]
    return args, env, schema


def _pg_dump(url: str, target: Path) -> None:
    args, env, schema = _pg_args(url)
    cmd = [
        "pg_dump",
        *args,
        "--format=plain",
        "--no-owner",
        "--no-privileges",
        "--clean",
        "--if-exists",
        "-f",
        str(target),
    ]
    if schema:
        cmd += ["--schema", schema]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603  (fixed argv, no shell)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")


def _psql_restore(url: str, source: Path) -> None:
    args, env, _schema = _pg_args(url)
    cmd = ["psql", *args, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(source)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603  (fixed argv, no shell)
    if done.returncode != 0:
        raise BackupError(f"psql restore failed: {done.stderr.strip()[:500]}")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _decode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, sa.Date):
        return date.fromisoformat(value)
    if isinstance(kind, sa.LargeBinary):
        return base64.b64decode(value)
    return value


def _sql_copy_out(url: str, folder: Path) -> dict[str, int]:
    from nominal.db import import_models, make_engine

    metadata = import_models()
    folder.mkdir(parents=True)
    engine = make_engine(url)
    counts: dict[str, int] = {}
    try:
        # One REPEATABLE READ transaction: every table as of the same moment.
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as con:
            for table in metadata.sorted_tables:
                n = 0
                with open(folder / f"{table.name}.jsonl", "w", encoding="utf-8") as out:
                    for row in con.execute(sa.select(table)).mappings():
                        out.write(json.dumps({k: _encode(v) for k, v in row.items()}) + "\n")
                        n += 1
                counts[table.name] = n
    finally:
        engine.dispose()
    return counts


def _sql_copy_in(url: str, folder: Path) -> dict[str, int]:
    from nominal.db import import_models, make_engine, upgrade

    engine = make_engine(url)
    existing = sa.inspect(engine).get_table_names()
    engine.dispose()
    if existing:
        # The audit log refuses deletes (append-only triggers), and rows of a half-restored
        # control plane would mix with live ones: a SQL-level restore starts from nothing.
        raise BackupError(
            f"a sql-copy restore needs an empty database or schema; {url.split('@')[-1]} has "
            f"{len(existing)} tables: create a new one and point NOMINAL_DATABASE_URL at it"
        )
    upgrade(url)
    metadata = import_models()
    engine = make_engine(url)
    counts: dict[str, int] = {}
    try:
        with engine.begin() as con:
            # A table a migration seeds (the policy version counter) is emptied and loaded
            # last: the triggers that bump the counter fire while the other tables load,
            # and the restored counter must be the one backed up.
            tables = list(metadata.sorted_tables)
            seeded = [
                t for t in tables if con.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            ]
            for table in seeded:
                con.execute(table.delete())
            for table in [t for t in tables if t not in seeded] + seeded:
                path = folder / f"{table.name}.jsonl"
                if not path.exists():
                    continue
                rows = []
                with open(path, encoding="utf-8") as handle:
                    for line in handle:
                        raw = json.loads(line)
                        rows.append({c.name: _decode(c, raw.get(c.name)) for c in table.columns})
                for start in range(0, len(rows), 1000):
                    con.execute(table.insert(), rows[start : start + 1000])
                counts[table.name] = len(rows)
                if con.dialect.name == "postgresql":
                    _reset_sequences(con, table)
    finally:
        engine.dispose()
    return counts


def _reset_sequences(con: sa.Connection, table: sa.Table) -> None:
    for column in table.primary_key.columns:
        if isinstance(column.type, sa.Integer) and column.autoincrement in (True, "auto"):
            seq = con.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            ).scalar()
            if seq:
                con.execute(
                    sa.text(
                        f'SELECT setval(:s, coalesce((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, false)'
                    ),
                    {"s": seq},
                )


def create_backup(home: Home, destination: Path, method: str | None = None) -> dict[str, Any]:
    """Write a backup folder under ``destination``; returns its manifest."""
    stamp = datetime.now(UTC)
    target = Path(destination) / f"nominal-backup-{stamp:%Y%m%dT%H%M%SZ}"
    if target.exists():
        raise BackupError(f"{target} already exists")
    target.mkdir(parents=True, mode=0o700)
    lake = _copy_lake(Lake(home.ensure().lake), target / "lake")
    for name in HOME_FOLDERS:
        src = home.root / name
        if src.is_dir():
            shutil.copytree(src, target / name)
    url = home.database_url
    control = target / "control"
    control.mkdir()
    detail: dict[str, Any] = {}
    if url.startswith("sqlite"):
        src_db = _sqlite_path(url)
        if not src_db.exists():
            raise BackupError(f"the control plane {src_db} does not exist")
        _sqlite_copy(src_db, control / "control.db")
        chosen = "sqlite-backup-api"
    else:
        chosen = method or ("pg_dump" if shutil.which("pg_dump") else "sql-copy")
        if chosen == "pg_dump":
            _pg_dump(url, control / "control.sql")
        elif chosen == "sql-copy":
            detail["rows"] = _sql_copy_out(url, control / "tables")
        else:
            raise BackupError(f"unknown method {chosen!r}: pg_dump or sql-copy")
    checksums = {
        str(p.relative_to(target)): _sha256(p)
        for p in sorted(target.rglob("*"))
        if p.is_file() and p.parts[len(target.parts)] in ("control", "keys", "contracts")
    }
    manifest = {
        "format": FORMAT_VERSION,
        "nominal_version": __version__,
        "created_at": stamp.isoformat(),
        "database": sa.engine.make_url(url).get_backend_name(),
        "control_method": chosen,
        "lake": lake,
        "checksums": checksums,
        **detail,
        "path": str(target),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def restore_backup(home: Home, source: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore a backup folder into ``home`` (and its configured control plane)."""
    source = Path(source)
    try:
        manifest = json.loads((source / "manifest.json").read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} is not a nominal backup (no manifest.json)") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{source}: backup format {manifest.get('format')} is not supported")
    for rel, digest in manifest["checksums"].items():
        path = source / rel
        if not path.exists() or _sha256(path) != digest:
            raise BackupError(f"{source}: {rel} is missing or damaged (checksum differs)")
    home.ensure()
    lake = Lake(home.lake)
    if lake.current() is not None and not force:
        raise BackupError(f"{home.root} already has a lake: restore with --force to replace it")
    url = home.database_url
    kind = sa.engine.make_url(url).get_backend_name()
    method = manifest["control_method"]
    if (kind == "sqlite") != (method == "sqlite-backup-api"):
        raise BackupError(
            f"the backup's control plane is {manifest['database']} ({method}); "
            f"this home's is {kind}: point NOMINAL_DATABASE_URL at the same kind of database"
        )
    with lake.lock():
        for name in ("CURRENT", "snapshots", "data", "bronze"):
            path = lake.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        src_lake = source / "lake"
        for path in src_lake.rglob("*"):
            if path.is_file():
                _link_or_copy(path, lake.root / path.relative_to(src_lake))
        lake.snapshots_dir.mkdir(exist_ok=True)
        lake.bronze.mkdir(exist_ok=True)
    for name in HOME_FOLDERS:
        if (source / name).is_dir():
            shutil.rmtree(home.root / name, ignore_errors=True)
            shutil.copytree(source / name, home.root / name)
    if method == "sqlite-backup-api":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        _sqlite_copy(source / "control" / "control.db", target)
    elif method == "pg_dump":
        _psql_restore(url, source / "control" / "control.sql")
    else:
        _sql_copy_in(url, source / "control" / "tables")
    from nominal.db import upgrade

    upgrade(url)  # a backup from an older release is brought up to this one's schema
    return {
        "restored": str(source),
        "snapshot": manifest["lake"]["snapshot"],
        "control_method": method,
    }
