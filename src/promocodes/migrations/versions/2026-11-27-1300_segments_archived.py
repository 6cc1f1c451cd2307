"""Segments can be deleted once a mailing used them: they are archived.

``DELETE /segments/{id}`` of a segment a sent mailing named failed on the foreign key
(an internal error). Such a segment is now archived instead: hidden, its name free for
a new segment, still named on the reports of the mailings that used it. So the name is
unique among live segments only: the table-wide unique constraint becomes a partial
unique index (SQLite rebuilds the table to drop the constraint, keeping AUTOINCREMENT).

Revision ID: 0012_segments_archived
Revises: 0011_outbox_pages
Create Date: 2026-11-27 13:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_segments_archived"
down_revision = "0011_outbox_pages"
branch_labels = None
depends_on = None

LIVE = sa.text("archived_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("segments", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_segments_name", type_="unique")
    op.create_index(
        "uq_segments_live_name",
        "segments",
        ["name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    # Archived segments go: their names may be taken by live ones, and nothing but the
    # mailings that used them points at them. Those mailings would lose their segment,
    # so a database with any is not downgraded.
    used = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM segments s JOIN mailings m ON m.segment_id = s.id "
            "WHERE s.archived_at IS NOT NULL"
        )
    )
    if used:
        raise RuntimeError(
            f"{used} mailing(s) used segments deleted since; this downgrade would lose them"
        )
    op.execute("DELETE FROM segments WHERE archived_at IS NOT NULL")
    op.drop_index("uq_segments_live_name", table_name="segments")
    with op.batch_alter_table("segments", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.create_unique_constraint("uq_segments_name", ["name"])
        batch.drop_column("archived_at")
