"""CSV export of a group's codes (optionally one status), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import StreamingResponse

from promocodes.codes import repository as repo
from promocodes.codes import service
from promocodes.codes.export import csv_safe, record_export
from promocodes.codes.models import STATUSES
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Db

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
EXPORT_PAGE = 5_000


@router.get("/groups/{group_id}/codes.csv")
def export_codes(group_id: Id, actor: UiActor, db: Db, status: str | None = None) -> Response:
    if status not in STATUSES:
        status = None
    with db.write() as s:
        record_export(s, service.get_group(s, group_id), status=status, actor=actor)
    return StreamingResponse(
        _csv_rows(db, group_id, status),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="group-{group_id}'
            f'{"-" + status if status else ""}.csv"'
        },
    )


def _csv_rows(db: Db, group_id: int, status: str | None) -> Iterator[str]:
    """Page by page, each page its own short read: an export of millions never holds a
    transaction or all its rows at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"])
    after: int | None = None
    while True:
        with db.read() as s:
            rows = repo.code_page(s, group_id, status=status, after_id=after, limit=EXPORT_PAGE)
        for r in rows:
            writer.writerow(
                [
                    csv_safe(r.code),
                    r.status,
                    csv_safe(r.customer_id or ""),
                    *(v.isoformat() if v else "" for v in (r.issued_at, r.redeemed_at)),
                    r.valid_until.isoformat() if r.valid_until else "",
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].id
