"""Campaigns can be deleted: they are archived, so their messages stay reachable.

Revision ID: 0013_campaigns_archived
Revises: 0012_segments_archived
Create Date: 2026-11-27 14:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_campaigns_archived"
down_revision = "0012_segments_archived"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A deleted campaign comes back paused: its messages need it, and it must not send.
    op.execute("UPDATE campaigns SET active = false WHERE archived_at IS NOT NULL")
    with op.batch_alter_table("campaigns", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("archived_at")
