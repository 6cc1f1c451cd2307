"""Reading the outbox: the stored messages of a mailing or a campaign, page by page, and
their CSV export (safe to open in a spreadsheet).

Messages carry issued codes, so an export is audited (``export.messages``) before its
first row, as a code export is; browsing is not, as a customer profile is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, select, union_all
from sqlalchemy.orm import Session

from promocodes.audit.service import Actor, Target, record
from promocodes.codes.export import csv_safe, iso, keyset_csv
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging import campaigns, mailings
from promocodes.messaging.delivery import message_id
from promocodes.messaging.models import Message
from promocodes.messaging.schemas import MessageOut

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


def out(m: Message, customer_id: str, domain: str) -> MessageOut:
    """A stored message as the API and the pages show it, with its customer's external
    id and its Message-ID."""
    return MessageOut(
        id=m.id,
        customer_id=customer_id,
        channel=m.channel,
        recipient=m.recipient,
        subject=m.subject,
        body_text=m.body_text,
        body_html=m.body_html,
        status=m.status,
        skip_reason=m.skip_reason,
        error=m.error,
        message_id=message_id(m.key, domain),
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
    domain: str,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
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
    return [out(m, external_id, domain) for m, external_id in rows]


def record_export(session: Session, source: Source, *, status: str | None, actor: Actor) -> None:
    """Audit an export before any row streams (a partly streamed export has still
    disclosed codes); NotFound, and nothing recorded, when the source does not exist."""
    name = source_name(session, source)
    record(
        session, actor, "export.messages", Target(source.kind, source.id, name), {"status": status}
    )


def csv_chunks(db: Database, source: Source, *, status: str | None, domain: str) -> Iterator[str]:
    """The export as CSV text, one chunk per page. Every text cell a customer or a
    template could have written is made formula-safe."""

    def fetch(after: int | None) -> list[MessageOut]:
        with db.read() as s:
            return page(s, source, domain=domain, status=status, after_id=after, limit=EXPORT_PAGE)

    def cells(m: MessageOut) -> list[str]:
        return [
            m.message_id,
            *(csv_safe(v or "") for v in (m.customer_id, m.channel, m.recipient, m.status)),
            m.skip_reason or "",
            *(csv_safe(v or "") for v in (m.error, m.subject, m.body_text, m.body_html)),
            iso(m.created_at),
            iso(m.sent_at),
        ]

    return keyset_csv(EXPORT_COLUMNS, fetch, cells, EXPORT_PAGE)
