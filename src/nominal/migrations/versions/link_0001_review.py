"""link: clerical review items, reviewer decisions and splits

Revision ID: link_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "link_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("link",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_review_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_key_l", sa.String(64), nullable=False),
        sa.Column("record_key_r", sa.String(64), nullable=False),
        sa.Column("nominal_id_l", sa.String(64)),
        sa.Column("nominal_id_r", sa.String(64)),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_link_review_items"),
        sa.UniqueConstraint(
            "record_key_l", "record_key_r", name="uq_link_review_items_record_key_l"
        ),
    )
    op.create_table(
        "link_splits",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("nominal_id", sa.String(64), nullable=False),
        sa.Column("record_keys", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_link_splits"),
    )
    op.create_table(
        "link_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_key_l", sa.String(64), nullable=False),
        sa.Column("record_key_r", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("split_id", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_link_decisions"),
        sa.ForeignKeyConstraint(
            ["split_id"], ["link_splits.id"], name="fk_link_decisions_split_id_link_splits"
        ),
        sa.CheckConstraint("decision IN ('match', 'non_match')", name="ck_link_decisions_decision"),
    )
    op.create_index("ix_link_decisions_record_key_l", "link_decisions", ["record_key_l"])


def downgrade() -> None:
    op.drop_index("ix_link_decisions_record_key_l", table_name="link_decisions")
    op.drop_table("link_decisions")
    op.drop_table("link_splits")
    op.drop_table("link_review_items")
