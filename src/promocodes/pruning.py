"""Deleting records whose purpose has passed. The worker runs each step on a schedule,
``prune_batch_size`` rows per short transaction, so SQLite's single write lock is never
held for long and claims and uploads interleave with the pruning.

- Idempotency records older than ``idempotency_retention_hours`` (≥ 24 h): a client
  retrying a call after that gets a new operation, not the stored answer.
- Web sessions past their expiry (logins also clear them, but a quiet instance has none).
- Leases of finished chunks older than the same retention: the worker and the lease's
  end are cleared (``lease_owner``, ``lease_until``). The chunk rows stay: a finished
  mailing's chunks hold its report (rendered, skipped and why). A finished message's
  delivery lease is only a time in the past and no longer read, so it is left alone
  (clearing it would mean walking every message again and again).
- Heartbeats of workers silent for as long (dead, or stopped without saying so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from promocodes.apikeys import service as apikeys
from promocodes.config import Settings
from promocodes.messaging import service as messaging
from promocodes.users import service as users


@dataclass(frozen=True)
class Pruned:
    idempotency_records: int
    user_sessions: int
    chunk_leases: int
    silent_workers: int


def _retention(settings: Settings) -> timedelta:
    return timedelta(hours=settings.idempotency_retention_hours)


def _idempotency_records(session: Session, now: datetime, settings: Settings) -> int:
    return apikeys.prune_answers(session, now - _retention(settings), settings.prune_batch_size)


def _user_sessions(session: Session, now: datetime, settings: Settings) -> int:
    return users.prune_sessions(session, now, settings.prune_batch_size)


def _chunk_leases(session: Session, now: datetime, settings: Settings) -> int:
    return messaging.forget_leases(session, now - _retention(settings), settings.prune_batch_size)


def _silent_workers(session: Session, now: datetime, settings: Settings) -> int:
    return messaging.forget_silent_workers(session, now - _retention(settings))


# Each step changes at most ``prune_batch_size`` rows; it is run again while it changes
# that many. Named as ``Pruned``'s fields.
STEPS: dict[str, Callable[[Session, datetime, Settings], int]] = {
    "idempotency_records": _idempotency_records,
    "user_sessions": _user_sessions,
    "chunk_leases": _chunk_leases,
    "silent_workers": _silent_workers,
}
