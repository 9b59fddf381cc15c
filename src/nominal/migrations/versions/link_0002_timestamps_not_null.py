"""link: review, decision and split timestamps are NOT NULL, as the models say

The models declare ``created_at`` / ``decided_at`` as always set (``Mapped[datetime]``
with a UTC default) but link_0001 created them nullable, so Alembic's autogenerate
comparison reported drift. Rows written without a timestamp (none are, through the
models) are given the migration time first.

Revision ID: link_0002
Revises: link_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "link_0002"
down_revision: str | Sequence[str] | None = "link_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("link_review_items", "created_at"),
    ("link_splits", "decided_at"),
    ("link_decisions", "decided_at"),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.execute(
            sa.text(f"UPDATE {table} SET {column} = CURRENT_TIMESTAMP WHERE {column} IS NULL")
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.DateTime(timezone=True), nullable=True)
