"""Groups, their counter stripes, codes and uploads.

Revision ID: 0001_groups_codes
Revises:
Create Date: 2026-11-26 12:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_groups_codes"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "code_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("valid_from", TS, nullable=True),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("low_stock_threshold", sa.Integer(), nullable=True),
        sa.Column("archived_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_code_groups"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_code_groups_live_name",
        "code_groups",
        ["name_key"],
        unique=True,
        sqlite_where=sa.text("archived_at IS NULL"),
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_table(
        "group_counters",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("blocked", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["code_groups.id"],
            name="fk_group_counters_group_id_code_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "slot", name="pk_group_counters"),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("duplicates_in_upload", sa.BigInteger(), nullable=False),
        sa.Column("already_in_group", sa.BigInteger(), nullable=False),
        sa.Column("in_other_groups", sa.BigInteger(), nullable=False),
        sa.Column("invalid_count", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["code_groups.id"], name="fk_uploads_group_id_code_groups"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_uploads_group_id", "uploads", ["group_id"])
    op.create_table(
        "codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "code",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("issued_at", TS, nullable=True),
        sa.Column("redeemed_at", TS, nullable=True),
        sa.Column("blocked_at", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('available', 'issued', 'redeemed', 'blocked')", name="ck_codes_status"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["code_groups.id"], name="fk_codes_group_id_code_groups"
        ),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], name="fk_codes_upload_id_uploads"),
        sa.PrimaryKeyConstraint("id", name="pk_codes"),
        sa.UniqueConstraint("code", name="uq_codes_code"),
    )
    op.create_index("ix_codes_group_status", "codes", ["group_id", "status", "valid_until", "id"])


def downgrade() -> None:
    op.drop_table("codes")
    op.drop_table("uploads")
    op.drop_table("group_counters")
    op.drop_table("code_groups")
