"""Mailings: compose and edit drafts, pre-send stock check, test send, send with live
progress, cancel, and the final report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from promocodes.analytics import service as analytics
from promocodes.errors import Conflict, DomainError, ValidationFailed
from promocodes.messaging import delivery, mailings, resend
from promocodes.messaging.check import Check
from promocodes.messaging.models import CHANNELS, Mailing
from promocodes.messaging.schemas import MailingCreate, MailingOut, MailingUpdate, TestSendIn
from promocodes.messaging.templates import RenderFailed, preview_for
from promocodes.segments import service as segments
from promocodes.web import formats, kit
from promocodes.web.analytics import panel
from promocodes.web.compose import TEMPLATE_FIELDS, problems_by_field, template_of
from promocodes.web.kit import Config, Db, Form, User
from promocodes.web.segments import group_choices

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

FIELDS = ("name", "segment_id", "channel", *TEMPLATE_FIELDS)

RUNNING = ("scheduled", "sending")


def percent(out: MailingOut) -> int:
    if out.total == 0:
        return 100 if out.status == "sent" else 0
    return min(100, (out.rendered + out.skipped) * 100 // out.total)


def _values(form: FormData) -> dict[str, str]:
    return {name: kit.field(form, name) for name in FIELDS}


def _values_of(m: Mailing) -> dict[str, str]:
    return {
        "name": m.name,
        "segment_id": str(m.segment_id),
        "channel": m.channel,
        "subject": m.subject,
        "body_text": m.body_text or "",
        "body_html": m.body_html or "",
    }


def _data(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {k: values[k] for k in ("name", "channel", "subject")}
    data["segment_id"] = int(values["segment_id"]) if values["segment_id"].isdigit() else 0
    data["body_text"] = values["body_text"] or None
    data["body_html"] = values["body_html"] or None
    return data


def _errors(exc: Exception) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Field errors and template problems (line/column) of a failed save."""
    if isinstance(exc, ValidationError):
        errors = kit.errors_of(exc)
        if "segment_id" in errors:
            errors["segment_id"] = "choose a segment"
        return errors, {}
    assert isinstance(exc, DomainError)
    if isinstance(exc, ValidationFailed) and isinstance(exc.extra.get("errors"), list):
        return {}, problems_by_field(exc.extra["errors"])
    if isinstance(exc, segments.SegmentNotFound):
        return {"segment_id": exc.detail}, {}
    return {"": exc.detail}, {}


def _compose_context(s: Session) -> dict[str, Any]:
    return {
        "segments": segments.list_segments(s),
        "groups": group_choices(s),
        "channels": CHANNELS,
    }


