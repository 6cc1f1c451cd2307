"""Customers, issuances (exactly-once by business key) and redemptions.

Revision ID: 0002_issuance
Revises: 0001_groups_codes
Create Date: 2026-11-26 12:38
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TS = sa.DateTime(timezone=True)

revision = "0002_issuance"
down_revision = "0001_groups_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("code_groups") as batch:
        batch.add_column(
            sa.Column("has_code_expiry", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "issuances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=True),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("voided_at", TS, nullable=True),
        sa.CheckConstraint("kind IN ('initial', 'repeat')", name=op.f("ck_issuances_kind")),
        sa.ForeignKeyConstraint(["code_id"], ["codes.id"], name=op.f("fk_issuances_code_id_codes")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_issuances_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["code_groups.id"], name=op.f("fk_issuances_group_id_code_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuances")),
        sa.UniqueConstraint("key", "group_id", "kind", name="uq_issuances_key"),
    )
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.create_index("ix_issuances_code", ["code_id"], unique=False)
        batch_op.create_index(
            "ix_issuances_customer", ["customer_id", "group_id", "kind", "id"], unique=False
        )

    op.create_table(
        "redemptions",
        sa.Column("code_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("redeemed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"], ["codes.id"], name=op.f("fk_redemptions_code_id_codes")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_redemptions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("code_id", name=op.f("pk_redemptions")),
    )


def downgrade() -> None:
    with op.batch_alter_table("code_groups") as batch:
        batch.drop_column("has_code_expiry")
    op.drop_table("redemptions")
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.drop_index("ix_issuances_customer")
        batch_op.drop_index("ix_issuances_code")

    op.drop_table("issuances")
    op.drop_table("customers")
