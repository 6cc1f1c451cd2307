"""Saved segments; the two issuances indexes segment filters read.

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

INDEXES = {
    "ix_issuances_segments_group": ["group_id", "customer_id", "kind", "issued_at"],
    "ix_issuances_segments_customer": ["customer_id", "kind", "issued_at", "group_id"],
}


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
    # Only live issuances, by group and by customer (see segments/models.py).
    live = sa.text("voided_at IS NULL")
    for name, columns in INDEXES.items():
        op.create_index(
            name,
            "issuances",
            columns,
            unique=False,
            sqlite_where=live,
            postgresql_where=live,
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="issuances")
    op.drop_table("segments")
