"""Sixty-four counter stripes per group instead of eight.

A PostgreSQL claim holds its counter stripe until it commits, and a commit waits for the
WAL flush. With 32 concurrent claimers on 8 stripes, most claims waited for another's
commit to end (``Lock:transactionid`` / ``Lock:tuple`` on ``group_counters`` in
``pg_locks``); with 64 those waits were gone. The new stripes start at zero, so every
count stays what it was.

Revision ID: 0010_more_counter_stripes
Revises: 0009_group_ids_never_reused
Create Date: 2026-11-27 11:00
"""

from __future__ import annotations

from alembic import op

revision = "0010_more_counter_stripes"
down_revision = "0009_group_ids_never_reused"
branch_labels = None
depends_on = None

# The stripe counts (8 before, 64 after) are written into the statements rather than read
# from the models: a migration describes one step in time.


def upgrade() -> None:
    op.execute(
        "WITH RECURSIVE slots(slot) AS ("
        "SELECT 0 UNION ALL SELECT slot + 1 FROM slots WHERE slot < 63) "
        "INSERT INTO group_counters (group_id, slot, total, available, issued, redeemed, "
        "blocked) SELECT g.id, slots.slot, 0, 0, 0, 0, 0 FROM code_groups g, slots "
        "WHERE NOT EXISTS (SELECT 1 FROM group_counters c "
        "WHERE c.group_id = g.id AND c.slot = slots.slot)"
    )


def downgrade() -> None:
    # The stripes that go are added to stripe 0 first: the counts must not change.
    op.execute(
        "UPDATE group_counters SET "
        "total = total + (SELECT coalesce(sum(x.total), 0) FROM group_counters x "
        "WHERE x.group_id = group_counters.group_id AND x.slot >= 8), "
        "available = available + (SELECT coalesce(sum(x.available), 0) FROM group_counters x "
        "WHERE x.group_id = group_counters.group_id AND x.slot >= 8), "
        "issued = issued + (SELECT coalesce(sum(x.issued), 0) FROM group_counters x "
        "WHERE x.group_id = group_counters.group_id AND x.slot >= 8), "
        "redeemed = redeemed + (SELECT coalesce(sum(x.redeemed), 0) FROM group_counters x "
        "WHERE x.group_id = group_counters.group_id AND x.slot >= 8), "
        "blocked = blocked + (SELECT coalesce(sum(x.blocked), 0) FROM group_counters x "
        "WHERE x.group_id = group_counters.group_id AND x.slot >= 8) "
        "WHERE slot = 0"
    )
    op.execute("DELETE FROM group_counters WHERE slot >= 8")
