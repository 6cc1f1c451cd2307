"""The audit log page: sensitive actions, newest first, with filters. Read-only: the page
has no form that changes anything, and no route here accepts POST.

Also the ``Actor`` dependency that tells services which logged-in user is acting."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Request, Response

from promocodes.audit import service as audit
from promocodes.audit.schemas import Filters
from promocodes.audit.service import Actor, TargetType
from promocodes.pagination import decode_cursor, encode_cursor
from promocodes.web import kit, wording
from promocodes.web.kit import Db, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

PAGE = 100
TARGET_TYPES: tuple[str, ...] = get_args(TargetType)


def ui_actor(user: User) -> Actor:
    return Actor.user(user.user_id, user.email)


# For routes that perform an audited action (the login check runs once per request).
UiActor = Annotated[Actor, Depends(ui_actor)]


@router.get("/audit")
def audit_page(
    request: Request,
    user: User,
    db: Db,
    action: str = "",
    actor: str = "",
    target_type: str = "",
    target_id: str = "",
    since: str = "",
    until: str = "",
    after: str | None = None,
) -> Response:
    values = {
        "action": action.strip()[:64],
        "actor": actor.strip()[:320],
        "target_type": target_type if target_type in TARGET_TYPES else "",
        "target_id": target_id.strip()[:200],
        "since": since.strip(),
        "until": until.strip(),
    }
    errors: dict[str, str] = {}
    times = {}
    for name in ("since", "until"):
        try:
            times[name] = kit.parse_datetime(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    filters = Filters(
        action=values["action"] or None,
        actor=values["actor"] or None,
        target_type=values["target_type"] or None,
        target_id=values["target_id"] or None,
        since=times.get("since"),
        until=times.get("until"),
    )
    with db.read() as s:
        rows = audit.entries(s, filters, before_id=decode_cursor(after), limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return kit.page(
        request,
        "audit/list.html",
        {
            "section": "audit",
            "entries": rows,
            "values": values,
            "errors": errors,
            "target_types": TARGET_TYPES,
            "actions": wording.ACTIONS,
            "after": after,
            "next_cursor": encode_cursor(rows[-1].id) if more else None,
        },
        status_code=422 if errors else 200,
    )
