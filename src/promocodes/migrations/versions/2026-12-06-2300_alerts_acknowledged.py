"""Stock alerts can be acknowledged: who saw one, and when, so the alerts page shows
what still needs someone's attention.

Revision ID: 0018_alerts_acknowledged
Revises: 0017_generated_codes_and_erasure
Create Date: 2026-12-06 23:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_alerts_acknowledged"
down_revision = "0017_generated_codes_and_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain nullable columns: SQLite adds them without rebuilding the table.
    op.add_column("alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True)))
    op.add_column("alerts", sa.Column("acknowledged_by", sa.String(320)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
