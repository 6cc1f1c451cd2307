"""Sending a mailing, chunk by chunk: lease a chunk, render each of its messages with
codes reserved in bulk, and record codes, messages and "done" together; and a mailing's
progress, read from its chunks and messages.

Exactly-once: a chunk's work is one transaction, fenced by its lease — the final UPDATE
to "done" must still find this worker's lease, or everything rolls back. A worker that
dies mid-chunk leaves nothing behind; the chunk is leased again when its lease expires.
The message key (and the issuances keyed by it) makes a second copy impossible even if
two workers ever raced through the same chunk.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from promocodes.codes.reservation import Reservation
from promocodes.messaging import message_repository as messages
from promocodes.messaging import repository as repo
from promocodes.messaging import worker_repository as workers
from promocodes.messaging.models import Mailing, MailingChunk
from promocodes.messaging.rendering import MessageTemplate, Rendered, RenderSkip, render
from promocodes.messaging.templates import client_of, source_of
from promocodes.models import sqlite_timestamp, utcnow


class LeaseLost(Exception):
    """Another worker took the chunk over (our lease expired): our work must not commit."""


def lease_chunk(
    session: Session, owner: str, lease: timedelta, stale_after: timedelta
) -> MailingChunk | None:
    """Lease the next chunk to send (a short transaction of its own, so others see it):
    a pending one, or one whose lease ran out or whose holder has been silent for
    ``stale_after`` (dead: see ``worker_repository``)."""
    now = utcnow()
    return repo.lease_next_chunk(session, owner, now, lease, now - stale_after)


def beat(session: Session, owner: str) -> None:
    """The worker ``owner`` is alive."""
    workers.beat(session, owner, utcnow())


def leave(session: Session, owner: str) -> None:
    """The worker ``owner`` stops cleanly."""
    workers.leave(session, owner)


def forget_silent_workers(session: Session, before: datetime) -> int:
    return workers.forget_silent(session, before)


def get_chunk(session: Session, chunk_id: int) -> MailingChunk:
    chunk = repo.get_chunk(session, chunk_id)
    assert chunk is not None, "a leased chunk is never removed"
    return chunk


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient of a chunk: the customer's fields a message needs."""

    id: int
    external_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any] | None
    erased: bool

    @staticmethod
    def of(row: tuple[Any, ...]) -> Recipient:
        customer_id, external_id, email, phone, first_name, last_name, attributes, erased = row
        # JSON text on SQLite; psycopg may already have decoded it.
        if isinstance(attributes, str):
            attributes = json.loads(attributes) if attributes != "{}" else {}
        return Recipient(
            customer_id, external_id, email, phone, first_name, last_name, attributes, bool(erased)
        )


@dataclass
class ChunkResult:
    rendered: int
    skipped: Counter[str]


def process_chunk(session: Session, chunk: MailingChunk, owner: str) -> ChunkResult:
    """Render and record every message of a leased chunk, in the caller's transaction."""
    mailing = repo.get_mailing(session, chunk.mailing_id)
    assert mailing is not None
    template = MessageTemplate(mailing.subject, mailing.body_text, mailing.body_html)
    recipients = [Recipient.of(row) for row in repo.recipients(session, chunk)]
    now = utcnow()
    codes = Reservation(
        session,
        [r.id for r in recipients],
        source="mailing",
        source_ref=str(mailing.id),
        now=now,
    )
    rows = _Rows(session, mailing, chunk.round, now)
    skipped: Counter[str] = Counter()
    # Read once: ORM attribute access costs as much as a short render's bookkeeping.
    prefix, smtp, cancelled = f"m{mailing.id}.", mailing.channel == "smtp", mailing.cancel_requested
    # A resend's message is a new message, with a key (and codes) of its own.
    suffix = f".r{chunk.round}" if chunk.round else ""
    for customer in recipients:
        key = f"{prefix}{customer.id}{suffix}"
        reason: str | None = None
        detail: str | None = None
        if customer.erased:
            reason = "customer-erased"  # a segment may select them; they get nothing new
        elif smtp and not customer.email:
            reason = "no-email"
        elif cancelled:
            reason = "cancelled"
        else:
            held = codes.message(key, customer.id)
            try:
                rendered = render(template, client_of(customer), source_of(held))
            except RenderSkip as skip:
                held.give_back()
                reason, detail = skip.reason, skip.summary
            except SQLAlchemyError:
                raise  # the database, not this recipient: the chunk rolls back and retries
            except Exception as exc:  # a poison recipient fails alone, the chunk goes on
                held.give_back()
                rows.failed(key, customer, f"{type(exc).__name__}: {exc}"[:500])
                continue
            else:
                held.keep()
        if reason is not None:
            skipped[reason] += 1
            rows.skipped(key, customer, reason, detail)
        else:
            rows.rendered(key, customer, rendered)
    codes.finish()
    messages.insert_rows(session, rows.messages)
    # A recipient whose render failed counts as processed (its message row says failed).
    rendered_count = len(recipients) - sum(skipped.values())
    if not repo.finish_chunk(
        session, chunk.id, owner, skipped=skipped, rendered=rendered_count, now=utcnow()
    ):
        raise LeaseLost(f"chunk {chunk.id} was taken over by another worker")
    return ChunkResult(rendered_count, skipped)


