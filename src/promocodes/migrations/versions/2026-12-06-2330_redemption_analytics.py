"""Redemption analytics: the codes a mailing, a campaign or a group handed out, found by
an index instead of a scan of every issuance.

Both indexes are partial (initial, not voided: what the analytics count as sent) and
carry the code and the issue time, so a mailing of a million recipients is read from the
index alone and joined to its redemptions.

Revision ID: 0019_redemption_analytics
Revises: 0018_alerts_acknowledged
Create Date: 2026-12-06 23:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_redemption_analytics"
down_revision = "0018_alerts_acknowledged"
branch_labels = None
depends_on = None

SENT = sa.text("kind = 'initial' AND voided_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_issuances_sent_by_source",
        "issuances",
        ["source", "source_ref", "code_id", "issued_at"],
        sqlite_where=SENT,
        postgresql_where=SENT,
    )
    op.create_index(
        "ix_issuances_sent_by_group",
        "issuances",
        ["group_id", "code_id", "issued_at"],
        sqlite_where=SENT,
        postgresql_where=SENT,
    )


def downgrade() -> None:
    op.drop_index("ix_issuances_sent_by_group", table_name="issuances")
    op.drop_index("ix_issuances_sent_by_source", table_name="issuances")
