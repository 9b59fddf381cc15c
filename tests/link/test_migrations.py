"""The link area's Alembic branch matches its SQLAlchemy models (no autogenerate drift).

Upgrades a real database (SQLite file and PostgreSQL schema) through the migrations
and asks Alembic's autogenerate comparison what it would change for the ``link_*``
tables: it must be nothing. Also upgrades a database holding rows written before
link_0002 (timestamps NULL) to check they are kept and given a timestamp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from nominal.db import alembic_config, import_models, make_engine, upgrade

LINK_TABLES = ("link_review_items", "link_decisions", "link_splits")


def _tables_of(diff: Any) -> set[str]:
    """Table names an autogenerate diff entry touches (entries nest for column ops)."""
    out: set[str] = set()
    if isinstance(diff, list):
        for item in diff:
            out |= _tables_of(item)
        return out
    for part in diff:
        if isinstance(part, str) and part.startswith("link_"):
            out.add(part)
        elif isinstance(part, sa.Table):
            out.add(part.name)
        elif isinstance(getattr(part, "table", None), sa.Table):  # column, index, constraint
            out.add(part.table.name)
    return out


def link_drift(url: str) -> list[Any]:
    metadata = import_models()
    engine = make_engine(url)
    try:
        with engine.connect() as con:
            context = MigrationContext.configure(
                con, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    return [d for d in diff if _tables_of(d) & set(LINK_TABLES)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_link_models_match_migrations(database_url: str) -> None:
    upgrade(database_url)
    assert link_drift(database_url) == []


def test_drift_check_sees_a_mismatch(database_url: str) -> None:
    """The check can fail: stopped at link_0001 the NOT NULL drift is reported."""
    command.upgrade(alembic_config(database_url), "link_0001")
    drift = link_drift(database_url)
    assert drift, "link_0001 alone has nullable timestamps; the comparison must see them"


def test_rows_without_timestamps_survive_the_upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "link_0001")
    engine = make_engine(database_url)
    with engine.begin() as con:
        con.execute(
            sa.text(
                "INSERT INTO link_splits (id, nominal_id, record_keys, decided_by, reason) "
                "VALUES (1, 'N1', 'a,b', 'ig.lead', 'rectification')"
            )
        )
        con.execute(
            sa.text(
                "INSERT INTO link_decisions (record_key_l, record_key_r, decision, "
                "decided_by, reason, split_id) VALUES ('a', 'c', 'non_match', 'ig.lead', 'x', 1)"
            )
        )
        con.execute(
            sa.text(
                "INSERT INTO link_review_items (record_key_l, record_key_r, match_probability, "
                "match_weight, status, run_id) VALUES ('a', 'd', 0.7, 1.2, 'open', 'r1')"
            )
        )
    upgrade(database_url)
    with engine.connect() as con:
        for table, column in (
            ("link_splits", "decided_at"),
            ("link_decisions", "decided_at"),
            ("link_review_items", "created_at"),
        ):
            rows = con.execute(sa.text(f"SELECT {column} FROM {table}")).fetchall()
            assert len(rows) == 1 and rows[0][0] is not None, table
        split = con.execute(sa.text("SELECT split_id FROM link_decisions")).scalar_one()
        assert split == 1
    engine.dispose()
    assert link_drift(database_url) == []
