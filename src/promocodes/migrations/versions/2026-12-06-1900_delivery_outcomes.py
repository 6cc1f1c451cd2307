"""What happens to a code around its message: a delivery that may have arrived, resend
rounds, worker heartbeats, and groups whose codes may be redeemed without being issued.

Revision ID: 0014_delivery_outcomes
Revises: 0013_campaigns_archived
Create Date: 2026-12-06 19:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_delivery_outcomes"
down_revision = "0013_campaigns_archived"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("maybe_delivered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
    op.create_index(
        "ix_messages_resent",
        "messages",
        ["mailing_id", "round", "status"],
        sqlite_where=sa.text("round > 0"),
        postgresql_where=sa.text("round > 0"),
    )
    with op.batch_alter_table("mailing_chunks") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "mailing_rounds",
        sa.Column("mailing_id", sa.Integer(), sa.ForeignKey("mailings.id"), primary_key=True),
        sa.Column("round", sa.Integer(), primary_key=True),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(100), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("redeem_unissued", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("redeem_unissued")
    op.drop_table("workers")
    op.drop_table("mailing_rounds")
    with op.batch_alter_table("mailing_chunks") as batch:
        batch.drop_column("round")
    op.drop_index("ix_messages_resent", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lease_owner")
        batch.drop_column("round")
        batch.drop_column("maybe_delivered")
