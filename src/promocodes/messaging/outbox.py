"""Reading the outbox: the stored messages of a mailing or a campaign, page by page, and
their CSV export (safe to open in a spreadsheet).

Messages carry issued codes, so an export is audited (``export.messages``) before its
first row, as a code export is; browsing is not, as a customer profile is not.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, select, union_all
from sqlalchemy.orm import Session

from promocodes.audit.service import Actor, Target, record
from promocodes.codes.export import csv_safe
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging import campaigns, mailings
from promocodes.messaging.delivery import message_id
from promocodes.messaging.models import Message

# Every status a message can have (messaging/models.py): queued waits for SMTP or the
# webhook; outbox messages are sent when stored.
STATUSES = ("queued", "sent", "failed", "skipped")
EXPORT_COLUMNS = (
    "message_id",
    "customer_id",
    "channel",
    "recipient",
    "status",
    "skip_reason",
    "error",
    "subject",
    "body_text",
    "body_html",
    "created_at",
    "sent_at",
)
# A rendered body may reach the renderer's output limit (about 1 MB per body), so export
# pages are small: a page holds at most ~200 MB even then, and a few hundred KB usually.
EXPORT_PAGE = 100


@dataclass(frozen=True, slots=True)
class Source:
    """Whose messages: a mailing's or a campaign's."""

    kind: Literal["mailing", "campaign"]
    id: int

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.id}"


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    key: str
    customer_id: str
    channel: str
    recipient: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    status: str
    skip_reason: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None


def row(m: Message, customer_id: str) -> MessageRow:
    """A stored message, with its customer's external id."""
    return MessageRow(
        id=m.id,
        key=m.key,
        customer_id=customer_id,
        channel=m.channel,
        recipient=m.recipient,
        subject=m.subject,
        body_text=m.body_text,
        body_html=m.body_html,
        status=m.status,
        skip_reason=m.skip_reason,
        error=m.error,
        created_at=m.created_at,
        sent_at=m.sent_at,
    )


def check_status(status: str | None) -> str | None:
    """An empty filter means every status; anything else must be one of them."""
    if not status:
        return None
    if status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    return status


def source_name(session: Session, source: Source) -> str:
    """The mailing's or campaign's name (a deleted campaign's messages stay readable);
    NotFound when it never existed."""
    if source.kind == "mailing":
        return mailings.get(session, source.id).name
    campaign = campaigns.get_any(session, source.id)
    return campaign.name + (" (deleted)" if campaign.archived_at else "")


def _range(source: Source, status: str, after_id: int | None, limit: int) -> Select[int]:
    column = Message.mailing_id if source.kind == "mailing" else Message.campaign_id
    stmt = select(Message.id).where(column == source.id, Message.status == status)
    if after_id is not None:
        stmt = stmt.where(Message.id > after_id)
    return stmt.order_by(Message.id).limit(limit)


def page(
    session: Session,
    source: Source,
    *,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MessageRow]:
    """Up to ``limit`` messages of the source after ``after_id``, in id (creation) order.

    The indexes are (mailing_id, status, id) and (campaign_id, status, id): they count a
    report's statuses and keep a status's messages in id order. Without a status filter
    a page merges the first ``limit`` ids of each status's range (a handful of short
    index scans) instead of sorting every message of a million-recipient mailing.
    """
    statuses = (status,) if status else STATUSES
    ranges = [_range(source, s, after_id, limit).subquery().select() for s in statuses]
    merged = (ranges[0] if len(ranges) == 1 else union_all(*ranges)).subquery()
    ids = select(merged.c.id).order_by(merged.c.id).limit(limit).subquery()
    rows = session.execute(
        select(Message, Customer.external_id)
        .join(ids, ids.c.id == Message.id)
        .join(Customer, Customer.id == Message.customer_id)
        .order_by(Message.id)
    )
    return [row(m, external_id) for m, external_id in rows]


def record_export(session: Session, source: Source, *, status: str | None, actor: Actor) -> None:
    """Audit an export before any row streams (a partly streamed export has still
    disclosed codes); NotFound, and nothing recorded, when the source does not exist."""
    name = source_name(session, source)
    record(
        session, actor, "export.messages", Target(source.kind, source.id, name), {"status": status}
    )


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def csv_chunks(db: Database, source: Source, *, status: str | None, domain: str) -> Iterator[str]:
    """The export as CSV text, one chunk per page. Each page is its own short read, so an
    export of a million messages never holds a transaction or all its rows at once.
    Every text cell a customer or a template could have written is made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    after: int | None = None
    while True:
        with db.read() as s:
            rows = page(s, source, status=status, after_id=after, limit=EXPORT_PAGE)
        for r in rows:
            writer.writerow(
                [
                    message_id(r.key, domain),
                    *(csv_safe(v or "") for v in (r.customer_id, r.channel, r.recipient, r.status)),
                    r.skip_reason or "",
                    *(csv_safe(v or "") for v in (r.error, r.subject, r.body_text, r.body_html)),
                    _iso(r.created_at),
                    _iso(r.sent_at),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].id
