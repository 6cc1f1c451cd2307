"""REST route of bulk redemption: a file of redemptions (CSV, JSON lines or one code a
line), streamed to disk as it arrives and redeemed batch by batch (``bulk_redemption``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from promocodes.apikit import PROBLEM_RESPONSES, TEXT_FILE, Db, problems, spooled_body
from promocodes.audit.api import ApiActor
from promocodes.audit.service import Actor
from promocodes.codes import bulk_redemption
from promocodes.codes.redemption_file import RedemptionReader
from promocodes.codes.schemas import RedemptionReport
from promocodes.codes.upload_api import UnsupportedMedia
from promocodes.db import Database
from promocodes.dispatch import OneHopRoute
from promocodes.text import NO_NUL_PATTERN

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, route_class=OneHopRoute)
PATH = "/api/v1/codes/redemptions"
KINDS = ("text/csv", "text/plain", "application/x-ndjson", "application/jsonl")
_BODY = {
    "requestBody": {
        "required": True,
        "content": {kind: {"schema": TEXT_FILE} for kind in KINDS},
    }
}


def _redeem(db: Database, path: Path, order_id: str | None, actor: Actor) -> RedemptionReport:
    with path.open("rb") as stream:
        reader = RedemptionReader(stream)  # not text, or empty: refused before a transaction
        with db.write() as session:
            return bulk_redemption.redeem_file(session, reader, order_id=order_id, actor=actor)


@router.post("/codes/redemptions", tags=["codes"], openapi_extra=_BODY, responses=problems(415))
async def redeem_codes(
    request: Request,
    actor: ApiActor,
    db: Db,
    order_id: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)
    ] = None,
) -> RedemptionReport:
    """Redeem a file of codes; ``order_id`` stands for lines that give none."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in KINDS:
        raise UnsupportedMedia(f"send the redemptions as one of: {', '.join(KINDS)}")
    async with spooled_body(request) as path:
        return await run_in_threadpool(_redeem, db, path, order_id, actor)
