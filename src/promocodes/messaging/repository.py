"""SQL of mailings, their frozen recipients and leased chunks, and campaigns. Services
call these inside their transaction; nothing here commits. (Messages: see
``message_repository``.)"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from promocodes.customers.models import Customer
from promocodes.db import Driver, RawSQL, rowcount
from promocodes.messaging.models import (
    Campaign,
    Mailing,
    MailingChunk,
    MailingRecipient,
    MailingRound,
    Message,
)
from promocodes.messaging.worker_repository import STALE_HOLDER
from promocodes.models import UTCDateTime

# --- mailings ---------------------------------------------------------------------------


def get_mailing(session: Session, mailing_id: int, *, lock: bool = False) -> Mailing | None:
    """The mailing; with ``lock``, its row held until the transaction ends (PostgreSQL:
    SQLite's writers take turns anyway)."""
    return session.get(Mailing, mailing_id, with_for_update=lock)


def add_mailing(session: Session, mailing: Mailing) -> Mailing:
    session.add(mailing)
    session.flush()
    return mailing


def newest_mailings(session: Session, limit: int) -> list[Mailing]:
    return list(session.scalars(select(Mailing).order_by(Mailing.id.desc()).limit(limit)))


def due_mailings(session: Session, now: datetime) -> list[Mailing]:
    """Scheduled mailings whose time has come."""
    stmt = select(Mailing).where(Mailing.status == "scheduled", Mailing.send_at <= now)
    return list(session.scalars(stmt))


def finished_mailings(session: Session) -> list[Mailing]:
    """Mailings being sent whose every chunk is done."""
    open_chunks = select(MailingChunk.id).where(
        MailingChunk.mailing_id == Mailing.id, MailingChunk.status != "done"
    )
    stmt = select(Mailing).where(Mailing.status == "sending", ~open_chunks.exists())
    return list(session.scalars(stmt))


def sending_mailings(session: Session) -> list[tuple[int, str, int]]:
    """(id, name, total) of the mailings being sent."""
    stmt = select(Mailing.id, Mailing.name, Mailing.total).where(Mailing.status == "sending")
    return [(i, n, t) for i, n, t in session.execute(stmt)]


def mailings_of_segment(session: Session, segment_id: int) -> list[tuple[int, str, str]]:
    """(id, name, status) of every mailing made for the segment."""
    stmt = select(Mailing.id, Mailing.name, Mailing.status).where(Mailing.segment_id == segment_id)
    return [(i, n, st) for i, n, st in session.execute(stmt.order_by(Mailing.id))]


def freeze_recipients(session: Session, mailing_id: int, where: ColumnElement[bool]) -> int:
    """Copy the customers ``where`` selects into the mailing's recipients, numbered from 1
    in id order (one INSERT … SELECT); how many there are."""
    session.execute(
        insert(MailingRecipient).from_select(
            ["mailing_id", "seq", "customer_id"],
            select(
                literal(mailing_id), func.row_number().over(order_by=Customer.id), Customer.id
            ).where(where),
        )
    )
    count = select(func.count()).where(MailingRecipient.mailing_id == mailing_id)
    return session.scalar(count) or 0


def add_chunks(
    session: Session, mailing_id: int, first: int, last: int, size: int, round_: int = 0
) -> None:
    """Cut recipients ``first``..``last`` into pending chunks of ``size`` (of the first
    send, or of resend ``round_``)."""
    if last < first:
        return
    session.execute(
        insert(MailingChunk),
        [
            {
                "mailing_id": mailing_id,
                "first_seq": start,
                "last_seq": min(start + size - 1, last),
                "round": round_,
                "status": "pending",
                "attempts": 0,
                "rendered": 0,
                "skipped": 0,
            }
            for start in range(first, last + 1, size)
        ],
    )


# --- resends ----------------------------------------------------------------------------

# A recipient whose latest message of the mailing failed: none of a later round exists.
_APPEND_FAILED = text(
    "INSERT INTO mailing_recipients (mailing_id, seq, customer_id) "
    "SELECT m.mailing_id, :after + row_number() OVER (ORDER BY m.customer_id), m.customer_id "
    "FROM messages m WHERE m.mailing_id = :mailing_id AND m.status = 'failed' "
    "AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.mailing_id = m.mailing_id "
    "AND n.customer_id = m.customer_id AND n.round > m.round)"
)


def append_failed_recipients(session: Session, mailing_id: int, after: int) -> int:
    """Append the recipients whose latest message failed, numbered from ``after + 1``
    (one INSERT … SELECT); how many there were."""
    done = session.execute(_APPEND_FAILED, {"mailing_id": mailing_id, "after": after})
    return rowcount(done)


def last_seq(session: Session, mailing_id: int) -> int:
    stmt = select(func.max(MailingRecipient.seq)).where(MailingRecipient.mailing_id == mailing_id)
    return session.scalar(stmt) or 0


def last_round(session: Session, mailing_id: int) -> int:
    stmt = select(func.max(MailingRound.round)).where(MailingRound.mailing_id == mailing_id)
    return session.scalar(stmt) or 0


def add_round(session: Session, mailing_round: MailingRound) -> None:
    session.add(mailing_round)
    session.flush()


@dataclass(frozen=True, slots=True)
class RoundCounts:
    """A resend: when, how many recipients, and their messages by status."""

    round: int
    created_at: datetime
    recipients: int
    by_status: dict[str, int]


def round_counts(session: Session, mailing_ids: Sequence[int]) -> dict[int, list[RoundCounts]]:
    """Every listed mailing's resends with their messages by status, in one statement
    (a resend's messages are found by a small partial index)."""
    out: dict[int, list[RoundCounts]] = {mid: [] for mid in mailing_ids}
    if not mailing_ids:
        return out
    r, m = MailingRound, Message
    rows = session.execute(
        select(
            r.mailing_id, r.round, r.created_at, r.first_seq, r.last_seq, m.status, func.count(m.id)
        )
        .outerjoin(m, (m.mailing_id == r.mailing_id) & (m.round == r.round) & (m.round > 0))
        .where(r.mailing_id.in_(list(mailing_ids)))
        .group_by(r.mailing_id, r.round, r.created_at, r.first_seq, r.last_seq, m.status)
        .order_by(r.mailing_id, r.round)
    )
    for mid, round_, created_at, first, last, status, n in rows:
        rounds = out[mid]
        if not rounds or rounds[-1].round != round_:
            rounds.append(RoundCounts(round_, created_at, last - first + 1, {}))
        if status is not None:
            rounds[-1].by_status[status] = int(n)
    return out


# --- chunks -----------------------------------------------------------------------------

# Pending, or running under a lease that ran out or a holder that stopped beating. (The
# statement is built from these constants only.)
_CLAIMABLE = (
    f"c.status = 'pending' OR (c.status = 'running' AND (c.lease_until < :now OR {STALE_HOLDER}))"
)
_NEXT_CHUNK = (
    "SELECT c.id FROM mailing_chunks c JOIN mailings m ON m.id = c.mailing_id "  # noqa: S608
    f"WHERE m.status = 'sending' AND ({_CLAIMABLE}) ORDER BY c.mailing_id, c.id LIMIT 1"
)
_TIMES = (bindparam("now", type_=UTCDateTime), bindparam("stale", type_=UTCDateTime))
_NEXT_CHUNK_SQLITE = text(_NEXT_CHUNK).bindparams(*_TIMES)
_NEXT_CHUNK_PG = text(_NEXT_CHUNK + " FOR UPDATE OF c SKIP LOCKED").bindparams(*_TIMES)


def lease_next_chunk(
    session: Session, owner: str, now: datetime, lease: timedelta, stale: datetime
) -> MailingChunk | None:
    """Lease the next chunk to send: a pending one, or one whose lease ran out or whose
    holder has not beaten since ``stale``."""
    stmt = _NEXT_CHUNK_PG if _pg(session) else _NEXT_CHUNK_SQLITE
    chunk_id = session.execute(stmt, {"now": now, "stale": stale}).scalar()
    if chunk_id is None:
        return None
    session.execute(
        update(MailingChunk)
        .where(MailingChunk.id == chunk_id)
        .values(
            status="running",
            lease_owner=owner,
            lease_until=now + lease,
            attempts=MailingChunk.attempts + 1,
        )
    )
    return session.get(MailingChunk, chunk_id)


def get_chunk(session: Session, chunk_id: int) -> MailingChunk | None:
    return session.get(MailingChunk, chunk_id)


def finish_chunk(
    session: Session,
    chunk_id: int,
    owner: str,
    *,
    skipped: Counter[str],
    rendered: int,
    now: datetime,
) -> bool:
    """Mark the chunk done with its report, only if ``owner`` still holds its lease."""
    done = session.execute(
        update(MailingChunk)
        .where(
            MailingChunk.id == chunk_id,
            MailingChunk.lease_owner == owner,
            MailingChunk.status == "running",
        )
        .values(
            status="done",
            rendered=rendered,
            skipped=sum(skipped.values()),
            skipped_reasons=json.dumps(dict(skipped)),
            finished_at=now,
        )
    )
    return rowcount(done) == 1


def clear_finished_leases(session: Session, before: datetime, batch: int) -> int:
    """Forget who worked on up to ``batch`` chunks finished before ``before`` (the rows
    stay: they hold their mailing's report)."""
    c = MailingChunk
    finished = (
        select(c.id)
        .where(c.status == "done", c.finished_at < before, c.lease_owner.is_not(None))
        .limit(batch)
    )
    clear = update(c).where(c.id.in_(finished)).values(lease_owner=None, lease_until=None)
    return rowcount(session.execute(clear))


_LEASE_STATES = text(
    "SELECT c.status, c.lease_until < :now, count(*) FROM mailing_chunks c "
    "JOIN mailings m ON m.id = c.mailing_id "
    "WHERE m.status = 'sending' AND c.status IN ('pending', 'running') GROUP BY 1, 2"
).bindparams(bindparam("now", type_=UTCDateTime))


def chunk_lease_states(session: Session, now: datetime) -> dict[str, int]:
    """Chunks of the mailings being sent: pending, leased, or leased past the lease's end."""
    states = {"pending": 0, "leased": 0, "expired": 0}
    for status, expired, n in session.execute(_LEASE_STATES, {"now": now}):
        state = "pending" if status == "pending" else "expired" if expired else "leased"
        states[state] += int(n)
    return states


@dataclass
class ChunkTotals:
    """A mailing's chunks summed: how many, how many done, rendered, skipped and why, and
    how many recipients were resent (each had a failed message before)."""

    chunks: int = 0
    done: int = 0
    rendered: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    resent: int = 0


def chunk_totals(session: Session, mailing_ids: Sequence[int]) -> dict[int, ChunkTotals]:
    """Every listed mailing's chunks summed, in one statement (a few rows per thousand
    recipients)."""
    out = {mid: ChunkTotals() for mid in mailing_ids}
    if not mailing_ids:
        return out
    rows = session.execute(
        select(
            MailingChunk.mailing_id,
            MailingChunk.status,
            MailingChunk.rendered,
            MailingChunk.skipped,
            MailingChunk.skipped_reasons,
            MailingChunk.round,
            MailingChunk.last_seq - MailingChunk.first_seq + 1,
        ).where(MailingChunk.mailing_id.in_(list(mailing_ids)))
    )
    for mailing_id, status, rendered, skipped, reasons, round_, size in rows:
        totals = out[mailing_id]
        totals.chunks += 1
        totals.resent += size if round_ else 0
        totals.done += status == "done"
        totals.rendered += rendered
        totals.skipped += skipped
        if reasons:
            totals.reasons.update(json.loads(reasons))
    return out


# --- recipients -------------------------------------------------------------------------

_RECIPIENTS = RawSQL.of(
    "SELECT c.id, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.attributes, "
    "c.erased_at IS NOT NULL FROM mailing_recipients r JOIN customers c ON c.id = r.customer_id "
    "WHERE r.mailing_id = :mailing_id AND r.seq BETWEEN :first AND :last ORDER BY r.seq"
)


def recipients(session: Session, chunk: MailingChunk) -> list[Any]:
    """The chunk's customers as plain tuples (id, external id, email, phone, first and
    last name, attributes, whether erased): a chunk only reads them, and ORM objects
    (even SQLAlchemy rows) cost about as much to load as rendering a message."""
    return Driver.of(session).all(
        _RECIPIENTS,
        {"mailing_id": chunk.mailing_id, "first": chunk.first_seq, "last": chunk.last_seq},
    )


# --- campaigns --------------------------------------------------------------------------


def get_campaign(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def add_campaign(session: Session, campaign: Campaign) -> Campaign:
    session.add(campaign)
    session.flush()
    return campaign


def live_campaigns(session: Session) -> list[Campaign]:
    """The campaigns not deleted, oldest first."""
    stmt = select(Campaign).where(Campaign.archived_at.is_(None))
    return list(session.scalars(stmt.order_by(Campaign.id)))


def archived_campaigns(session: Session) -> list[Campaign]:
    """The deleted (archived) campaigns, the latest deleted first."""
    stmt = select(Campaign).where(Campaign.archived_at.is_not(None))
    return list(session.scalars(stmt.order_by(Campaign.archived_at.desc(), Campaign.id)))


def active_campaigns_on(session: Session, event: str) -> list[Campaign]:
    stmt = select(Campaign).where(
        Campaign.event == event, Campaign.active.is_(True), Campaign.archived_at.is_(None)
    )
    return list(session.scalars(stmt))


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
