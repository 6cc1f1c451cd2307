"""A group's benefit (what a code is worth) and its per-customer limit.

Revision ID: 0016_benefits_and_limits
Revises: 0015_roles_and_scopes
Create Date: 2026-12-06 21:00

Every column is optional or has a default: groups from before keep no benefit and no
limit, which is what they had. Columns are only added, so SQLite alters ``code_groups``
in place (no rebuild that could drop its AUTOINCREMENT or its partial index).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_benefits_and_limits"
down_revision = "0015_roles_and_scopes"
branch_labels = None
depends_on = None

_COLUMNS = (
    "benefit_type",
    "benefit_value",
    "benefit_currency",
    "benefit_text",
    "customer_limit",
    "limit_action",
)


def upgrade() -> None:
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("benefit_type", sa.String(16), nullable=True))
        batch.add_column(sa.Column("benefit_value", sa.Numeric(12, 2), nullable=True))
        batch.add_column(sa.Column("benefit_currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("benefit_text", sa.String(200), nullable=True))
        batch.add_column(sa.Column("customer_limit", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("limit_action", sa.String(8), nullable=False, server_default="repeat")
        )


def downgrade() -> None:
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
