"""Triggered campaigns: an event for a customer renders and queues one message per active
campaign on that event, issuing codes through the same single-claim path as the API."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from promocodes.codes.issuance import GroupsByName, IssuedCodes
from promocodes.customers.models import Customer
from promocodes.errors import NotFound
from promocodes.messaging import message_repository as messages
from promocodes.messaging import repository as repo
from promocodes.messaging.models import Campaign, Message
from promocodes.messaging.rendering import MessageTemplate, Rendered, RenderSkip, render
from promocodes.messaging.schemas import CampaignIn, CampaignOut, CampaignUpdate
from promocodes.messaging.templates import client_of, preview_for, require_valid, source_of
from promocodes.models import utcnow


class CampaignNotFound(NotFound):
    slug = "campaign-not-found"
    title = "Campaign not found"


def get(session: Session, campaign_id: int) -> Campaign:
    """A campaign that was not deleted."""
    campaign = get_any(session, campaign_id)
    if campaign.archived_at is not None:
        raise CampaignNotFound(f"campaign {campaign_id} does not exist")
    return campaign


def get_any(session: Session, campaign_id: int) -> Campaign:
    """A campaign, deleted or not: whose messages these are."""
    campaign = repo.get_campaign(session, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"campaign {campaign_id} does not exist")
    return campaign


def delete(session: Session, campaign_id: int) -> Campaign:
    """Delete a campaign: it stops sending and leaves the lists at once. It is archived,
    never removed: its messages, and the issuances on customer profiles that name it,
    keep pointing at it. (An event already being handled may still send its message.)"""
    campaign = get(session, campaign_id)
    campaign.active = False
    campaign.archived_at = utcnow()
    session.flush()
    return campaign


def create(session: Session, data: CampaignIn) -> Campaign:
    require_valid(session, MessageTemplate(data.subject, data.body_text, data.body_html))
    return repo.add_campaign(session, Campaign(**data.model_dump()))


# Fields a campaign always has: a null in an update leaves them as they are.
_REQUIRED = ("name", "event", "channel", "subject", "active", "creates_customers")


def update(session: Session, campaign_id: int, data: CampaignUpdate) -> Campaign:
    campaign = get(session, campaign_id)
    for field in data.model_fields_set:
        value = getattr(data, field)
        if value is None and field in _REQUIRED:
            continue
        setattr(campaign, field, value)
    require_valid(
        session, MessageTemplate(campaign.subject, campaign.body_text, campaign.body_html)
    )
    session.flush()
    return campaign


def preview_message(session: Session, campaign: Campaign, customer_id: str | None) -> Rendered:
    """The campaign's message for the customer (or the sample one), codes aside."""
    template = MessageTemplate(campaign.subject, campaign.body_text, campaign.body_html)
    return preview_for(session, template, customer_id)


