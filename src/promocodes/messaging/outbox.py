"""Reading the outbox: the stored messages of a mailing or a campaign, page by page, and
their CSV export (safe to open in a spreadsheet).

Messages carry issued codes, so an export is audited (``export.messages``) before its
first row, as a code export is; browsing is not, as a customer profile is not. An export
reads ``EXPORT_PAGE`` messages a page (``Database.pages``: each its own short read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from promocodes import csvexport
from promocodes.audit.service import Actor, Target, record
from promocodes.messaging import campaigns, mailings
from promocodes.messaging import message_repository as repo
from promocodes.messaging.delivery import message_id
from promocodes.messaging.models import MESSAGE_STATUSES, Message
from promocodes.messaging.schemas import MessageOut

STATUSES = MESSAGE_STATUSES
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


def source_name(session: Session, source: Source) -> str:
    """The mailing's or campaign's name (a deleted campaign's messages stay readable);
    NotFound when it never existed."""
    if source.kind == "mailing":
        return mailings.get(session, source.id).name
    campaign = campaigns.get_any(session, source.id)
    return campaign.name + (" (deleted)" if campaign.archived_at else "")


def page(
    session: Session,
    source: Source,
    *,
    domain: str,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
    """Up to ``limit`` messages of the source after ``after_id``, in id (creation) order."""
    rows = repo.page(session, source.kind, source.id, status=status, after_id=after_id, limit=limit)
    return [out(m, external_id, domain) for m, external_id in rows]


def record_export(session: Session, source: Source, *, status: str | None, actor: Actor) -> None:
    """Audit an export before any row streams (a partly streamed export has still
    disclosed codes); NotFound, and nothing recorded, when the source does not exist."""
    name = source_name(session, source)
    record(
        session, actor, "export.messages", Target(source.kind, source.id, name), {"status": status}
    )


def export_page(
    session: Session, source: Source, *, domain: str, status: str | None, after_id: int | None
) -> list[MessageOut]:
    """One page of an export (``EXPORT_PAGE`` messages)."""
    return page(session, source, domain=domain, status=status, after_id=after_id, limit=EXPORT_PAGE)


def csv_chunks(pages: Iterable[Sequence[MessageOut]]) -> Iterator[str]:
    """The export as CSV text, a chunk per page. Every text cell a customer or a
    template could have written is made formula-safe."""
    return csvexport.chunks(EXPORT_COLUMNS, pages, _cells)


def _cells(m: MessageOut) -> list[str]:
    safe = csvexport.safe
    return [
        m.message_id,
        *(safe(v or "") for v in (m.customer_id, m.channel, m.recipient, m.status)),
        m.skip_reason or "",
        *(safe(v or "") for v in (m.error, m.subject, m.body_text, m.body_html)),
        csvexport.iso(m.created_at),
        csvexport.iso(m.sent_at),
    ]


def redact_customer(session: Session, customer_id: int) -> int:
    """An erased customer's messages keep their place in every report (status, codes,
    times) but no longer say to whom or what: returns how many were redacted."""
    return repo.redact_customer(session, customer_id)
