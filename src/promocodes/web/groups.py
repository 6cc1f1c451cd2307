"""Promo codes section: the groups list, create, edit (with its uploads and codes), delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from promocodes.analytics import service as analytics
from promocodes.codes import export, redemption, service, uploads
from promocodes.codes.benefit import public_text
from promocodes.codes.importer import read_text
from promocodes.codes.models import STATUSES, Upload
from promocodes.codes.schemas import (
    REFILL_FIELDS,
    GroupCreate,
    GroupOut,
    GroupUpdate,
    UploadReport,
)
from promocodes.codes.stock import state_of
from promocodes.errors import DomainError
from promocodes.messaging import usage
from promocodes.models import utcnow
from promocodes.pagination import decode_cursor, encode_cursor
from promocodes.web import group_form, kit
from promocodes.web.analytics import panel
from promocodes.web.audit import UiActor
from promocodes.web.kit import Config, Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

PAGE = 50
CODES_PAGE = 50


def badges(group: GroupOut) -> list[tuple[str, str]]:
    """(css class, text) of the warnings a group deserves on the list and its page: its
    stock state (codes/stock.py), in words."""
    if group.archived_at is not None:
        return [("archived", "Archived")]
    state = state_of(group, active=group.active, total=group.total, now=utcnow())
    out: list[tuple[str, str]] = []
    if state.expired:
        out.append(("bad", "Expired"))
    elif state.expires_in is not None:
        days = state.expires_in.days
        out.append(("warn", f"Expires in {days} day{'s' if days != 1 else ''}"))
    if state.not_yet_valid:
        out.append(("info", "Not valid yet"))
    if state.exhausted:
        out.append(("bad", "Out of codes"))
    elif state.low:
        out.append(("warn", "Low stock"))
    return out


@router.get("/")
def home() -> Response:
    return RedirectResponse("/groups", status_code=303)


@router.get("/groups")
def list_groups(
    request: Request, user: User, db: Db, q: str = "", after: str | None = None, show: str = ""
) -> Response:
    search = q.strip()[:200]
    archived = show == "archived"  # archived groups are listed apart, read-only
    with db.read() as s:
        groups = service.list_groups(
            s,
            after_id=decode_cursor(after),
            limit=PAGE + 1,
            search=search or None,
            archived=archived,
        )
    more = len(groups) > PAGE
    groups = groups[:PAGE]
    return kit.page(
        request,
        "groups/list.html",
        {
            "section": "groups",
            "groups": [(g, badges(g), public_text(g.benefit)) for g in groups],
            "q": search,
            "show": "archived" if archived else "",
            "after": after,
            "next_cursor": encode_cursor(groups[-1].id) if more else None,
        },
    )


# --- create -------------------------------------------------------------------------------


@router.get("/groups/new")
def new_group(request: Request, user: User) -> Response:
    return kit.page(
        request,
        "groups/new.html",
        {
            "section": "groups",
            "values": {**dict.fromkeys(group_form.FIELDS, ""), "limit_action": "repeat"},
            "codes": "",
            "errors": {},
        },
    )


@router.post("/groups/new")
def create_group(request: Request, actor: UiActor, form: Form, db: Db, cfg: Config) -> Response:
    values = group_form.values_of(form)
    codes = kit.field(form, "codes")
    errors: dict[str, str] = {}
    data = group_form.data_of(values, errors)
    body: GroupCreate | None = None
    try:
        body = GroupCreate(**data)
    except ValidationError as exc:
        errors.update({k: v for k, v in group_form.form_errors(exc).items() if k not in errors})
    if body is not None and not errors:
        try:
            with db.write() as s:
                group = service.create_group(s, body)
                group_id = group.id
                report = None
                if codes.strip():
                    report = uploads.upload_codes(
                        s,
                        group.id,
                        read_text(codes),
                        source="web",
                        actor=actor,
                        batch_size=cfg.upload_batch_size,
                        report_limit=cfg.upload_report_limit,
                    )
        except DomainError as exc:
            group_form.domain_errors(exc, errors)
        else:
            if report is not None:
                return kit.redirect(
                    request,
                    f"/groups/{group_id}?upload={report.upload_id}#report",
                    flash=f"Group created; {report.added:,} codes added.",
                )
            return kit.redirect(request, f"/groups/{group_id}", flash="Group created.")
    return kit.page(
        request,
        "groups/new.html",
        {"section": "groups", "values": values, "codes": codes, "errors": errors},
        status_code=422,
    )


# --- edit ---------------------------------------------------------------------------------


def _upload_of(s: Session, group_id: int, upload_id: int | None) -> Upload | None:
    """The upload the page was asked to show, when it is one of this group's."""
    shown = uploads.get_upload(s, upload_id) if upload_id is not None else None
    return shown if shown is not None and shown.group_id == group_id else None