def _compose(
    request: Request,
    db: Db,
    *,
    mailing: MailingOut | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    problems: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> Response:
    with db.read() as s:
        context = _compose_context(s)
        stock: Check | None = None
        stock_error = None
        if mailing is not None:
            try:
                stock = mailings.stock_check(s, mailings.get(s, mailing.id))
            except DomainError as exc:
                stock_error = exc.detail
    return kit.page(
        request,
        "mailings/compose.html",
        {
            "section": "mailings",
            "mailing": mailing,
            "values": values,
            "errors": errors or {},
            "problems": problems or {},
            "stock": stock,
            "stock_error": stock_error,
            **context,
        },
        status_code=status_code,
    )


@router.get("/mailings")
def list_mailings(request: Request, user: User, db: Db) -> Response:
    with db.read() as s:
        rows = mailings.to_outs(s, mailings.list_mailings(s))
    return kit.page(
        request,
        "mailings/list.html",
        {"section": "mailings", "mailings": [(m, percent(m)) for m in rows]},
    )


@router.get("/mailings/new")
def new_mailing(request: Request, user: User, db: Db) -> Response:
    values = dict.fromkeys(FIELDS, "")
    values["channel"] = "outbox"
    return _compose(request, db, mailing=None, values=values)


@router.post("/mailings/new")
def create_mailing(request: Request, user: User, form: Form, db: Db) -> Response:
    values = _values(form)
    try:
        body = MailingCreate(**_data(values))
        with db.write() as s:
            mailing_id = mailings.create(s, body).id
    except (ValidationError, DomainError) as exc:
        errors, problems = _errors(exc)
        return _compose(
            request,
            db,
            mailing=None,
            values=values,
            errors=errors,
            problems=problems,
            status_code=422,
        )
    return kit.redirect(request, f"/mailings/{mailing_id}", flash="Mailing saved as a draft.")


@router.get("/mailings/{mailing_id}")
def show_mailing(request: Request, mailing_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        mailing = mailings.get(s, mailing_id)
        out = mailings.to_out(s, mailing)
        values = _values_of(mailing)
        shown = segments.get_any(s, mailing.segment_id)
        segment = shown.name + (" (deleted since)" if shown.archived_at else "")
        details = mailings.skip_details(s, mailing_id) if out.skipped else []
        # A draft shows its form; a mailing that went out, what came back.
        figures = None if out.status == "draft" else analytics.of_mailing(s, mailing_id)
    if figures is None:
        return _compose(request, db, mailing=out, values=values)
    causes: dict[str, list[mailings.SkipDetail]] = {}
    for d in details:
        if d.detail:
            causes.setdefault(d.reason, []).append(d)
    return kit.page(
        request,
        "mailings/show.html",
        {
            "section": "mailings",
            "mailing": out,
            "segment": segment,
            "percent": percent(out),
            "causes": causes,
            "analytics": panel(figures),
        },
    )


@router.post("/mailings/{mailing_id}")
def update_mailing(
    request: Request, mailing_id: kit.Id, user: User, form: Form, db: Db
) -> Response:
    values = _values(form)
    try:
        body = MailingUpdate(**_data(values))
        with db.write() as s:
            mailings.update(s, mailing_id, body)
    except (ValidationError, DomainError) as exc:
        with db.read() as s:
            out = mailings.to_out(s, mailings.get(s, mailing_id))
        errors, problems = _errors(exc)
        return _compose(
            request,
            db,
            mailing=out,
            values=values,
            errors=errors,
            problems=problems,
            status_code=422,
        )
    return kit.redirect(request, f"/mailings/{mailing_id}", flash="Mailing saved.")


@router.post("/mailings/{mailing_id}/test")
def test_send(
    request: Request, mailing_id: kit.Id, user: User, form: Form, db: Db, cfg: Config
) -> Response:
    """The preview of the form as it is now (placeholder codes) to one address by SMTP."""
    address = kit.field(form, "test_email").strip()
    try:
        TestSendIn(email=address)
    except ValidationError:
        return _test_result(request, f"{address!r} is not an email address.", ok=False)
    if not cfg.smtp_host:
        return _test_result(
            request,
            "SMTP is not configured: set PROMOCODES_SMTP_HOST (and PROMOCODES_SMTP_PORT, "
            "PROMOCODES_SMTP_FROM…) on the server to send test emails.",
            ok=False,
        )
    try:
        with db.read() as s:
            mailings.get(s, mailing_id)
            rendered = preview_for(s, template_of(form), None)
        delivery.send_test(cfg, address, rendered)
    except (RenderFailed, delivery.DeliveryFailed) as exc:
        return _test_result(request, exc.detail, ok=False)
    return _test_result(request, f"Test email sent to {address}.", ok=True)


def _test_result(request: Request, message: str, *, ok: bool) -> Response:
    return kit.fragment(request, "mailings/test_result.html", {"message": message, "ok": ok})


@router.get("/mailings/{mailing_id}/send")
def confirm_send(request: Request, mailing_id: kit.Id, user: User, db: Db) -> Response:
    return _send_page(request, db, mailing_id)


def _send_page(
    request: Request,
    db: Db,
    mailing_id: int,
    *,
    error: str | None = None,
    send_at: str = "",
    status_code: int = 200,
) -> Response:
    with db.read() as s:
        mailing = mailings.get(s, mailing_id)
        out = mailings.to_out(s, mailing)
        segment = segments.get(s, mailing.segment_id)
        recipients = segments.count(s, segments.tree_of(segment))
        stock: Check | None = None
        try:
            stock = mailings.stock_check(s, mailing)
        except DomainError as exc:
            error = error or exc.detail
    return kit.page(
        request,
        "mailings/send.html",
        {
            "section": "mailings",
            "mailing": out,
            "segment": segment.name,
            "recipients": recipients,
            "stock": stock,
            "short": stock.short if stock else [],
            "error": error,
            # Send stays off, with the reason, while the template names a group that
            # cannot give a code (archived, unknown, closed): it would only skip people.
            "blocked": [g for g in stock.groups if g.closed] if stock else [],
            "unchecked": stock is None,
            "send_at": send_at or formats.fmt_input_dt(mailing.send_at),
        },
        status_code=status_code,
    )


@router.post("/mailings/{mailing_id}/send")
def send(
    request: Request, mailing_id: kit.Id, user: User, form: Form, db: Db, cfg: Config
) -> Response:
    """Send now, or schedule the mailing for the time given (UTC)."""
    later = kit.field(form, "when") == "later"
    raw = kit.field(form, "send_at")
    try:
        at = kit.parse_datetime(raw) if later else None
        if later and at is None:
            raise ValidationFailed("enter the date and time to send at")
        with db.write() as s:
            sent = mailings.send(
                s,
                mailing_id,
                settings=cfg,
                allow_partial=kit.field(form, "allow_partial") == "1",
                when=at if at is not None else "now",
            )
            scheduled = sent.send_at if sent.status == "scheduled" else None
    except mailings.StockShort as exc:
        return _send_page(request, db, mailing_id, error=exc.detail, send_at=raw, status_code=409)
    except (ValueError, ValidationFailed) as exc:
        detail = exc.detail if isinstance(exc, ValidationFailed) else str(exc)
        return _send_page(request, db, mailing_id, error=detail, send_at=raw, status_code=422)
    flash = f"Scheduled for {formats.fmt_dt(scheduled)}." if scheduled else "Sending started."
    return kit.redirect(request, f"/mailings/{mailing_id}", flash=flash)


@router.get("/mailings/{mailing_id}/progress")
def progress(request: Request, mailing_id: kit.Id, user: User, db: Db) -> Response:
    """Polled every second by the mailing page while it sends."""
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, mailing_id))
    if out.status not in RUNNING and kit.is_htmx(request):
        # Finished: reload once, so the whole page (actions, times) shows the final state.
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return kit.fragment(
        request, "mailings/progress.html", {"mailing": out, "percent": percent(out)}
    )