def stats(session: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """campaign id -> status -> messages, for every listed campaign at once."""
    return messages.counts_by_status(session, "campaign", campaign_ids)


def to_out(session: Session, campaign: Campaign) -> CampaignOut:
    return to_outs(session, [campaign])[0]


def to_outs(session: Session, campaigns: Sequence[Campaign]) -> list[CampaignOut]:
    """Campaigns as the API and the pages show them, with their message counts: the same
    statement for one campaign or a whole list."""
    counted = stats(session, [c.id for c in campaigns])
    return [
        CampaignOut(
            id=c.id,
            name=c.name,
            event=c.event,
            channel=c.channel,
            subject=c.subject,
            body_text=c.body_text,
            body_html=c.body_html,
            active=c.active,
            creates_customers=c.creates_customers,
            created_at=c.created_at,
            stats=counted[c.id],
        )
        for c in campaigns
    ]


def list_campaigns(session: Session, *, archived: bool = False) -> list[Campaign]:
    """The campaigns not deleted; with ``archived``, the deleted ones (kept, read-only,
    with their figures and messages)."""
    return repo.archived_campaigns(session) if archived else repo.live_campaigns(session)


def message_key(campaign_id: int, customer_id: int, event_id: str | None) -> str:
    """The message's (and its issuances') idempotency key. Scoped to the customer: an
    ``event_id`` is the integrator's, and two customers' events may share one; were the
    key the event alone, the second customer would be handed the first one's message."""
    return f"c{campaign_id}.u{customer_id}.{_event_hash(event_id or uuid.uuid4().hex)}"


def _event_hash(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


def _legacy_message(
    session: Session, campaign_id: int, customer_id: int, event_id: str
) -> Message | None:
    """A message made before keys named the customer (``c<campaign>.<hash>``): a retry
    of such an event must still get it back rather than a second message and code."""
    legacy = f"c{campaign_id}.{_event_hash(event_id)}"
    return messages.by_key(session, legacy, customer_id=customer_id)


def handle_event(
    session: Session,
    customer: Customer,
    event: str,
    *,
    event_id: str | None = None,
    on_event: Sequence[Campaign] | None = None,
) -> list[Message]:
    """Render and queue the message of every active campaign on ``event`` (``on_event``:
    those campaigns, when the caller has read them already). With an ``event_id`` a
    repeated event returns the messages made the first time."""
    made = []
    groups = GroupsByName(session, utcnow())
    live = repo.active_campaigns_on(session, event) if on_event is None else on_event
    for campaign in live:
        key = message_key(campaign.id, customer.id, event_id)
        existing = _made_before(session, campaign.id, customer.id, key, event_id)
        made.append(existing or _new_message(session, campaign, customer, key, groups))
    return made


def is_retry(
    session: Session, customer: Customer, event_id: str, on_event: Sequence[Campaign]
) -> bool:
    """Whether a campaign of ``on_event`` already answered this ``event_id`` from the
    customer: the event is a retry, and gets the first answer back."""
    return any(
        _made_before(session, c.id, customer.id, message_key(c.id, customer.id, event_id), event_id)
        is not None
        for c in on_event
    )


def _made_before(
    session: Session, campaign_id: int, customer_id: int, key: str, event_id: str | None
) -> Message | None:
    existing = messages.by_key(session, key)
    if existing is None and event_id is not None:
        existing = _legacy_message(session, campaign_id, customer_id, event_id)
    return existing


def _new_message(
    session: Session, campaign: Campaign, customer: Customer, key: str, groups: GroupsByName
) -> Message:
    """The campaign's message to the customer, rendered with codes issued under ``key``
    (or skipped, with the reason), stored."""
    row = Message(
        key=key,
        campaign_id=campaign.id,
        customer_id=customer.id,
        channel=campaign.channel,
        recipient=customer.email,
        attempts=0,
    )
    if campaign.channel == "smtp" and not customer.email:
        row.status, row.skip_reason = "skipped", "no-email"
        return _store(session, row)
    codes = IssuedCodes(
        session, customer, key=key, source="campaign", source_ref=str(campaign.id), groups=groups
    )
    template = MessageTemplate(campaign.subject, campaign.body_text, campaign.body_html)
    try:
        # A failed render must leave no issuance behind: its savepoint rolls them back.
        with session.begin_nested():
            rendered = render(template, client_of(customer), source_of(codes))
    except RenderSkip as skip:
        row.status, row.skip_reason, row.error = "skipped", skip.reason, skip.summary
    else:
        row.subject, row.body_text, row.body_html = (
            rendered.subject,
            rendered.body_text,
            rendered.body_html,
        )
        if campaign.channel == "outbox":
            row.status, row.sent_at = "sent", utcnow()
        else:
            row.status, row.next_attempt_at = "queued", utcnow()
    return _store(session, row)


def _store(session: Session, row: Message) -> Message:
    """Store the message, or hand back the one of its key that a concurrent request (the
    same event, retried at once) stored first: on PostgreSQL both may have found no
    message, and the second insert waits for the first to commit, then collides. The
    codes they carry were issued under the same key, so they are the same."""
    try:
        with session.begin_nested():
            return messages.add(session, row)
    except IntegrityError:
        existing = messages.by_key(session, row.key)
        if existing is None:
            raise
        return existing
