"""Stock alerts: every low-stock, out-of-codes and expiring-soon alert, newest first,
filtered by group and kind; acknowledging one says someone has seen to it."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from promocodes.codes import alerts
from promocodes.codes.service import get_any_group
from promocodes.codes.stock import CONDITIONS
from promocodes.errors import GroupNotFound
from promocodes.web import kit, wording
from promocodes.web.audit import UiActor
from promocodes.web.kit import Db, Form, User
from promocodes.web.segments import group_choices

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

KINDS = wording.ALERT_KINDS


def _active(payload: str) -> int | None:
    """The usable codes the group had when the alert was raised (kept in its payload)."""
    try:
        value = json.loads(payload).get("active")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


@router.get("/alerts")
def alerts_page(
    request: Request, user: User, db: Db, group: str = "", kind: str = "", show: str = "open"
) -> Response:
    group_id = int(group) if group.isdigit() and len(group) < 10 else None
    chosen_kind = kind if kind in CONDITIONS else None
    with db.read() as s:
        rows = alerts.listing(
            s, group_id=group_id, kind=chosen_kind, open_only=show != "all", limit=200
        )
        groups = group_choices(s)
    return kit.page(
        request,
        "alerts/list.html",
        {
            "section": "alerts",
            "rows": [(r, _active(r.alert.payload)) for r in rows],
            "groups": groups,
            "kinds": KINDS,
            "values": {"group": group_id or "", "kind": chosen_kind or "", "show": show},
        },
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: kit.Id, actor: UiActor, form: Form, db: Db) -> Response:
    with db.write() as s:
        alert = alerts.acknowledge(s, alert_id, actor)
        if alert is None:
            return kit.error_page(request, 404, "Alert not found", "This alert no longer exists.")
        try:
            group = f"“{get_any_group(s, alert.group_id).name}”"
        except GroupNotFound:
            group = "a deleted group"
        kind = KINDS.get(alert.kind, wording.label(alert.kind))
    back = kit.safe_next(kit.field(form, "next") or "/alerts")
    # Which alert: a list of several is left behind, and the flash says which one it was.
    flash = f"Alert “{kind}” of {group} acknowledged."
    return kit.redirect(request, back, flash=flash)
