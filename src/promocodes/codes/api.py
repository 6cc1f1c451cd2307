"""REST routes of the codes domain: groups, uploads, codes, issue, redeem (SPEC §5)."""

from __future__ import annotations

import csv
import dataclasses
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from promocodes.apikit import PROBLEM_RESPONSES, Config, Db, Id, Key, Page
from promocodes.audit.api import ApiActor
from promocodes.audit.service import Actor
from promocodes.codes import alerts, background, issuance, service, uploads
from promocodes.codes import repository as repo
from promocodes.codes.export import csv_safe, record_export
from promocodes.codes.importer import CodeReader, read_list
from promocodes.codes.models import STATUSES
from promocodes.codes.schemas import (
    AlertOut,
    BlockOut,
    CodeLookupOut,
    CodeRowOut,
    CodesIn,
    GroupCreated,
    GroupIn,
    GroupOut,
    GroupUpdate,
    IssuanceOut,
    IssueIn,
    IssueOut,
    RedeemIn,
    RedeemOut,
    StockOut,
    UploadReport,
    UploadStatusOut,
)
from promocodes.customers import service as customers
from promocodes.db import Driver
from promocodes.errors import DomainError, ValidationFailed
from promocodes.idempotency import idempotent
from promocodes.pagination import decode_cursor, split_page
from promocodes.text import NO_NUL_PATTERN

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Limit = Annotated[int, Query(ge=1, le=1000)]
CodeParam = Annotated[str, PathParam(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]


class UnsupportedMedia(DomainError):
    slug = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


# --- groups ---------------------------------------------------------------------------


@router.post("/groups", status_code=201, tags=["groups"])
def create_group(body: GroupIn, actor: ApiActor, db: Db) -> GroupCreated:
    with db.write() as s:
        group = service.create_group(s, body)
        report = None
        if body.codes is not None:
            report = uploads.upload_codes(
                s, group.id, read_list(body.codes), source="api", actor=actor
            )
        out = service.to_out(group, s)
    return GroupCreated(**out.model_dump(), upload=report)


@router.get("/groups", tags=["groups"])
def list_groups(key: Key, db: Db, limit: Limit = 50, cursor: str | None = None) -> Page[GroupOut]:
    with db.read() as s:
        groups = service.list_groups(s, after_id=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = split_page(groups, limit, lambda g: g.id)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/groups/{group_id}", tags=["groups"])
def get_group(group_id: Id, key: Key, db: Db) -> GroupOut:
    with db.read() as s:
        return service.to_out(service.get_group(s, group_id), s)


@router.get("/groups/{group_id}/stock", tags=["groups"])
def group_stock(group_id: Id, key: Key, db: Db) -> StockOut:
    """Days until the group runs out at the issue rate of the last 7 days."""
    with db.read() as s:
        found = alerts.stock(s, service.get_group(s, group_id))
    return StockOut(**dataclasses.asdict(found))


@router.get("/alerts", tags=["groups"])
def list_alerts(key: Key, db: Db) -> list[AlertOut]:
    """Recent stock alerts (low stock, exhausted, expiring soon), newest first."""
    with db.read() as s:
        return [
            AlertOut(
                id=a.id,
                group_id=a.group_id,
                kind=a.kind,
                created_at=a.created_at,
                delivered_at=a.delivered_at,
            )
            for a in alerts.recent(s)
        ]


@router.patch("/groups/{group_id}", tags=["groups"])
def update_group(group_id: Id, body: GroupUpdate, key: Key, db: Db) -> GroupOut:
    with db.write() as s:
        return service.to_out(service.update_group(s, group_id, body), s)


@router.delete("/groups/{group_id}", status_code=204, tags=["groups"])
def delete_group(group_id: Id, actor: ApiActor, db: Db) -> Response:
    with db.write() as s:
        service.delete_group(s, group_id, actor=actor)
    return Response(status_code=204)


# --- uploads --------------------------------------------------------------------------

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CodesIn.model_json_schema()},
            "text/plain": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
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


async def _spool(request: Request) -> tuple[Path, int]:
    """Stream the request body to a temporary file: memory stays bounded whatever the size."""
    size = 0
    with tempfile.NamedTemporaryFile(prefix="upload-", delete=False) as out:
        async for chunk in request.stream():
            out.write(chunk)
            size += len(chunk)
    return Path(out.name), size


@router.post(
    "/groups/{group_id}/codes",
    tags=["uploads"],
    openapi_extra=_UPLOAD_BODY,
    response_model=UploadReport,
    responses={202: {"description": "Large upload accepted; poll the Location"}},
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
    if kind == "application/json":
        try:
            body = CodesIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ValidationFailed(f"body: {exc.errors()[0]['msg']}") from None
        return await _upload_now(db, group_id, read_list(body.codes), None, dry_run, actor)
    if kind == "multipart/form-data":
        form = await request.form(max_files=1)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise ValidationFailed("file: send the codes as a form file field named 'file'")
        path = Path(tempfile.mkstemp(prefix="upload-")[1])
        with path.open("wb") as out:
            while chunk := await part.read(1 << 20):
                out.write(chunk)
        filename = part.filename
    elif kind in ("text/plain", "text/csv"):
        path, _ = await _spool(request)
        filename = "upload.csv" if kind == "text/csv" else None
    else:
        raise UnsupportedMedia(
            "send codes as application/json, text/plain, text/csv or multipart/form-data"
        )
    fmt = "csv" if (kind == "text/csv" or (filename or "").lower().endswith(".csv")) else "text"
    if path.stat().st_size > cfg.upload_background_bytes and not dry_run:
        upload_id = await run_in_threadpool(
            background.start_upload,
            db,
            group_id,
            path,
            fmt=fmt,
            filename=filename,
            source="api",
            actor=actor,
        )
        return JSONResponse(
            {"upload_id": upload_id, "status": "running"},
            status_code=202,
            headers={"Location": f"/api/v1/uploads/{upload_id}"},
        )
    try:
        with path.open("rb") as stream:
            reader = CodeReader(stream, fmt=fmt, filename=filename)
            return await _upload_now(db, group_id, reader, filename, dry_run, actor)
    finally:
        path.unlink(missing_ok=True)


async def _upload_now(
    db: Db, group_id: Id, items: Any, filename: str | None, dry_run: bool, actor: Actor
) -> UploadReport:
    def run() -> UploadReport:
        with db.write() as s:
            return uploads.upload_codes(
                s, group_id, items, source="api", actor=actor, filename=filename, dry_run=dry_run
            )

    return await run_in_threadpool(run)


@router.get("/uploads/{upload_id}", tags=["uploads"])
def get_upload(upload_id: Id, key: Key, db: Db) -> UploadStatusOut:
    with db.read() as s:
        return _upload_out(uploads.get_upload(s, upload_id))


@router.post("/uploads/{upload_id}/withdraw", tags=["uploads"])
def withdraw_upload(upload_id: Id, actor: ApiActor, db: Db) -> UploadStatusOut:
    with db.write() as s:
        return _upload_out(uploads.withdraw_upload(s, upload_id, actor=actor))


def _upload_out(upload: Any) -> UploadStatusOut:
    return UploadStatusOut(
        id=upload.id,
        group_id=upload.group_id,
        status=upload.status,
        source=upload.source,
        filename=upload.filename,
        created_at=upload.created_at,
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
    status: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[CodeRowOut] | StreamingResponse:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}")
    with db.read() as s:
        service.get_group(s, group_id)
    if "text/csv" in request.headers.get("accept", ""):
        with db.write() as s:
            record_export(s, service.get_group(s, group_id), status=status, actor=actor)
        return StreamingResponse(
            _csv_rows(db, group_id, status),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="group-{group_id}.csv"'},
        )
    with db.read() as s:
        rows = repo.code_page(
            s, group_id, status=status, after_id=decode_cursor(cursor), limit=limit + 1
        )
    rows, next_cursor = split_page(rows, limit, lambda r: int(r.id))
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


def _csv_rows(db: Db, group_id: Id, status: str | None) -> Iterator[str]:
    """The export streams page by page (each its own short read), never all rows at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"])
    after: int | None = None
    while True:
        with db.read() as s:
            rows = repo.code_page(s, group_id, status=status, after_id=after, limit=5_000)
        for r in rows:
            writer.writerow(
                [
                    csv_safe(r.code),
                    r.status,
                    csv_safe(r.customer_id or ""),
                    _iso(r.issued_at),
                    _iso(r.redeemed_at),
                    _iso(r.valid_until),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < 5_000:
            return
        after = rows[-1].id


def _iso(value: Any) -> str:
    return value.isoformat() if value else ""


@router.post("/groups/{group_id}/issue", tags=["issue"])
def issue_code(
    group_id: Id,
    body: IssueIn,
    request: Request,
    key: Key,
    db: Db,
    idempotency_key: Annotated[str | None, Header(max_length=200, pattern=NO_NUL_PATTERN)] = None,
) -> IssueOut:
    def run(tx: Driver, issuance_key: str) -> IssueOut:
        fn = issuance.issue_initial if body.kind == "initial" else issuance.issue_repeat
        got = fn(
            tx,
            body.customer_id,
            group_id,
            key=issuance_key,
            source="api",
            source_ref=f"api-key:{key.id}",
        )
        return IssueOut(
            code=got.code,
            kind=got.kind,
            group_id=got.group_id,
            customer_id=got.customer_id,
            issued_at=got.issued_at,
        )

    return idempotent(db, key.id, idempotency_key, request.url.path, body, IssueOut, run)


@router.get("/codes/{code}", tags=["codes"])
def lookup_code(code: CodeParam, actor: ApiActor, db: Db) -> CodeLookupOut:
    # A write: the look-up is audited in the same transaction.
    with db.write() as s:
        found = issuance.lookup(s, code, actor=actor)
    return CodeLookupOut(
        code=found.code,
        status=found.status,
        group_id=found.group_id,
        group_name=found.group_name,
        valid_until=found.valid_until,
        redeemed_at=found.redeemed_at,
        order_id=found.order_id,
        issuances=[
            IssuanceOut(
                customer_id=h.customer_id,
                kind=h.kind,
                issued_at=h.issued_at,
                source=h.source,
                source_ref=h.source_ref,
                voided=h.voided_at is not None,
            )
            for h in found.issuances
        ],
    )


@router.post("/codes/{code}/redeem", tags=["codes"])
def redeem_code(code: CodeParam, body: RedeemIn, key: Key, db: Db) -> RedeemOut:
    with db.write() as s:
        customer = customers.get(s, body.customer_id) if body.customer_id else None
        done = issuance.redeem(s, code, customer=customer, order_id=body.order_id)
    return RedeemOut(
        code=done.code,
        status="redeemed",
        group_id=done.group_id,
        redeemed_at=done.redeemed_at,
        order_id=done.order_id,
        customer_id=done.customer_id,
    )


@router.post("/codes/{code}/block", tags=["codes"])
def block_code(code: CodeParam, actor: ApiActor, db: Db) -> BlockOut:
    with db.write() as s:
        previous = uploads.block_code(s, code, actor=actor)
    return BlockOut(code=code, status="blocked", previous_status=previous)