def edit_page(
    request: Request,
    db: Db,
    group_id: int,
    *,
    status: str | None = None,
    after: str | None = None,
    upload_id: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    pasted: str = "",
    upload_error: str | None = None,
    generate: dict[str, str] | None = None,
    generate_error: str | None = None,
    report: UploadReport | None = None,
    status_code: int = 200,
) -> Response:
    if status not in STATUSES:
        status = None
    with db.read() as s:
        # An archived group is shown too, read-only: profiles and mailings link to it.
        group = service.to_out(s, service.get_any_group(s, group_id))
        history = uploads.list_uploads(s, group_id, limit=20)
        found = analytics.of_group(s, group_id)
        rows = export.page(
            s, group_id, status=status, after_id=decode_cursor(after), limit=CODES_PAGE + 1
        )
        shown = _upload_of(s, group_id, upload_id)
    more = len(rows) > CODES_PAGE
    rows = rows[:CODES_PAGE]
    if report is None and shown is not None and shown.status == "done":
        report = uploads.report_of(shown)
    return kit.page(
        request,
        "groups/edit.html",
        {
            "section": "groups",
            "group": group,
            "badges": badges(group),
            "benefit": public_text(group.benefit),
            "archived": group.archived_at is not None,
            "values": values or group_form.form_values(group),
            "errors": errors or {},
            "history": history,
            "codes": rows,
            "status": status,
            "statuses": STATUSES,
            "after": after,
            "next_cursor": encode_cursor(rows[-1].id) if more else None,
            "pasted": pasted,
            "upload_error": upload_error,
            "generate": generate or {"pattern": "", "count": ""},
            "generate_error": generate_error,
            "report": report,
            "running": shown if shown is not None and shown.status != "done" else None,
            "max_upload": request.app.state.settings.max_upload_bytes,
            "analytics": panel(found),
        },
        status_code=status_code,
    )


@router.get("/groups/{group_id}")
def edit_group(
    request: Request,
    group_id: kit.Id,
    user: User,
    db: Db,
    status: str | None = None,
    after: str | None = None,
    upload: int | None = None,
) -> Response:
    return edit_page(request, db, group_id, status=status, after=after, upload_id=upload)


@router.post("/groups/{group_id}")
def update_group(request: Request, group_id: kit.Id, user: User, form: Form, db: Db) -> Response:
    values = group_form.values_of(form)
    with db.read() as s:
        before = group_form.form_values(service.to_out(s, service.get_group(s, group_id)))
    errors: dict[str, str] = {}
    data = group_form.data_of(values, errors)
    # Only what the user changed: a datetime shown to the second must not overwrite a
    # stored one that has microseconds, an untouched field must not be rewritten.
    changed = {k: v for k, v in data.items() if k != "benefit" and values[k] != before[k]}
    if changed.keys() & set(REFILL_FIELDS):  # the refill's three fields go together
        changed.update({k: data.get(k) for k in REFILL_FIELDS})
    if any(values[k] != before[k] for k in group_form.BENEFIT_FIELDS):
        changed["benefit"] = data["benefit"]
    body: GroupUpdate | None = None
    try:
        body = GroupUpdate(**changed)
    except ValidationError as exc:
        errors.update({k: v for k, v in group_form.form_errors(exc).items() if k not in errors})
    if body is not None and not errors:
        try:
            with db.write() as s:
                service.update_group(s, group_id, body)
        except DomainError as exc:
            group_form.domain_errors(exc, errors)
        else:
            return kit.redirect(request, f"/groups/{group_id}", flash="Group saved.")
    return edit_page(request, db, group_id, values=values, errors=errors, status_code=422)


@router.post("/groups/{group_id}/codes/{code}/unblock")
def unblock_code(
    request: Request, group_id: kit.Id, code: str, actor: UiActor, form: Form, db: Db
) -> Response:
    with db.write() as s:
        previous, status = redemption.unblock(s, code, actor=actor)
    done = f"back to {status}" if previous != status else f"was not blocked ({status})"
    return kit.redirect(request, f"/groups/{group_id}#codes-list", flash=f"Code {code}: {done}.")


# --- delete -------------------------------------------------------------------------------


@router.get("/groups/{group_id}/delete")
def confirm_delete(request: Request, group_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        group = service.get_group(s, group_id)
        outcome = service.delete_outcome(s, group)
        out = service.to_out(s, group)
        used_by = usage.of_group(s, group.id, group.name)
    return kit.page(
        request,
        "groups/delete.html",
        {"section": "groups", "group": out, "outcome": outcome, "used_by": used_by},
    )


@router.post("/groups/{group_id}/delete")
def delete_group(
    request: Request, group_id: kit.Id, actor: UiActor, form: Form, db: Db
) -> Response:
    with db.write() as s:
        name = service.get_group(s, group_id).name
        result = service.delete_group(s, group_id, actor=actor)
    verb = "archived" if result.outcome == "archived" else "deleted with its codes"
    return kit.redirect(request, "/groups", flash=f"Group “{name}” {verb}.")
