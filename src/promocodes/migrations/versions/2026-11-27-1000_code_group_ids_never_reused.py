"""Code group ids are never reused on SQLite.

The first migration created ``code_groups`` with AUTOINCREMENT, but a later rebuild of
the table (adding ``has_code_expiry``) dropped it, so SQLite handed the id of the most
recently removed group to the next new one: an old id in a client's hands would start
naming another group. PostgreSQL's sequence never reuses ids; nothing changes there.

Revision ID: 0009_group_ids_never_reused
Revises: 0008_codes_without_fks
Create Date: 2026-11-27 10:00
"""

from __future__ import annotations

from alembic import op

revision = "0009_group_ids_never_reused"
down_revision = "0008_codes_without_fks"
branch_labels = None
depends_on = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Rows are copied with their ids, which sets sqlite_sequence to the highest one.
    # promocodes.migrate runs SQLite migrations with foreign keys off (other tables
    # point at code_groups) and checks them afterwards.
    with op.batch_alter_table(
        "code_groups", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
