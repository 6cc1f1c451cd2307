"""REST routes of code uploads and of a group's codes: upload (JSON, text, CSV or a form
file, each spooled to disk and parsed as it is read; large files in the background),
generate codes from a pattern, poll and withdraw an upload, list and export codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from promocodes import exports
from promocodes.apikit import (
    PROBLEM_RESPONSES,
    TEXT_FILE,
    Config,
    Cursor,
    Db,
    Id,
    Key,
    Limit,
    Page,
    problems,
    spooled_body,
    status_query,
)
from promocodes.apilinks import CODES_GENERATED, CODES_UPLOADED
from promocodes.audit.api import ApiActor
from promocodes.codes import background, export, generation, service, uploads
from promocodes.codes.background import Received, Started
from promocodes.codes.models import STATUSES, Upload
from promocodes.codes.schemas import (
    CodeRowOut,
    CodesIn,
    GenerateIn,
    GenerateReport,
    UploadReport,
    UploadStatusOut,
)
from promocodes.dispatch import OneHopRoute
from promocodes.errors import DomainError, ValidationFailed
from promocodes.pagination import decode_cursor, split_page, status_filter

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, route_class=OneHopRoute)


class UnsupportedMedia(DomainError):
    slug = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


# --- uploads --------------------------------------------------------------------------

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CodesIn.model_json_schema()},
            "text/plain": {"schema": TEXT_FILE},
            "text/csv": {"schema": TEXT_FILE},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def _parts(part: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await part.read(1 << 20):
        yield chunk


@asynccontextmanager
async def _received(request: Request, kind: str) -> AsyncIterator[Received]:
    """The uploaded file, spooled to disk whatever way it was sent, for the block's use
    (``apikit.spooled_body``: removed when the block ends, however it ends)."""
    if kind == "multipart/form-data":
        form = await request.form(max_files=1)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise ValidationFailed("file: send the codes as a form file field named 'file'")
        async with spooled_body(request, _parts(part)) as path:
            yield Received(path, part.filename, part.content_type)
    elif kind in ("application/json", "text/plain", "text/csv"):
        async with spooled_body(request) as path:
            # The whole header: its charset (e.g. windows-1252) says how to read the file.
            yield Received(path, None, request.headers.get("content-type", kind))
    else:
        raise UnsupportedMedia(
            "send codes as application/json, text/plain, text/csv or multipart/form-data"
        )


@router.post(
    "/groups/{group_id}/codes",
    tags=["uploads"],
    openapi_extra=_UPLOAD_BODY,
    response_model=UploadReport,
    responses={
        **CODES_UPLOADED,
        202: {"description": "Large upload accepted; poll the Location"},
        **problems(415),
    },
)
async def upload_codes(
    group_id: Id,
    request: Request,
    actor: ApiActor,
    db: Db,
    cfg: Config,
    dry_run: bool = False,
) -> UploadReport | JSONResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    async with _received(request, kind) as file:
        done = await run_in_threadpool(
            background.receive, db, cfg, group_id, file, source="api", actor=actor, dry_run=dry_run
        )
    if isinstance(done, Started):
        return JSONResponse(
            {"upload_id": done.upload_id, "status": "running"},
            status_code=202,
            headers={"Location": f"/api/v1/uploads/{done.upload_id}"},
        )
    return done


@router.post(
    "/groups/{group_id}/generate", status_code=201, tags=["uploads"], responses=CODES_GENERATED
)
def generate_codes(
    group_id: Id, body: GenerateIn, actor: ApiActor, db: Db, cfg: Config
) -> GenerateReport:
    """Generate ``count`` new codes of ``pattern`` into the group (an upload: its report
    is ``GET /uploads/{upload_id}``). 422 when the count would make codes guessable."""
    with db.write() as s:
        return generation.generate(
            s,
            group_id,
            body.pattern,
            body.count,
            source="api",
            actor=actor,
            batch_size=cfg.upload_batch_size,
        )


# ``:int``: an upload id that is no number (a dry run's ``"upload_id": null`` followed as
# a link) names no upload: 404, as for any other.
@router.get("/uploads/{upload_id:int}", tags=["uploads"])
def get_upload(upload_id: Id, key: Key, db: Db) -> UploadStatusOut:
    with db.read() as s:
        return _upload_out(uploads.get_upload(s, upload_id))


@router.post("/uploads/{upload_id:int}/withdraw", tags=["uploads"])
def withdraw_upload(upload_id: Id, actor: ApiActor, db: Db) -> UploadStatusOut:
    with db.write() as s:
        return _upload_out(uploads.withdraw_upload(s, upload_id, actor=actor))


def _upload_out(upload: Upload) -> UploadStatusOut:
    return UploadStatusOut(
        id=upload.id,
        group_id=upload.group_id,
        status=upload.status,
        source=upload.source,
        filename=upload.filename,
        created_at=upload.created_at,
        pattern=upload.pattern,
        withdrawn=upload.withdrawn,
        withdrawn_at=upload.withdrawn_at,
        error=upload.error,
        lines_processed=background.progress(upload.id) if upload.status == "running" else None,
        report=uploads.report_of(upload) if upload.status == "done" else None,
    )


# --- codes ----------------------------------------------------------------------------


@router.get(
    "/groups/{group_id}/codes",
    tags=["codes"],
    response_model=Page[CodeRowOut],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def list_codes(
    group_id: Id,
    request: Request,
    actor: ApiActor,
    db: Db,
    status: Annotated[str | None, status_query(STATUSES)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[CodeRowOut] | StreamingResponse:
    """A page of the group's codes; with ``Accept: text/csv``, all of them as CSV."""
    wanted = status_filter(status, STATUSES)
    if "text/csv" in request.headers.get("accept", ""):
        return exports.response(exports.codes(db, group_id, status=wanted, actor=actor))
    with db.read() as s:
        service.get_group(s, group_id)
        rows = export.page(
            s, group_id, status=wanted, after_id=decode_cursor(cursor), limit=limit + 1
        )
    rows, next_cursor = split_page(rows, limit, lambda r: r.id)
    items = [
        CodeRowOut(
            code=r.code,
            status=r.status,
            customer_id=r.customer_id,
            issued_at=r.issued_at,
            redeemed_at=r.redeemed_at,
            valid_until=r.valid_until,
        )
        for r in rows
    ]
    return Page(items=items, next_cursor=next_cursor)
