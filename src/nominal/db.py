"""The control plane's database: SQLAlchemy 2 models share this ``Base``.

SQLite file in the hub's home by default; PostgreSQL in production and in the test
suite (``NOMINAL_DATABASE_URL``). The schema is created and upgraded only by Alembic
migrations (``src/nominal/migrations``), never by ``create_all``, so that a deployed
control plane can be upgraded in place.

Each area keeps its models in its own module (``nominal.govern.models``, ...); they
are imported by :func:`import_models` so Alembic sees the whole metadata. Each area
also keeps its own branch of migrations: its first revision has ``down_revision =
None`` and ``branch_labels = ("<area>",)``; create the next one with
``alembic revision --head <area>@head``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _model_modules() -> tuple[str, ...]:
    """``nominal.<area>.models`` for every area that defines control-plane models."""
    import importlib.util
    import pkgutil

    import nominal

    return tuple(
        sorted(
            f"nominal.{area.name}.models"
            for area in pkgutil.iter_modules(nominal.__path__)
            if area.ispkg and importlib.util.find_spec(f"nominal.{area.name}.models") is not None
        )
    )


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def import_models() -> sa.MetaData:
    for module in _model_modules():
        importlib.import_module(module)
    return Base.metadata


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL survives a killed server with committed transactions intact; foreign keys
    # are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_writer_engine(url: str) -> Engine:
    """An engine of one connection for a single writer (the audit log's group commit).

    Its own connection, so that appending never waits for the request pool. On SQLite
    its transactions begin ``IMMEDIATE``: the write lock is taken before anything is
    read, so what a transaction reads (the head of the audit chain) cannot change under
    it, and a second process waits for the lock instead of failing its append.
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=0)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False}, pool_size=1, max_overflow=0
    )

    def connect(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        _sqlite_pragmas(dbapi_connection, record)
        dbapi_connection.isolation_level = None  # transactions are begun by the event below

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the control plane's schema up to date (idempotent).

    Each area keeps its own branch of migrations (``branch_labels``), so the target is
    ``heads``: every branch at its newest revision.
    """
    from alembic import command

    command.upgrade(alembic_config(url), revision)


class ControlPlane:
    """An engine and session factory for one control-plane database."""

    def __init__(self, url: str, migrate: bool = True) -> None:
        self.url = url
        if migrate:
            upgrade(url)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer: Engine | None = None
        self._writer_lock = threading.Lock()

    def writer(self) -> Engine:
        """The single-connection engine of the audit writer (:func:`make_writer_engine`)."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = make_writer_engine(self.url)
            return self._writer

    def writer_lock_path(self) -> Path | None:
        """On a SQLite file, a lock file next to it that writers in several processes take
        in turn (an OS lock wakes the next one at once; SQLite's busy handler sleeps)."""
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database).with_name(Path(url.database).name + ".writer-lock")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed at the end of the block, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writer is not None:
            self._writer.dispose()
