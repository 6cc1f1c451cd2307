"""Deleting records whose purpose has passed, on a schedule (the workers call ``prune``).

- Idempotency records older than ``idempotency_retention_hours`` (≥ 24 h): a client
  retrying a call after that gets a new operation, not the stored answer.
- Web sessions past their expiry (logins also clear them, but a quiet instance has none).

Each batch of ``prune_batch_size`` rows is its own short transaction, so SQLite's single
write lock is never held for long and claims and uploads interleave with the pruning.

- Leases of finished chunks older than the same retention: the worker and the lease's
  end are cleared (``lease_owner``, ``lease_until``). The chunk rows stay: a finished
  mailing's chunks hold its report (rendered, skipped and why). A finished message's
  delivery lease is only a time in the past and no longer read, so it is left alone
  (clearing it would mean walking every message again and again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Delete, Update, delete, select, tuple_, update

from promocodes.apikeys.models import IdempotencyRecord
from promocodes.config import Settings
from promocodes.db import Database, rowcount
from promocodes.messaging.models import MailingChunk
from promocodes.models import utcnow
from promocodes.users.models import UserSession


@dataclass(frozen=True)
class Pruned:
    idempotency_records: int
    user_sessions: int
    chunk_leases: int


def prune(db: Database, settings: Settings, now: datetime | None = None) -> Pruned:
    now = now or utcnow()
    cutoff = now - timedelta(hours=settings.idempotency_retention_hours)
    batch = settings.prune_batch_size
    r = IdempotencyRecord
    old_records = (
        select(r.api_key_id, r.key).where(r.created_at < cutoff).order_by(r.created_at).limit(batch)
    )
    records = _in_batches(db, delete(r).where(tuple_(r.api_key_id, r.key).in_(old_records)), batch)
    expired = select(UserSession.id).where(UserSession.expires_at < now).limit(batch)
    sessions = _in_batches(db, delete(UserSession).where(UserSession.id.in_(expired)), batch)
    c = MailingChunk
    finished = (
        select(c.id)
        .where(c.status == "done", c.finished_at < cutoff, c.lease_owner.is_not(None))
        .limit(batch)
    )
    clear = update(c).where(c.id.in_(finished)).values(lease_owner=None, lease_until=None)
    leases = _in_batches(db, clear, batch)
    return Pruned(idempotency_records=records, user_sessions=sessions, chunk_leases=leases)


def _in_batches(db: Database, statement: Delete | Update, batch: int) -> int:
    """Run ``statement`` (which changes at most ``batch`` rows) until it changes fewer."""
    total = 0
    while True:
        with db.write() as s:
            n = rowcount(s.execute(statement))
        total += n
        if n < batch:
            return total