class _Rows:
    """A chunk's message rows as ``message_repository.insert_rows`` takes them. Every
    row of a chunk shares one timestamp, converted once for the driver."""

    def __init__(self, session: Session, mailing: Mailing, round_: int, now: datetime) -> None:
        self.mailing_id = mailing.id
        self.channel = mailing.channel
        self.round = round_
        postgres = session.get_bind().dialect.name == "postgresql"
        self.now: datetime | str = now if postgres else sqlite_timestamp(now)
        self.messages: list[messages.MessageRow] = []

    def skipped(self, key: str, customer: Recipient, reason: str, detail: str | None) -> None:
        self.messages.append(
            (key, self.mailing_id, customer.id, self.channel, customer.email, "skipped", reason,
             detail, None, None, None, 0, self.now, None, None, self.round)
        )  # fmt: skip

    def failed(self, key: str, customer: Recipient, error: str) -> None:
        self.messages.append(
            (key, self.mailing_id, customer.id, self.channel, customer.email, "failed", None,
             error, None, None, None, 0, self.now, None, None, self.round)
        )  # fmt: skip

    def rendered(self, key: str, customer: Recipient, message: Rendered) -> None:
        outbox = self.channel == "outbox"
        self.messages.append(
            (key, self.mailing_id, customer.id, self.channel, customer.email,
             "sent" if outbox else "queued", None, None, message.subject, message.body_text,
             message.body_html, 0, self.now, self.now if outbox else None,
             None if outbox else self.now, self.round)
        )  # fmt: skip


# --- progress ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send of a mailing: the first (round 0) or a resend of its failed recipients,
    with that round's messages by status."""

    round: int
    started_at: datetime | None
    recipients: int
    sent: int
    failed: int
    queued: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Progress:
    """Where each recipient stands: by their latest message (a resent recipient's failed
    message is superseded by the resend's), and every attempt on its own."""

    rendered: int
    skipped: int
    skipped_reasons: dict[str, int]
    queued: int
    sent: int
    failed: int
    chunks: int
    chunks_done: int
    attempts: list[Attempt]


def progress(session: Session, mailing_ids: Sequence[int]) -> dict[int, Progress]:
    """Each mailing's progress from its chunks (a few rows per thousand recipients), its
    messages by status and its resends: three statements, however many mailings."""
    chunks = repo.chunk_totals(session, mailing_ids)
    by_status = messages.counts_by_status(session, "mailing", mailing_ids)
    rounds = repo.round_counts(session, mailing_ids)
    out = {}
    for mid in mailing_ids:
        c, statuses, resent = chunks[mid], by_status[mid], chunks[mid].resent
        out[mid] = Progress(
            rendered=c.rendered - resent,
            skipped=c.skipped,
            skipped_reasons=dict(c.reasons),
            queued=statuses.get("queued", 0),
            sent=statuses.get("sent", 0),
            failed=statuses.get("failed", 0) - resent,
            chunks=c.chunks,
            chunks_done=c.done,
            attempts=_attempts(statuses, rounds[mid]),
        )
    return out


def _attempts(statuses: dict[str, int], rounds: list[repo.RoundCounts]) -> list[Attempt]:
    """The resends as counted, and the first send as everything else."""
    if not rounds:
        return []
    first = Counter(statuses)
    for r in rounds:
        first.subtract(r.by_status)
    resends = [(r.round, r.created_at, r.recipients, r.by_status) for r in rounds]
    return [
        Attempt(n, at, size, s.get("sent", 0), s.get("failed", 0), s.get("queued", 0),
                s.get("skipped", 0))
        for n, at, size, s in [(0, None, sum(first.values()), dict(first)), *resends]
    ]  # fmt: skip


def forget_leases(session: Session, before: datetime, batch: int) -> int:
    """Clear who held up to ``batch`` chunks finished before ``before``; the chunks stay
    (they hold their mailing's report)."""
    return repo.clear_finished_leases(session, before, batch)


@dataclass(frozen=True, slots=True)
class Sending:
    """A mailing being sent, with its progress."""

    id: int
    name: str
    total: int
    progress: Progress


def sending(session: Session) -> list[Sending]:
    """The mailings being sent now, with their progress (three statements in all)."""
    found = repo.sending_mailings(session)
    progress_of = progress(session, [mid for mid, _, _ in found])
    return [Sending(mid, name, total, progress_of[mid]) for mid, name, total in found]


def chunk_states(session: Session) -> dict[str, int]:
    """Chunks of the mailings being sent: waiting (pending), leased by a worker, or
    leased by one that stopped renewing (expired: another worker will take it over)."""
    return repo.chunk_lease_states(session, utcnow())


def backlog(session: Session) -> dict[tuple[str, str], int]:
    """(channel, status) -> messages waiting for delivery (queued) or failed for good."""
    return messages.waiting_by_channel(session)