@router.get("/mailings/{mailing_id}/cancel")
def confirm_cancel(request: Request, mailing_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, mailing_id))
    return kit.page(request, "mailings/cancel.html", {"section": "mailings", "mailing": out})


@router.post("/mailings/{mailing_id}/resend")
def resend_failed(
    request: Request, mailing_id: kit.Id, user: User, form: Form, db: Db, cfg: Config
) -> Response:
    """Resend to the failed recipients. A double click meets a mailing that is sending
    again, and is told so instead of resending twice."""
    try:
        with db.write() as s:
            out = mailings.to_out(s, resend.resend_failed(s, mailing_id, settings=cfg))
    except Conflict as exc:
        return kit.redirect(request, f"/mailings/{mailing_id}", flash=exc.detail)
    n = out.attempts[-1].recipients
    flash = f"Resending to {n:,} recipient{'s' if n != 1 else ''}."
    return kit.redirect(request, f"/mailings/{mailing_id}", flash=flash)


@router.post("/mailings/{mailing_id}/cancel")
def cancel(request: Request, mailing_id: kit.Id, user: User, form: Form, db: Db) -> Response:
    with db.write() as s:
        mailings.cancel(s, mailing_id)
    return kit.redirect(request, f"/mailings/{mailing_id}", flash="Mailing cancelled.")
