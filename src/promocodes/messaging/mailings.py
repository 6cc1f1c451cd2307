"""Mailings: compose, check stock, preview, send (freeze recipients, cut chunks), cancel.

The sending itself is the workers' (``chunks.py``); this module only changes a mailing's
state and reads its progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from promocodes.codes.repository import counts
from promocodes.customers import service as customers
from promocodes.customers.models import Customer
from promocodes.errors import Conflict, NotFound, ValidationFailed
from promocodes.messaging import chunks
from promocodes.messaging.models import Mailing, MailingChunk, MailingRecipient
from promocodes.messaging.rendering import MessageTemplate, Rendered, group_key, preview
from promocodes.messaging.schemas import MailingCreate, MailingOut, MailingUpdate, StockCheck
from promocodes.messaging.templates import client_of, live_groups, require_valid
from promocodes.models import utcnow
from promocodes.segments import service as segments
from promocodes.segments.filters import to_sql

EDITABLE = ("draft", "scheduled")
SAMPLE_CLIENT: dict[str, object] = {
    "customer_id": "sample",
    "email": "sample@example.com",
    "phone": None,
    "first_name": "Sam",
    "last_name": "Sample",
    "attributes": {},
}


class MailingNotFound(NotFound):
    slug = "mailing-not-found"
    title = "Mailing not found"


class StockShort(Conflict):
    slug = "stock-short"
    title = "Not enough codes for the whole segment"


def template_of(m: Mailing) -> MessageTemplate:
    return MessageTemplate(m.subject, m.body_text, m.body_html)


def get(session: Session, mailing_id: int) -> Mailing:
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise MailingNotFound(f"mailing {mailing_id} does not exist")
    return mailing


def create(session: Session, data: MailingCreate) -> Mailing:
    # Locked until commit: a deletion of the segment then waits and sees this mailing.
    segments.get(session, data.segment_id, lock=True)
    require_valid(session, MessageTemplate(data.subject, data.body_text, data.body_html))
    mailing = Mailing(**data.model_dump())
    session.add(mailing)
    session.flush()
    return mailing


def update(session: Session, mailing_id: int, data: MailingUpdate) -> Mailing:
    mailing = get(session, mailing_id)
    if mailing.status not in EDITABLE:
        raise Conflict(f"mailing {mailing_id} is {mailing.status}; only drafts can be edited")
    for field in data.model_fields_set:
        setattr(mailing, field, getattr(data, field))
    if mailing.segment_id is None or mailing.name is None:
        raise ValidationFailed("name and segment_id cannot be removed")
    segments.get(session, mailing.segment_id, lock=True)
    require_valid(session, template_of(mailing))
    session.flush()
    return mailing


def to_out(session: Session, mailing: Mailing) -> MailingOut:
    p = chunks.progress(session, mailing.id)
    return MailingOut(
        id=mailing.id,
        name=mailing.name,
        segment_id=mailing.segment_id,
        channel=mailing.channel,
        subject=mailing.subject,
        body_text=mailing.body_text,
        body_html=mailing.body_html,
        status=mailing.status,
        send_at=mailing.send_at,
        total=mailing.total,
        rendered=p["rendered"],
        sent=p["sent"],
        skipped=p["skipped"],
        failed=p["failed"],
        skipped_reasons=p["skipped_reasons"],
        created_at=mailing.created_at,
        started_at=mailing.started_at,
        finished_at=mailing.finished_at,
    )


def list_mailings(session: Session, limit: int = 100) -> list[Mailing]:
    return list(session.scalars(select(Mailing).order_by(Mailing.id.desc()).limit(limit)))


def stock_check(session: Session, mailing: Mailing) -> list[StockCheck]:
    """For each group the templates issue from: the segment's size against the group's
    active codes (the most a mailing could need; a branch not taken needs less)."""
    validation = require_valid(session, template_of(mailing))
    needed = segments.count(session, segments.tree_of(segments.get(session, mailing.segment_id)))
    groups = live_groups(session)
    found = [groups[group_key(n)] for n in validation.initial_groups if group_key(n) in groups]
    active = counts(session, [g.id for g in found])
    return [
        StockCheck(
            group_id=g.id,
            name=g.name,
            needed=needed,
            active=active[g.id].active,
            enough=active[g.id].active >= needed,
        )
        for g in found
    ]


def preview_message(session: Session, mailing: Mailing, customer_id: str | None) -> Rendered:
    client = client_of(customers.get(session, customer_id)) if customer_id else SAMPLE_CLIENT
    return preview(template_of(mailing), client)


def send(
    session: Session,
    mailing_id: int,
    *,
    allow_partial: bool = False,
    when: datetime | Literal["now"] | None = None,
) -> Mailing:
    """Start sending now, or schedule it for ``send_at``. Refused when some group cannot
    cover the segment, unless ``allow_partial`` (then the rest are skipped with reason).
    ``when`` overrides the stored ``send_at``: ``"now"``, or a time that must be ahead."""
    mailing = get(session, mailing_id)
    if mailing.status not in EDITABLE:
        raise Conflict(f"mailing {mailing_id} is already {mailing.status}")
    if when == "now":
        mailing.send_at = None
    elif when is not None:
        if when <= utcnow():
            raise ValidationFailed("the time to send must be in the future")
        mailing.send_at = when
    short = [c for c in stock_check(session, mailing) if not c.enough]
    if short and not allow_partial:
        raise StockShort(
            "; ".join(
                f"group {c.name!r} has {c.active:,} active codes for {c.needed:,} recipients"
                for c in short
            )
            + ". Upload more codes, or send with allow_partial to skip the rest.",
            groups=[c.model_dump() for c in short],
        )
    mailing.allow_partial = allow_partial
    if mailing.send_at is not None and mailing.send_at > utcnow():
        mailing.status = "scheduled"
    else:
        start(session, mailing)
    session.flush()
    return mailing


def start(session: Session, mailing: Mailing) -> None:
    """Freeze the recipients (one INSERT … SELECT from the segment's query) and cut them
    into chunks for the workers."""
    where = to_sql(
        segments.tree_of(segments.get(session, mailing.segment_id)), session.get_bind().dialect.name
    )
    session.execute(
        insert(MailingRecipient).from_select(
            ["mailing_id", "seq", "customer_id"],
            select(
                literal(mailing.id), func.row_number().over(order_by=Customer.id), Customer.id
            ).where(where),
        )
    )
    total = (
        session.scalar(select(func.count()).where(MailingRecipient.mailing_id == mailing.id)) or 0
    )
    size = mailing.chunk_size
    if total:
        session.execute(
            insert(MailingChunk),
            [
                {
                    "mailing_id": mailing.id,
                    "first_seq": first,
                    "last_seq": min(first + size - 1, total),
                    "status": "pending",
                    "attempts": 0,
                    "rendered": 0,
                    "skipped": 0,
                }
                for first in range(1, total + 1, size)
            ],
        )
    mailing.total = total
    mailing.status = "sending" if total else "sent"
    mailing.started_at = utcnow()
    if not total:
        mailing.finished_at = mailing.started_at


def cancel(session: Session, mailing_id: int) -> Mailing:
    """Stop a mailing: chunks already claimed finish, no new chunk starts."""
    mailing = get(session, mailing_id)
    if mailing.status in ("sent", "cancelled", "failed"):
        raise Conflict(f"mailing {mailing_id} is already {mailing.status}")
    mailing.status = "cancelled"
    mailing.finished_at = utcnow()
    session.flush()
    return mailing


def start_due(session: Session, now: datetime) -> int:
    """Start the scheduled mailings whose time has come."""
    due = list(
        session.scalars(
            select(Mailing).where(Mailing.status == "scheduled", Mailing.send_at <= now)
        )
    )
    for mailing in due:
        start(session, mailing)
    return len(due)


def finalize(session: Session) -> int:
    """Mark sent the sending mailings whose chunks are all done. A separate pass rather
    than the last chunk's job: two last chunks committing at once could each still see
    the other running."""
    open_chunks = select(MailingChunk.id).where(
        MailingChunk.mailing_id == Mailing.id, MailingChunk.status != "done"
    )
    finished = list(
        session.scalars(select(Mailing).where(Mailing.status == "sending", ~open_chunks.exists()))
    )
    for mailing in finished:
        mailing.status = "sent"
        mailing.finished_at = utcnow()
    return len(finished)
