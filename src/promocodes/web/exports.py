"""CSV export of a group's codes (optionally one status), safe to open in a spreadsheet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import StreamingResponse

from promocodes.codes import repository as repo
from promocodes.codes import service
from promocodes.codes.export import csv_safe, iso, keyset_csv, record_export
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
    def fetch(after: int | None) -> list[Any]:
        with db.read() as s:
            return repo.code_page(s, group_id, status=status, after_id=after, limit=EXPORT_PAGE)

    return keyset_csv(
        ["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"],
        fetch,
        lambda r: [
            csv_safe(r.code),
            r.status,
            csv_safe(r.customer_id or ""),
            iso(r.issued_at),
            iso(r.redeemed_at),
            iso(r.valid_until),
        ],
        EXPORT_PAGE,
    )
