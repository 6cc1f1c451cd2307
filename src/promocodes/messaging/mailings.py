"""Mailings: compose, check stock, preview, send (freeze recipients, cut chunks), cancel,
and the segments they were sent to.

The sending itself is the workers' (``service.py``); this module only changes a
mailing's state and reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from promocodes.config import Settings
from promocodes.errors import Conflict, NotFound, ValidationFailed
from promocodes.messaging import message_repository as messages
from promocodes.messaging import repository as repo
from promocodes.messaging import service
from promocodes.messaging.check import Check, GroupCheck, check
from promocodes.messaging.delivery import ChannelNotConfigured
from promocodes.messaging.models import Mailing
from promocodes.messaging.rendering import MessageTemplate, Rendered
from promocodes.messaging.schemas import (
    AttemptOut,
    MailingCreate,
    MailingOut,
    MailingUpdate,
    StockCheck,
)
from promocodes.messaging.templates import preview_for, require_valid
from promocodes.models import utcnow
from promocodes.segments import service as segments
from promocodes.segments.models import Segment

EDITABLE = ("draft", "scheduled")


class MailingNotFound(NotFound):
    slug = "mailing-not-found"
    title = "Mailing not found"


class StockShort(Conflict):
    slug = "stock-short"
    title = "Not enough codes for the whole segment"


def require_channel(settings: Settings, mailing: Mailing) -> None:
    """Refuse to start a mailing whose messages could not be delivered: its codes would
    be issued only to come back."""
    if problem := settings.channel_problem(mailing.channel):
        raise ChannelNotConfigured(
            f"mailing {mailing.name!r} goes by {mailing.channel}, but {problem}. "
            "Configure it, or send the mailing by another channel."
        )


def template_of(m: Mailing) -> MessageTemplate:
    return MessageTemplate(m.subject, m.body_text, m.body_html)


def get(session: Session, mailing_id: int) -> Mailing:
    mailing = repo.get_mailing(session, mailing_id)
    if mailing is None:
        raise MailingNotFound(f"mailing {mailing_id} does not exist")
    return mailing


def create(session: Session, data: MailingCreate) -> Mailing:
    # Locked until commit: a deletion of the segment then waits and sees this mailing.
    segments.get(session, data.segment_id, lock=True)
    require_valid(session, MessageTemplate(data.subject, data.body_text, data.body_html))
    return repo.add_mailing(session, Mailing(**data.model_dump()))


def update(session: Session, mailing_id: int, data: MailingUpdate) -> Mailing:
    mailing = get(session, mailing_id)
    if mailing.status not in EDITABLE:
        raise Conflict(f"mailing {mailing_id} is {mailing.status}; only drafts can be edited")
    fields = data.model_fields_set
    segment_id = data.segment_id if "segment_id" in fields else mailing.segment_id
    if segment_id is not None:
        # Before the mailing changes: the look-up flushes it, and a segment that does not
        # exist was then a foreign-key error (a 500) instead of this 404.
        segments.get(session, segment_id, lock=True)
    for field in fields:
        setattr(mailing, field, getattr(data, field))
    if mailing.segment_id is None or mailing.name is None:
        raise ValidationFailed("name and segment_id cannot be removed")
    require_valid(session, template_of(mailing))
    session.flush()
    return mailing


def to_out(session: Session, mailing: Mailing) -> MailingOut:
    return to_outs(session, [mailing])[0]


def to_outs(session: Session, mailings: Sequence[Mailing]) -> list[MailingOut]:
    """Mailings as the API and the pages show them, with their progress: the same two
    statements for one mailing or a whole list."""
    progress = service.progress(session, [m.id for m in mailings])
    return [
        MailingOut(
            id=m.id,
            name=m.name,
            segment_id=m.segment_id,
            channel=m.channel,
            subject=m.subject,
            body_text=m.body_text,
            body_html=m.body_html,
            status=m.status,
            send_at=m.send_at,
            total=m.total,
            rendered=progress[m.id].rendered,
            sent=progress[m.id].sent,
            skipped=progress[m.id].skipped,
            failed=progress[m.id].failed,
            skipped_reasons=progress[m.id].skipped_reasons,
            created_at=m.created_at,
            started_at=m.started_at,
            finished_at=m.finished_at,
            attempts=[
                AttemptOut(
                    round=a.round,
                    started_at=a.started_at if a.round else m.started_at,
                    recipients=a.recipients,
                    sent=a.sent,
                    failed=a.failed,
                    queued=a.queued,
                    skipped=a.skipped,
                )
                for a in progress[m.id].attempts
            ],
        )
        for m in mailings
    ]


@dataclass(frozen=True, slots=True)
class SkipDetail:
    """Why some of a mailing's recipients were skipped, in words: the reason, what
    happened and where in the template (``body_text line 4: …``), and how many."""

    reason: str
    detail: str | None
    count: int


def skip_details(session: Session, mailing_id: int, limit: int = 50) -> list[SkipDetail]:
    """The mailing's skips grouped by reason and cause, the most frequent first."""
    get(session, mailing_id)
    rows = messages.skip_details(session, mailing_id, limit)
    return [SkipDetail(reason, detail, count) for reason, detail, count in rows]


