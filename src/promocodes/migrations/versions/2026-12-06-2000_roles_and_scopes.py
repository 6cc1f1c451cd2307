"""Every person only their own powers: a role per web user, scopes per API key.

Revision ID: 0015_roles_and_scopes
Revises: 0014_delivery_outcomes
Create Date: 2026-12-06 20:00

Users from before roles existed become administrators, and keys from before scopes
existed keep every scope: nobody loses what they could do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_roles_and_scopes"
down_revision = "0014_delivery_outcomes"
branch_labels = None
depends_on = None

ALL_SCOPES = "read,issue,redeem,manage"


def upgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="admin"))
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(100), nullable=False, server_default=ALL_SCOPES)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("scopes")
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("role")
