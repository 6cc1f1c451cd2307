"""CSV export of a group's codes (optionally one status), safe to open in a spreadsheet."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from promocodes.codes import export, service
from promocodes.codes.models import STATUSES
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Db

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)


@router.get("/groups/{group_id}/codes.csv")
def export_codes(group_id: kit.Id, actor: UiActor, db: Db, status: str | None = None) -> Response:
    # A link with a status that does not exist exports every code (as the page shows).
    wanted = status if status in STATUSES else None
    with db.write() as s:
        export.start(s, service.get_group(s, group_id), status=wanted, actor=actor)
    pages = db.pages(
        lambda s, after: export.page(s, group_id, status=wanted, after_id=after),
        size=export.PAGE,
    )
    return StreamingResponse(
        export.csv_chunks(pages),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename(group_id, wanted)}"'
        },
    )
