"""Triggered campaigns: an event for a customer renders and queues one message per active
campaign on that event, issuing codes through the same single-claim path as the API."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from promocodes.codes import issuance
from promocodes.customers.models import Customer
from promocodes.errors import (
    GroupExhausted,
    GroupExpired,
    GroupNotFound,
    GroupNotYetValid,
    NotFound,
)
from promocodes.messaging.models import Campaign, Message
from promocodes.messaging.rendering import MessageTemplate, RenderSkip, group_key, render
from promocodes.messaging.schemas import CampaignIn, CampaignOut, CampaignUpdate
from promocodes.messaging.templates import client_of, live_groups, require_valid
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
    campaign = session.get(Campaign, campaign_id)
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
    campaign = Campaign(**data.model_dump())
    session.add(campaign)
    session.flush()
    return campaign


def update(session: Session, campaign_id: int, data: CampaignUpdate) -> Campaign:
    campaign = get(session, campaign_id)
    for field in data.model_fields_set:
        value = getattr(data, field)
        if value is None and field in ("name", "event", "channel", "subject", "active"):
            continue
        setattr(campaign, field, value)
    require_valid(
        session, MessageTemplate(campaign.subject, campaign.body_text, campaign.body_html)
    )
    session.flush()
    return campaign


def stats(session: Session, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = session.execute(
        select(Message.campaign_id, Message.status, func.count())
        .where(Message.campaign_id.in_(campaign_ids))
        .group_by(Message.campaign_id, Message.status)
    ).all()
    out: dict[int, dict[str, int]] = {cid: {} for cid in campaign_ids}
    for cid, status, n in rows:
        if cid is not None:
            out[cid][status] = n
    return out


def to_out(session: Session, campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        event=campaign.event,
        channel=campaign.channel,
        subject=campaign.subject,
        body_text=campaign.body_text,
        body_html=campaign.body_html,
        active=campaign.active,
        created_at=campaign.created_at,
        stats=stats(session, [campaign.id])[campaign.id],
    )


def list_campaigns(session: Session) -> list[Campaign]:
    """The campaigns not deleted."""
    stmt = select(Campaign).where(Campaign.archived_at.is_(None))
    return list(session.scalars(stmt.order_by(Campaign.id)))


class _IssuingSource:
    """Each macro call is one exactly-once issuance keyed by the message."""

    def __init__(self, session: Session, customer: Customer, key: str, campaign_id: int) -> None:
        self.session = session
        self.customer = customer
        self.key = key
        self.ref = str(campaign_id)
        self.groups = live_groups(session)

    def _group_id(self, name: str) -> int:
        group = self.groups.get(group_key(name))
        if group is None:
            raise RenderSkip("group-not-found", f"no group named {name!r}")
        return group.id

    def promocode(self, group_name: str) -> str:
        try:
            got = issuance.issue_initial(
                self.session,
                self.customer,
                self._group_id(group_name),
                key=self.key,
                source="campaign",
                source_ref=self.ref,
            )
        except GroupExhausted as exc:
            raise RenderSkip("group-exhausted", exc.detail) from None
        except (GroupExpired, GroupNotYetValid) as exc:
            raise RenderSkip("group-expired", exc.detail) from None
        except GroupNotFound as exc:
            raise RenderSkip("group-not-found", exc.detail) from None
        assert got.code is not None
        return got.code

    def last_promocode(self, group_name: str) -> str | None:
        try:
            return issuance.issue_repeat(
                self.session,
                self.customer,
                self._group_id(group_name),
                key=self.key,
                source="campaign",
                source_ref=self.ref,
            ).code
        except (GroupExpired, GroupNotYetValid) as exc:
            raise RenderSkip("group-expired", exc.detail) from None


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
    return session.scalar(
        select(Message).where(Message.key == legacy, Message.customer_id == customer_id)
    )


def handle_event(
    session: Session,
    customer: Customer,
    event: str,
    *,
    event_id: str | None = None,
) -> list[Message]:
    """Render and queue the message of every active campaign on ``event``. With an
    ``event_id`` a repeated event returns the messages made the first time."""
    messages = []
    campaigns = session.scalars(
        select(Campaign).where(
            Campaign.event == event, Campaign.active.is_(True), Campaign.archived_at.is_(None)
        )
    ).all()
    for campaign in campaigns:
        key = message_key(campaign.id, customer.id, event_id)
        existing = session.scalar(select(Message).where(Message.key == key))
        if existing is None and event_id is not None:
            existing = _legacy_message(session, campaign.id, customer.id, event_id)
        if existing is not None:
            messages.append(existing)
            continue
        client = client_of(customer)
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
            session.add(row)
            session.flush()
            messages.append(row)
            continue
        try:
            # A failed render must leave no issuance behind: its savepoint rolls them back.
            with session.begin_nested():
                rendered = render(
                    MessageTemplate(campaign.subject, campaign.body_text, campaign.body_html),
                    client,
                    _IssuingSource(session, customer, key, campaign.id),
                )
        except RenderSkip as skip:
            row.status, row.skip_reason, row.error = "skipped", skip.reason, skip.detail[:500]
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
        session.add(row)
        session.flush()
        messages.append(row)
    return messages
