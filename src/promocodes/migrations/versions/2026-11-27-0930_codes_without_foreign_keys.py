"""Codes keep group_id and upload_id without foreign keys.

Each foreign key is checked by a trigger per inserted row; on PostgreSQL that cost more
than the whole COPY of the row. Locks hold the same guarantee (see codes/models.py).

Revision ID: 0008_codes_without_fks
Revises: 0007_audit_log
Create Date: 2026-11-27 09:30
"""

from __future__ import annotations

from alembic import op

revision = "0008_codes_without_fks"
down_revision = "0007_audit_log"
branch_labels = None
depends_on = None

FKS = (
    ("fk_codes_group_id_code_groups", "code_groups", "group_id"),
    ("fk_codes_upload_id_uploads", "uploads", "upload_id"),
)


def upgrade() -> None:
    # On SQLite this rebuilds the table; promocodes.migrate runs SQLite migrations with
    # foreign key enforcement off (issuances point at codes) and checks them afterwards.
    with op.batch_alter_table("codes") as batch:
        for name, _, _ in FKS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("codes") as batch:
        for name, parent, column in FKS:
            batch.create_foreign_key(name, parent, [column], ["id"])
