"""Saved segments; the issuances index segment filters read.

Revision ID: 0004_segments
Revises: 0003_api
Create Date: 2026-11-26 13:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0004_segments"
down_revision = "0003_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
        sqlite_autoincrement=True,
    )
    # Only live issuances, ordered by group then customer (see segments/models.py).
    op.create_index(
        "ix_issuances_segments",
        "issuances",
        ["group_id", "customer_id", "kind", "issued_at"],
        unique=False,
        sqlite_where=sa.text("voided_at IS NULL"),
        postgresql_where=sa.text("voided_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_issuances_segments", table_name="issuances")
    op.drop_table("segments")
