"""Generated codes and their refill, erased customers, events that bring their customer.

Revision ID: 0017_generated_codes_and_erasure
Revises: 0016_benefits_and_limits
Create Date: 2026-12-06 22:00

- ``uploads.pattern``: the pattern of a generated upload (null for a file or a list).
- ``code_groups.refill_*``: when active codes fall below ``refill_below``, the worker
  generates ``refill_count`` more from ``refill_pattern`` (all three or none).
- ``customers.erased_at``: the customer's personal data was erased (right to be
  forgotten); their issuances stay under a pseudonymous external id.
- ``campaigns.creates_customers``: an event for an unknown customer may create it from
  the event's ``customer`` body (off: the event answers 404, as before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_generated_codes_and_erasure"
down_revision = "0016_benefits_and_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("pattern", sa.String(64), nullable=True))
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("refill_pattern", sa.String(64), nullable=True))
        batch.add_column(sa.Column("refill_below", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("refill_count", sa.Integer(), nullable=True))
    with op.batch_alter_table("customers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("campaigns", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("creates_customers", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("creates_customers")
    with op.batch_alter_table("customers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("code_groups", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("refill_count")
        batch.drop_column("refill_below")
        batch.drop_column("refill_pattern")
    with op.batch_alter_table("uploads", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("pattern")