def list_mailings(session: Session, limit: int = 100) -> list[Mailing]:
    """The newest mailings first."""
    return repo.newest_mailings(session, limit)


def stock_check(session: Session, mailing: Mailing) -> Check:
    """Whether each group the template draws from covers the segment, from a dry run
    over a sample of it (messaging/check.py)."""
    return check(session, mailing)


def group_out(c: GroupCheck) -> dict[str, object]:
    """A group's check as the API shows it (also in a stock-short problem)."""
    return StockCheck(
        group_id=c.group_id,
        name=c.name,
        needed=c.needed,
        active=c.active,
        enough=c.enough,
        drawing=c.drawing,
        closed=c.closed,
    ).model_dump()


def preview_message(session: Session, mailing: Mailing, customer_id: str | None) -> Rendered:
    """The mailing's message for the customer (or the sample one), codes aside."""
    return preview_for(session, template_of(mailing), customer_id)


def send(
    session: Session,
    mailing_id: int,
    *,
    settings: Settings,
    allow_partial: bool = False,
    when: datetime | Literal["now"] | None = None,
) -> Mailing:
    """Start sending now, or schedule it for ``send_at``. Refused when its channel is not
    configured, and when some group cannot cover the segment, unless ``allow_partial``
    (then the rest are skipped with reason). ``when`` overrides the stored ``send_at``:
    ``"now"``, or a time that must be ahead."""
    mailing = get(session, mailing_id)
    if mailing.status not in EDITABLE:
        raise Conflict(f"mailing {mailing_id} is already {mailing.status}")
    require_channel(settings, mailing)
    if when == "now":
        mailing.send_at = None
    elif when is not None:
        if when <= utcnow():
            raise ValidationFailed("the time to send must be in the future")
        mailing.send_at = when
    checked = stock_check(session, mailing)
    if checked.short and not allow_partial:
        estimate = f" (estimated from a sample of {checked.sample:,})" if checked.estimated else ""
        raise StockShort(
            "; ".join(
                f"{c.closed}: none of its codes can be sent to the {c.needed:,} recipients"
                if c.closed
                else f"group {c.name!r} has {c.active:,} usable codes for {c.needed:,} recipients"
                for c in checked.short
            )
            + f"{estimate}. Upload more codes, or send with allow_partial to skip the rest.",
            groups=[group_out(c) for c in checked.short],
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
    where = segments.where_of(session, segments.get(session, mailing.segment_id))
    total = repo.freeze_recipients(session, mailing.id, where)
    repo.add_chunks(session, mailing.id, 1, total, mailing.chunk_size)
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


def start_due(session: Session, now: datetime, settings: Settings) -> int:
    """Start the scheduled mailings whose time has come. One whose channel stopped being
    configured since it was scheduled fails, with the reason, before issuing anything."""
    due = repo.due_mailings(session, now)
    for mailing in due:
        if problem := settings.channel_problem(mailing.channel):
            mailing.status, mailing.error, mailing.finished_at = "failed", problem, now
        else:
            start(session, mailing)
    return len(due)


def finalize(session: Session) -> int:
    """Mark sent the sending mailings whose chunks are all done. A separate pass rather
    than the last chunk's job: two last chunks committing at once could each still see
    the other running."""
    finished = repo.finished_mailings(session)
    for mailing in finished:
        mailing.status = "sent"
        mailing.finished_at = utcnow()
    return len(finished)


# --- the segments mailings were made for ----------------------------------------------

# Mailings that have not frozen their recipients yet: they read their segment when sent.
WAITING = ("draft", "scheduled")


class SegmentInUse(Conflict):
    slug = "segment-in-use"
    title = "Segment in use"


@dataclass(frozen=True, slots=True)
class SegmentDeletion:
    """What deleting a segment does: ``removed`` when no mailing was made for it,
    ``archived`` when only mailings that started were (their reports still name it);
    ``blocked_by`` lists the drafts and scheduled mailings that still need it."""

    outcome: Literal["removed", "archived"]
    blocked_by: list[tuple[int, str]]


def segment_deletion(session: Session, segment: Segment) -> SegmentDeletion:
    using = repo.mailings_of_segment(session, segment.id)
    blocked = [(i, name) for i, name, status in using if status in WAITING]
    return SegmentDeletion("archived" if using else "removed", blocked)


def delete_segment(session: Session, segment_id: int) -> Literal["removed", "archived"]:
    """Delete a segment, never a mailing's history: a segment a mailing was sent to is
    archived (hidden, its name free again); one no mailing used is removed. A draft or
    scheduled mailing still needs its segment, so those are named in a Conflict.

    The segment is locked first (FOR UPDATE on PostgreSQL), as creating or editing a
    mailing locks it: either this sees the new mailing or the mailing sees it gone."""
    segment = segments.get(session, segment_id, lock=True)
    plan = segment_deletion(session, segment)
    if plan.blocked_by:
        names = ", ".join(f"{name!r} (id {i})" for i, name in plan.blocked_by)
        raise SegmentInUse(
            f"segment {segment.name!r} is used by mailings not sent yet: {names}; "
            "give them another segment, or delete them, first"
        )
    if plan.outcome == "archived":
        segments.archive(session, segment)
    else:
        segments.remove(session, segment)
    return plan.outcome
