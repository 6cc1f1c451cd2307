"""REST routes: templates, mailings, campaigns, events (SPEC §2–3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from promocodes.apikit import (
    PROBLEM_RESPONSES,
    Config,
    Cursor,
    Db,
    Id,
    IdempotencyKey,
    Key,
    Limit,
    Page,
    problems,
    status_query,
)
from promocodes.apilinks import CAMPAIGN_CREATED, MAILING_CREATED
from promocodes.dispatch import OneHopRoute
from promocodes.idempotency import idempotent_session
from promocodes.messaging import campaigns, delivery, events, mailings, outbox, resend
from promocodes.messaging.rendering import MessageTemplate, Rendered
from promocodes.messaging.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignUpdate,
    EventIn,
    EventOut,
    MailingCheckOut,
    MailingCreate,
    MailingOut,
    MailingUpdate,
    MessageOut,
    PreviewIn,
    ProblemItem,
    RenderedOut,
    ResendIn,
    SendIn,
    SkipOut,
    StockCheck,
    TemplateIn,
    TemplatePreviewIn,
    TestSendIn,
    ValidationOut,
)
from promocodes.messaging.templates import check, preview_for
from promocodes.pagination import decode_cursor, split_page, status_filter

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, route_class=OneHopRoute)


@router.post("/templates/validate", tags=["templates"])
def validate_template(body: TemplateIn, key: Key, db: Db) -> ValidationOut:
    with db.read() as s:
        result = check(s, MessageTemplate(body.subject, body.body_text, body.body_html))
    return ValidationOut(
        valid=result.valid,
        errors=[
            ProblemItem(field=p.field, line=p.line, column=p.column, message=p.message)
            for p in result.problems
        ],
        groups=result.groups,
    )


def rendered_out(r: Rendered) -> RenderedOut:
    return RenderedOut(
        subject=r.subject, body_text=r.body_text, body_html=r.body_html, notes=list(r.notes)
    )


@router.post("/templates/preview", tags=["templates"])
def preview_template(body: TemplatePreviewIn, key: Key, db: Db) -> RenderedOut:
    """The message for a customer (or a sample one), with placeholder codes; a template
    that fails for them is a 422 with the reason, the field and the line."""
    template = MessageTemplate(body.subject, body.body_text, body.body_html)
    with db.read() as s:
        return rendered_out(preview_for(s, template, body.customer_id))


# --- mailings -------------------------------------------------------------------------


@router.post("/mailings", status_code=201, tags=["mailings"], responses=MAILING_CREATED)
def create_mailing(body: MailingCreate, key: Key, db: Db) -> MailingOut:
    with db.write() as s:
        return mailings.to_out(s, mailings.create(s, body))


@router.get("/mailings", tags=["mailings"])
def list_mailings(key: Key, db: Db) -> list[MailingOut]:
    with db.read() as s:
        return mailings.to_outs(s, mailings.list_mailings(s))


@router.get("/mailings/{mailing_id}", tags=["mailings"])
def get_mailing(mailing_id: Id, key: Key, db: Db) -> MailingOut:
    with db.read() as s:
        return mailings.to_out(s, mailings.get(s, mailing_id))


@router.patch("/mailings/{mailing_id}", tags=["mailings"])
def update_mailing(mailing_id: Id, body: MailingUpdate, key: Key, db: Db) -> MailingOut:
    with db.write() as s:
        return mailings.to_out(s, mailings.update(s, mailing_id, body))


@router.get("/mailings/{mailing_id}/skips", tags=["mailings"])
def mailing_skips(mailing_id: Id, key: Key, db: Db) -> list[SkipOut]:
    """Why recipients were skipped, grouped by reason and cause (what happened and
    where in the template), the most frequent first."""
    with db.read() as s:
        found = mailings.skip_details(s, mailing_id)
    return [SkipOut(reason=d.reason, detail=d.detail, count=d.count) for d in found]


@router.post("/mailings/{mailing_id}/check", tags=["mailings"])
def check_mailing(mailing_id: Id, key: Key, db: Db) -> MailingCheckOut:
    """Before sending: each group's codes against what the mailing needs, from a dry run
    of the template over a sample of up to 200 recipients spread over the segment
    (placeholder codes; nothing is issued), and which of them would be skipped, and why."""
    with db.read() as s:
        found = mailings.stock_check(s, mailings.get(s, mailing_id))
    return MailingCheckOut(
        recipients=found.recipients,
        sample=found.sample,
        estimated=found.estimated,
        groups=[StockCheck.model_validate(mailings.group_out(g)) for g in found.groups],
        skipped=[
            SkipOut(reason=reason, detail=detail, count=n)
            for (reason, detail), n in found.skipped.most_common()
        ],
    )


@router.post("/mailings/{mailing_id}/preview", tags=["mailings"])
def preview_mailing(mailing_id: Id, body: PreviewIn, key: Key, db: Db) -> RenderedOut:
    with db.read() as s:
        r = mailings.preview_message(s, mailings.get(s, mailing_id), body.customer_id)
    return rendered_out(r)


@router.post("/mailings/{mailing_id}/test", tags=["mailings"], responses=problems(502))
def test_mailing(mailing_id: Id, body: TestSendIn, key: Key, db: Db, cfg: Config) -> RenderedOut:
    """Send the preview (placeholders, no code consumed) to one address by SMTP."""
    with db.read() as s:
        r = mailings.preview_message(s, mailings.get(s, mailing_id), None)
    delivery.send_test(cfg, body.email, r)
    return rendered_out(r)


@router.post("/mailings/{mailing_id}/send", status_code=202, tags=["mailings"])
def send_mailing(mailing_id: Id, body: SendIn, key: Key, db: Db, cfg: Config) -> MailingOut:
    with db.write() as s:
        sent = mailings.send(s, mailing_id, settings=cfg, allow_partial=body.allow_partial)
        return mailings.to_out(s, sent)


@router.post("/mailings/{mailing_id}/resend", status_code=202, tags=["mailings"])
def resend_mailing(
    mailing_id: Id,
    request: Request,
    key: Key,
    db: Db,
    cfg: Config,
    idempotency_key: IdempotencyKey = None,
) -> MailingOut:
    """Send again to every recipient whose latest message failed: a new message each,
    rendered afresh with new codes, as the mailing's next attempt. With an
    ``Idempotency-Key``, a retried request answers as the first did and resends nothing."""

    def run(s: Session) -> MailingOut:
        return mailings.to_out(s, resend.resend_failed(s, mailing_id, settings=cfg))

    path = request.url.path
    return idempotent_session(db, key.id, idempotency_key, path, ResendIn(), MailingOut, run)


@router.post("/mailings/{mailing_id}/cancel", tags=["mailings"])
def cancel_mailing(mailing_id: Id, key: Key, db: Db) -> MailingOut:
    with db.write() as s:
        return mailings.to_out(s, mailings.cancel(s, mailing_id))


Status = Annotated[str | None, status_query(outbox.STATUSES)]


@router.get("/mailings/{mailing_id}/messages", tags=["mailings"])
def mailing_messages(
    mailing_id: Id,
    key: Key,
    db: Db,
    cfg: Config,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Status = None,
) -> Page[MessageOut]:
    """The mailing's stored messages (its outbox), in the order they were created."""
    return _messages(db, cfg, outbox.Source("mailing", mailing_id), limit, cursor, status)


