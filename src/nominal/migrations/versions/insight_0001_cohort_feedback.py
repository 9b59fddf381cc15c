"""insight: practitioners' feedback on cohort entries

Revision ID: insight_0001
Revises:
Create Date: 2026-12-01 07:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "insight_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("insight",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insight_cohort_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("unit_pseudo", sa.String(length=64), nullable=False),
        sa.Column("feedback", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("partner", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "feedback IN ('already known', 'not a concern', 'acted on', 'other')",
            name=op.f("ck_insight_cohort_feedback_feedback"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_cohort_feedback")),
    )
    op.create_index(
        op.f("ix_insight_cohort_feedback_cohort"), "insight_cohort_feedback", ["cohort"]
    )
    op.create_index(
        op.f("ix_insight_cohort_feedback_unit_pseudo"), "insight_cohort_feedback", ["unit_pseudo"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_insight_cohort_feedback_unit_pseudo"), "insight_cohort_feedback")
    op.drop_index(op.f("ix_insight_cohort_feedback_cohort"), "insight_cohort_feedback")
    op.drop_table("insight_cohort_feedback")
