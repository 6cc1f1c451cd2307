"""The outbox of a mailing or a campaign: its stored messages, page by page with a status
filter, and their CSV export."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response

from promocodes import exports
from promocodes.messaging import outbox
from promocodes.pagination import decode_cursor, split_page
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Config, Db, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

Kind = Literal["mailing", "campaign"]
PAGE = 50


def _status(status: str | None) -> str | None:
    # A link with a status that does not exist shows every message (as the code export
    # does), rather than an error page for a hand-edited address.
    return status if status in outbox.STATUSES else None


def _messages(
    request: Request,
    db: Db,
    cfg: Config,
    kind: Kind,
    source_id: int,
    status: str | None,
    after: str | None,
) -> Response:
    source = outbox.Source(kind, source_id)
    wanted = _status(status)
    with db.read() as s:
        name = outbox.source_name(s, source)
        rows = outbox.page(
            s,
            source,
            domain=cfg.message_id_domain,
            status=wanted,
            after_id=decode_cursor(after),
            limit=PAGE + 1,
        )
    rows, next_cursor = split_page(rows, PAGE, lambda m: m.id)
    return kit.page(
        request,
        "outbox/list.html",
        {
            "section": f"{kind}s",
            "kind": kind,
            "source_url": f"/{kind}s/{source_id}",
            "name": name,
            "messages": rows,
            "status": wanted,
            "statuses": outbox.STATUSES,
            "after": after,
            "next_cursor": next_cursor,
        },
    )


def _export(
    db: Db, cfg: Config, actor: UiActor, kind: Kind, source_id: int, status: str | None
) -> Response:
    done = exports.messages(
        db,
        outbox.Source(kind, source_id),
        status=_status(status),
        actor=actor,
        domain=cfg.message_id_domain,
    )
    return exports.response(done)


@router.get("/mailings/{mailing_id}/messages")
def mailing_messages(
    request: Request,
    mailing_id: kit.Id,
    user: User,
    db: Db,
    cfg: Config,
    status: str | None = None,
    after: str | None = None,
) -> Response:
    return _messages(request, db, cfg, "mailing", mailing_id, status, after)


@router.get("/campaigns/{campaign_id}/messages")
def campaign_messages(
    request: Request,
    campaign_id: kit.Id,
    user: User,
    db: Db,
    cfg: Config,
    status: str | None = None,
    after: str | None = None,
) -> Response:
    return _messages(request, db, cfg, "campaign", campaign_id, status, after)


@router.get("/mailings/{mailing_id}/messages.csv")
def export_mailing_messages(
    mailing_id: kit.Id, actor: UiActor, db: Db, cfg: Config, status: str | None = None
) -> Response:
    return _export(db, cfg, actor, "mailing", mailing_id, status)


@router.get("/campaigns/{campaign_id}/messages.csv")
def export_campaign_messages(
    campaign_id: kit.Id, actor: UiActor, db: Db, cfg: Config, status: str | None = None
) -> Response:
    return _export(db, cfg, actor, "campaign", campaign_id, status)
