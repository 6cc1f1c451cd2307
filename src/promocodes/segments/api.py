"""REST routes of saved segments and their preview (SPEC §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from promocodes import exports
from promocodes.apikit import PROBLEM_RESPONSES, Cursor, Db, Id, Key, Page
from promocodes.apilinks import SEGMENT_CREATED
from promocodes.audit.api import ApiActor
from promocodes.customers.schemas import CustomerOut
from promocodes.dispatch import OneHopRoute
from promocodes.messaging import mailings
from promocodes.segments import service
from promocodes.segments.schemas import (
    PreviewIn,
    PreviewOut,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)

router = APIRouter(
    prefix="/api/v1", tags=["segments"], responses=PROBLEM_RESPONSES, route_class=OneHopRoute
)


@router.post("/segments", status_code=201, responses=SEGMENT_CREATED)
def create_segment(body: SegmentCreate, key: Key, db: Db) -> SegmentOut:
    with db.write() as s:
        return service.to_out(service.create(s, body))


@router.get("/segments")
def list_segments(key: Key, db: Db) -> list[SegmentOut]:
    with db.read() as s:
        return [service.to_out(x) for x in service.list_segments(s)]


@router.post("/segments/preview")
def preview_segment(body: PreviewIn, key: Key, db: Db) -> PreviewOut:
    with db.read() as s:
        return service.preview(s, body.filter, sample_size=body.sample_size)


# ``:int``: "/segments/preview" is no segment id, so its other methods answer 405.
@router.get("/segments/{segment_id:int}")
def get_segment(segment_id: Id, key: Key, db: Db) -> SegmentOut:
    with db.read() as s:
        return service.to_out(service.get(s, segment_id))


@router.patch("/segments/{segment_id:int}")
def update_segment(segment_id: Id, body: SegmentUpdate, key: Key, db: Db) -> SegmentOut:
    with db.write() as s:
        return service.to_out(service.update(s, segment_id, body))


@router.delete("/segments/{segment_id:int}", status_code=204)
def delete_segment(segment_id: Id, key: Key, db: Db) -> Response:
    with db.write() as s:
        mailings.delete_segment(s, segment_id)
    return Response(status_code=204)


@router.get(
    "/segments/{segment_id}/customers",
    response_model=Page[CustomerOut],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def segment_customers(
    segment_id: Id,
    request: Request,
    actor: ApiActor,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Cursor = None,
) -> Page[CustomerOut] | StreamingResponse:
    """A page of the segment's customers; with ``Accept: text/csv``, all of them as one
    streamed CSV file (audited: customers are personal data)."""
    if "text/csv" in request.headers.get("accept", ""):
        return exports.response(exports.segment_customers(db, segment_id, actor=actor))
    with db.read() as s:
        page = service.segment_customers(s, segment_id, cursor=cursor, limit=limit)
    return Page(items=page.customers, next_cursor=page.next_cursor)
