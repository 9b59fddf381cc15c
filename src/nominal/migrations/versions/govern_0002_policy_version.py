"""policy version: a counter every change to what the policy decision point reads bumps

Revision ID: govern_0002
Revises: govern_0001
Create Date: 2026-12-01 13:30:00

Triggers (not application code) bump ``policy_version.version`` on every insert,
update or delete of the tables :func:`nominal.govern.policy.decide` reads, whoever
writes them (the web app, the command line, another process, hand-written SQL). A
cache of policy decisions keyed on the version is therefore never stale: a suspension,
a lapsed nomination or an ended agreement changes the version in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "govern_0002"
down_revision: str | Sequence[str] | None = "govern_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table a policy decision reads (nominal.govern.policy and decide_search).
POLICY_TABLES: tuple[str, ...] = (
    "partners",
    "datasets",
    "purposes",
    "users",
    "agreements",
    "agreement_purposes",
    "agreement_parties",
    "agreement_datasets",
    "agreement_recipients",
    "onboarding_checklists",
    "dataset_suspensions",
)
BUMP = "UPDATE policy_version SET version = version + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_version")),
    )
    op.execute("INSERT INTO policy_version (id, version) VALUES (1, 1)")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in POLICY_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(
                    f"CREATE TRIGGER policy_version_{table}_{event} AFTER {event.upper()} "
                    f"ON {table} BEGIN {BUMP}; END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in POLICY_TABLES:
            op.execute(
                f"CREATE TRIGGER policy_version_bump AFTER INSERT OR UPDATE OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_version()"
            )
    # Any other database: no triggers, and nominal.govern.policy never caches there.


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in POLICY_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS policy_version_{table}_{event}")
    elif dialect == "postgresql":
        for table in POLICY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS policy_version_bump ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_policy_version()")
    op.drop_table("policy_version")
