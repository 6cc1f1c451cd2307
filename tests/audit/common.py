"""Reading the audit log back in tests."""

from __future__ import annotations

from sqlalchemy import select

from promocodes.audit.models import AuditEntry
from promocodes.db import Database


def entries(db: Database, action: str | None = None) -> list[AuditEntry]:
    """Every entry (of one action), oldest first."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    with db.read() as s:
        return list(s.scalars(query))


def only(db: Database, action: str) -> AuditEntry:
    """The one entry of ``action``; fails when there are none or several."""
    found = entries(db, action)
    assert len(found) == 1, [(e.action, e.target_id, e.details) for e in found]
    return found[0]
