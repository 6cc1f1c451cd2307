"""CSV exports safe to open in a spreadsheet: a group's codes (optionally one status), a
segment's customers."""

from __future__ import annotations

from fastapi import APIRouter, Response

from promocodes import exports
from promocodes.codes.models import STATUSES
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Db

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)


@router.get("/groups/{group_id}/codes.csv")
def export_codes(group_id: kit.Id, actor: UiActor, db: Db, status: str | None = None) -> Response:
    # A link with a status that does not exist exports every code (as the page shows).
    wanted = status if status in STATUSES else None
    return exports.response(exports.codes(db, group_id, status=wanted, actor=actor))


@router.get("/segments/{segment_id}/customers.csv")
def export_segment_customers(segment_id: kit.Id, actor: UiActor, db: Db) -> Response:
    # Customers are personal data: like codes, a download for marketers and admins
    # (users/roles.py: a route ending in .csv), audited before its first row.
    return exports.response(exports.segment_customers(db, segment_id, actor=actor))
