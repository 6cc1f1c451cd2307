"""SQL of worker heartbeats: who is working, and since when they have been silent.

A chunk or a message is leased to a worker for a while (minutes: a chunk may be large, an
SMTP server slow). A worker that dies would leave its leases waiting that long; with a
beat every few seconds, anyone may take over the leases of a worker whose beat is stale.
A worker that never beat (a test's one-off run) is only ever overtaken by its lease's end.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from promocodes.db import rowcount
from promocodes.messaging.models import WorkerBeat

# Holds when the row's ``lease_owner`` is a worker whose last beat is before ``:stale``
# (chunks and messages both name their holder so; the statement binds ``:stale``).
STALE_HOLDER = "EXISTS (SELECT 1 FROM workers w WHERE w.owner = lease_owner AND w.beat_at < :stale)"


def beat(session: Session, owner: str, now: datetime) -> None:
    """Record that ``owner`` is alive (registering it on its first beat)."""
    done = session.execute(update(WorkerBeat).where(WorkerBeat.owner == owner).values(beat_at=now))
    if rowcount(done) == 0:
        session.execute(insert(WorkerBeat).values(owner=owner, started_at=now, beat_at=now))


def leave(session: Session, owner: str) -> None:
    """A worker stopping cleanly: what it held is committed or released already."""
    session.execute(delete(WorkerBeat).where(WorkerBeat.owner == owner))


def forget_silent(session: Session, before: datetime) -> int:
    """Forget workers silent since ``before`` (long dead: their leases ran out since)."""
    return rowcount(session.execute(delete(WorkerBeat).where(WorkerBeat.beat_at < before)))
