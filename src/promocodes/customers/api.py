"""REST routes of customers: upsert, read, erase, list, import, promo code history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor

from promocodes import erasure
from promocodes.apikit import (
    PROBLEM_RESPONSES,
    TEXT_FILE,
    Cursor,
    Db,
    Key,
    Limit,
    Page,
    spooled_body,
)
from promocodes.audit.api import ApiActor
from promocodes.codes import lookup
from promocodes.customers import service
from promocodes.customers.importer import read_customers
from promocodes.customers.schemas import (
    CustomerFields,
    CustomerIn,
    CustomerOut,
    ImportReport,
    PromoCodeOut,
)
from promocodes.dispatch import OneHopRoute
from promocodes.errors import ValidationFailed
from promocodes.pagination import decode_cursor, split_page
from promocodes.text import NO_NUL_PATTERN


class _CustomerIdConvertor(StringConvertor):
    """A customer id in a path: any segment but ``import``, the name of the import
    route, so that a PUT or DELETE sent to ``/customers/import`` by mistake is a 405
    (``Allow: POST``) instead of creating or erasing a customer called "import"."""

    regex = "(?!import$)[^/]+"


register_url_convertor("customer_id", _CustomerIdConvertor())

router = APIRouter(
    prefix="/api/v1", tags=["customers"], responses=PROBLEM_RESPONSES, route_class=OneHopRoute
)
CustomerId = Annotated[str, PathParam(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                # Records are checked one by one: one that is not a customer is reported
                # by its line in ``invalid`` and the others are imported, so any object is
                # schema-valid here (the customer's shape is the first choice).
                "schema": {
                    "type": "array",
                    "items": {"anyOf": [CustomerIn.model_json_schema(), {"type": "object"}]},
                }
            },
            "application/x-ndjson": {"schema": TEXT_FILE},
            "text/csv": {"schema": TEXT_FILE},
        },
    }
}
_FORMATS = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "text/csv": "csv",
}


@router.put("/customers/{customer_id:customer_id}")
def upsert_customer(customer_id: CustomerId, body: CustomerFields, key: Key, db: Db) -> CustomerOut:
    data = body.upsert_for(customer_id)
    with db.write() as s:
        customer, _ = service.upsert(s, data)
        return service.to_out(customer)


@router.get("/customers/{customer_id:customer_id}")
def get_customer(customer_id: CustomerId, key: Key, db: Db) -> CustomerOut:
    with db.read() as s:
        return service.to_out(service.get(s, customer_id))


@router.delete("/customers/{customer_id:customer_id}", status_code=204)
def erase_customer(customer_id: CustomerId, actor: ApiActor, db: Db) -> Response:
    """Erase the customer's personal data (the right to be forgotten); their history
    stays under a pseudonymous id. 404 for an unknown id, which the erased customer's
    original id is from then on."""
    with db.write() as s:
        erasure.erase(s, customer_id, actor=actor)
    return Response(status_code=204)


@router.get("/customers")
def list_customers(key: Key, db: Db, limit: Limit = 50, cursor: Cursor = None) -> Page[CustomerOut]:
    with db.read() as s:
        items, next_cursor = service.list_page(s, cursor=cursor, limit=limit)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/customers/import", openapi_extra=_IMPORT_BODY)
async def import_customers(request: Request, key: Key, db: Db) -> ImportReport:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMATS.get(kind)
    if fmt is None:
        raise ValidationFailed(
            "send customers as application/json (an array), application/x-ndjson or text/csv"
        )

    def run(path: Path) -> ImportReport:
        with path.open("rb") as stream, db.write() as s:
            return service.import_customers(s, read_customers(stream, fmt=fmt, strict_body=True))

    async with spooled_body(request) as path:
        return await run_in_threadpool(run, path)


@router.get("/customers/{customer_id:customer_id}/promo-codes")
def customer_promo_codes(
    customer_id: CustomerId, key: Key, db: Db, limit: Limit = 100, cursor: Cursor = None
) -> Page[PromoCodeOut]:
    with db.read() as s:
        customer = service.get(s, customer_id)
        rows = lookup.customer_history(
            s, customer, before_id=decode_cursor(cursor), limit=limit + 1
        )
    rows, next_cursor = split_page(rows, limit, lambda h: h.issuance_id)
    return Page(items=[lookup.promo_code_out(h) for h in rows], next_cursor=next_cursor)
