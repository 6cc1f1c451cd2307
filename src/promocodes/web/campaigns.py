"""Triggered campaigns: list with stats, create, edit, pause and resume."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from promocodes.analytics import service as analytics
from promocodes.errors import DomainError, ValidationFailed
from promocodes.messaging import campaigns
from promocodes.messaging.models import CHANNELS, Campaign
from promocodes.messaging.schemas import CampaignIn, CampaignUpdate
from promocodes.web import kit
from promocodes.web.analytics import panel
from promocodes.web.compose import TEMPLATE_FIELDS, problems_by_field
from promocodes.web.kit import Db, Form, User
from promocodes.web.segments import group_choices

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

FIELDS = ("name", "event", "channel", *TEMPLATE_FIELDS)


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: kit.field(form, name) for name in FIELDS}
    values["active"] = kit.field(form, "active") == "1"
    values["creates_customers"] = kit.field(form, "creates_customers") == "1"
    return values


def _values_of(c: Campaign) -> dict[str, Any]:
    return {
        "name": c.name,
        "event": c.event,
        "channel": c.channel,
        "subject": c.subject,
        "body_text": c.body_text or "",
        "body_html": c.body_html or "",
        "active": c.active,
        "creates_customers": c.creates_customers,
    }


def _data(values: dict[str, Any]) -> dict[str, Any]:
    data = {
        k: values[k] for k in ("name", "event", "channel", "subject", "active", "creates_customers")
    }
    data["body_text"] = values["body_text"] or None
    data["body_html"] = values["body_html"] or None
    return data


def _form(
    request: Request,
    db: Db,
    *,
    campaign_id: int | None,
    values: dict[str, Any],
    exc: Exception | None = None,
    status_code: int = 200,
    archived_at: datetime | None = None,
) -> Response:
    errors: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    if isinstance(exc, ValidationError):
        errors = kit.errors_of(exc)
    elif isinstance(exc, ValidationFailed) and isinstance(exc.extra.get("errors"), list):
        problems = problems_by_field(exc.extra["errors"])
    elif isinstance(exc, DomainError):
        errors = {"": exc.detail}
    with db.read() as s:
        groups = group_choices(s)
        # Its figures, on its own page: what it has sent so far, by status.
        figures = campaigns.stats(s, [campaign_id]).get(campaign_id, {}) if campaign_id else {}
        found = analytics.of_campaign(s, campaign_id) if campaign_id else None
    return kit.page(
        request,
        "campaigns/form.html",
        {
            "section": "campaigns",
            "campaign_id": campaign_id,
            "values": values,
            "errors": errors,
            "problems": problems,
            "groups": groups,
            "channels": CHANNELS,
            "figures": figures,
            "archived_at": archived_at,
            "analytics": panel(found) if found else None,
        },
        status_code=status_code,
    )


@router.get("/campaigns")
def list_campaigns(request: Request, user: User, db: Db, show: str = "") -> Response:
    archived = show == "archived"  # deleted campaigns are listed apart, read-only
    with db.read() as s:
        rows = campaigns.list_campaigns(s, archived=archived)
        stats = campaigns.stats(s, [c.id for c in rows])
    return kit.page(
        request,
        "campaigns/list.html",
        {
            "section": "campaigns",
            "campaigns": [(c, stats.get(c.id, {})) for c in rows],
            "show": "archived" if archived else "",
        },
    )


@router.get("/campaigns/new")
def new_campaign(request: Request, user: User, db: Db) -> Response:
    values: dict[str, Any] = dict.fromkeys(FIELDS, "")
    values.update(channel="outbox", active=True, creates_customers=False)
    return _form(request, db, campaign_id=None, values=values)


@router.post("/campaigns/new")
def create_campaign(request: Request, user: User, form: Form, db: Db) -> Response:
    values = _values(form)
    try:
        body = CampaignIn(**_data(values))
        with db.write() as s:
            campaign_id = campaigns.create(s, body).id
    except (ValidationError, DomainError) as exc:
        return _form(request, db, campaign_id=None, values=values, exc=exc, status_code=422)
    return kit.redirect(
        request, f"/campaigns/{campaign_id}", flash=f"Campaign “{body.name}” created."
    )


@router.get("/campaigns/{campaign_id}")
def edit_campaign(request: Request, campaign_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        # A deleted campaign stays readable (a profile links to the codes it gave).
        campaign = campaigns.get_any(s, campaign_id)
        archived_at = campaign.archived_at
        values = _values_of(campaign)
    return _form(request, db, campaign_id=campaign_id, values=values, archived_at=archived_at)


@router.get("/campaigns/{campaign_id}/delete")
def confirm_delete(request: Request, campaign_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        campaign = campaigns.get(s, campaign_id)
        sent = sum(campaigns.stats(s, [campaign.id])[campaign.id].values())
        name = campaign.name
    return kit.page(
        request,
        "campaigns/delete.html",
        {"section": "campaigns", "campaign_id": campaign_id, "name": name, "messages": sent},
    )


@router.post("/campaigns/{campaign_id}/delete")
def delete_campaign(
    request: Request, campaign_id: kit.Id, user: User, form: Form, db: Db
) -> Response:
    with db.write() as s:
        name = campaigns.delete(s, campaign_id).name
    return kit.redirect(request, "/campaigns", flash=f"Campaign “{name}” deleted.")


@router.post("/campaigns/{campaign_id}")
def update_campaign(
    request: Request, campaign_id: kit.Id, user: User, form: Form, db: Db
) -> Response:
    values = _values(form)
    try:
        body = CampaignUpdate(**_data(values))
        with db.write() as s:
            campaigns.update(s, campaign_id, body)
    except (ValidationError, DomainError) as exc:
        return _form(request, db, campaign_id=campaign_id, values=values, exc=exc, status_code=422)
    return kit.redirect(request, "/campaigns", flash="Campaign saved.")


def _set_active(request: Request, db: Db, campaign_id: int, active: bool) -> Response:
    with db.write() as s:
        name = campaigns.update(s, campaign_id, CampaignUpdate(active=active)).name
    verb = "resumed" if active else "paused"
    return kit.redirect(request, "/campaigns", flash=f"Campaign “{name}” {verb}.")


@router.post("/campaigns/{campaign_id}/pause")
def pause(request: Request, campaign_id: kit.Id, user: User, form: Form, db: Db) -> Response:
    return _set_active(request, db, campaign_id, False)


@router.post("/campaigns/{campaign_id}/resume")
def resume(request: Request, campaign_id: kit.Id, user: User, form: Form, db: Db) -> Response:
    return _set_active(request, db, campaign_id, True)
