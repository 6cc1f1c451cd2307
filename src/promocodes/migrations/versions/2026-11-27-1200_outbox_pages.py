"""The message indexes end with the id, so the outbox is browsed and exported in id order.

A page of a mailing's messages of one status is then a range of the index on both
backends. SQLite's index already ended with the rowid (the id), so this only changes
PostgreSQL's, where a page of a large mailing sorted every message of the status.

Revision ID: 0011_outbox_pages
Revises: 0010_more_counter_stripes
Create Date: 2026-11-27 12:00
"""

from __future__ import annotations

from alembic import op

revision = "0011_outbox_pages"
down_revision = "0010_more_counter_stripes"
branch_labels = None
depends_on = None


def _index(name: str, column: str, *more: str) -> None:
    op.drop_index(name, table_name="messages")
    op.create_index(name, "messages", [column, "status", *more])


def upgrade() -> None:
    _index("ix_messages_mailing", "mailing_id", "id")
    _index("ix_messages_campaign", "campaign_id", "id")


def downgrade() -> None:
    _index("ix_messages_mailing", "mailing_id")
    _index("ix_messages_campaign", "campaign_id")