def _messages(
    db: Db, cfg: Config, source: outbox.Source, limit: int, cursor: str | None, status: str | None
) -> Page[MessageOut]:
    wanted = status_filter(status, outbox.STATUSES)
    with db.read() as s:
        outbox.source_name(s, source)
        rows = outbox.page(
            s,
            source,
            domain=cfg.message_id_domain,
            status=wanted,
            after_id=decode_cursor(cursor),
            limit=limit + 1,
        )
    items, next_cursor = split_page(rows, limit, lambda m: m.id)
    return Page(items=items, next_cursor=next_cursor)


# --- campaigns and events -------------------------------------------------------------


@router.post("/campaigns", status_code=201, tags=["campaigns"], responses=CAMPAIGN_CREATED)
def create_campaign(body: CampaignIn, key: Key, db: Db) -> CampaignOut:
    with db.write() as s:
        return campaigns.to_out(s, campaigns.create(s, body))


@router.get("/campaigns", tags=["campaigns"])
def list_campaigns(key: Key, db: Db) -> list[CampaignOut]:
    with db.read() as s:
        return campaigns.to_outs(s, campaigns.list_campaigns(s))


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
def get_campaign(campaign_id: Id, key: Key, db: Db) -> CampaignOut:
    with db.read() as s:
        return campaigns.to_out(s, campaigns.get(s, campaign_id))


@router.patch("/campaigns/{campaign_id}", tags=["campaigns"])
def update_campaign(campaign_id: Id, body: CampaignUpdate, key: Key, db: Db) -> CampaignOut:
    with db.write() as s:
        return campaigns.to_out(s, campaigns.update(s, campaign_id, body))


@router.delete("/campaigns/{campaign_id}", status_code=204, tags=["campaigns"])
def delete_campaign(campaign_id: Id, key: Key, db: Db) -> Response:
    """Stop it and hide it for good; its messages stay under /campaigns/{id}/messages."""
    with db.write() as s:
        campaigns.delete(s, campaign_id)
    return Response(status_code=204)


@router.post("/campaigns/{campaign_id}/preview", tags=["campaigns"])
def preview_campaign(campaign_id: Id, body: PreviewIn, key: Key, db: Db) -> RenderedOut:
    """The campaign's message for a customer (or a sample one), with placeholder codes;
    nothing is issued or recorded."""
    with db.read() as s:
        r = campaigns.preview_message(s, campaigns.get(s, campaign_id), body.customer_id)
    return rendered_out(r)


@router.get("/campaigns/{campaign_id}/messages", tags=["campaigns"])
def campaign_messages(
    campaign_id: Id,
    key: Key,
    db: Db,
    cfg: Config,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Status = None,
) -> Page[MessageOut]:
    """The campaign's stored messages (its outbox), in the order they were created."""
    return _messages(db, cfg, outbox.Source("campaign", campaign_id), limit, cursor, status)


@router.post("/events", tags=["campaigns"])
def post_event(body: EventIn, key: Key, db: Db, cfg: Config) -> EventOut:
    """Every active campaign on the event sends its message to the customer. The
    ``customer`` object creates or updates the customer only when one of those campaigns
    allows it (``creates_customers``); otherwise it is ignored, and an unknown customer
    is a 404."""
    with db.write() as s:
        done = events.receive(s, body)
        external_id = done.customer.external_id
        items = [outbox.out(m, external_id, cfg.message_id_domain) for m in done.messages]
    return EventOut(
        event=body.event, customer_id=external_id, customer_change=done.change, messages=items
    )
