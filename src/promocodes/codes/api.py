"""REST routes of groups, stock, issuing, and single codes: look-up, redeem, block and
their reversals (SPEC §5). Uploads and a group's code lists: ``upload_api.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi import Path as PathParam

from promocodes.apikit import PROBLEM_RESPONSES, Cursor, Db, Id, IdempotencyKey, Key, Limit, Page
from promocodes.apilinks import CODE_ISSUED, GROUP_CREATED
from promocodes.audit.api import ApiActor
from promocodes.codes import alerts, checkout, issuance, lookup, redemption, service, uploads
from promocodes.codes.json_codes import read_list
from promocodes.codes.schemas import (
    AlertOut,
    BlockOut,
    CodeLookupOut,
    GroupCreated,
    GroupIn,
    GroupOut,
    GroupUpdate,
    IssueIn,
    IssueOut,
    RedeemIn,
    RedeemOut,
    StockOut,
    UnblockOut,
    UnredeemOut,
    ValidateIn,
    ValidateOut,
)
from promocodes.customers import service as customers
from promocodes.db import Driver
from promocodes.dispatch import OneHopRoute
from promocodes.groupcommit import GroupCommit
from promocodes.idempotency import idempotent
from promocodes.pagination import decode_cursor, split_page
from promocodes.text import NO_NUL_PATTERN

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, route_class=OneHopRoute)
CodeParam = Annotated[str, PathParam(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]


# --- groups ---------------------------------------------------------------------------


@router.post("/groups", status_code=201, tags=["groups"], responses=GROUP_CREATED)
def create_group(body: GroupIn, actor: ApiActor, db: Db) -> GroupCreated:
    with db.write() as s:
        group = service.create_group(s, body)
        report = None
        if body.codes is not None:
            report = uploads.upload_codes(
                s, group.id, read_list(body.codes), source="api", actor=actor
            )
        out = service.to_out(s, group)
    return GroupCreated(**out.model_dump(), upload=report)


@router.get("/groups", tags=["groups"])
def list_groups(key: Key, db: Db, limit: Limit = 50, cursor: Cursor = None) -> Page[GroupOut]:
    with db.read() as s:
        groups = service.list_groups(s, after_id=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = split_page(groups, limit, lambda g: g.id)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/groups/{group_id}", tags=["groups"])
def get_group(group_id: Id, key: Key, db: Db) -> GroupOut:
    with db.driver_read() as tx:
        return service.shown(tx, group_id)


@router.get("/groups/{group_id}/stock", tags=["groups"])
def group_stock(group_id: Id, key: Key, db: Db) -> StockOut:
    """Days until the group runs out at the issue rate of the last 7 days."""
    with db.read() as s:
        return alerts.stock(s, service.get_group(s, group_id))


@router.get("/alerts", tags=["groups"])
def list_alerts(key: Key, db: Db) -> list[AlertOut]:
    """Recent stock alerts (low stock, exhausted, expiring soon), newest first."""
    with db.read() as s:
        return [alerts.as_out(a) for a in alerts.recent(s)]


@router.patch("/groups/{group_id}", tags=["groups"])
def update_group(group_id: Id, body: GroupUpdate, key: Key, db: Db) -> GroupOut:
    with db.write() as s:
        return service.to_out(s, service.update_group(s, group_id, body))


@router.delete("/groups/{group_id}", status_code=204, tags=["groups"])
def delete_group(group_id: Id, actor: ApiActor, db: Db) -> Response:
    with db.write() as s:
        service.delete_group(s, group_id, actor=actor)
    return Response(status_code=204)


@router.post("/groups/{group_id}/issue", tags=["issue"], responses=CODE_ISSUED)
async def issue_code(
    group_id: Id,
    body: IssueIn,
    request: Request,
    key: Key,
    idempotency_key: IdempotencyKey = None,
) -> IssueOut:
    # With the other issues in flight: one transaction and one commit (groupcommit.py).
    writes: GroupCommit = request.app.state.group_commit
    return await writes.run(issue_work(key.id, group_id, body, request.url.path, idempotency_key))


def issue_work(
    key_id: int, group_id: int, body: IssueIn, path: str, idempotency_key: str | None
) -> Callable[[Driver], IssueOut]:
    """The issue a call makes once its key and body are checked, for its write
    transaction: at most once per ``Idempotency-Key``, with its stored answer.
    (``bench/api.py`` times it in-process, a transaction each, beside the same issue
    over HTTP.)"""

    def run(tx: Driver, issuance_key: str) -> IssueOut:
        fn = issuance.issue_initial if body.kind == "initial" else issuance.issue_repeat
        got = fn(
            tx,
            body.customer_id,
            group_id,
            key=issuance_key,
            source="api",
            source_ref=f"api-key:{key_id}",
        )
        return issuance.as_out(got)

    return idempotent(key_id, idempotency_key, path, body, IssueOut, run)


@router.get("/codes/{code}", tags=["codes"])
def lookup_code(code: CodeParam, actor: ApiActor, db: Db) -> CodeLookupOut:
    # A write: the look-up is audited in the same transaction.
    with db.write() as s:
        return lookup.as_out(lookup.lookup(s, code, actor=actor))


@router.post("/codes/{code}/redeem", tags=["codes"])
def redeem_code(code: CodeParam, body: RedeemIn, key: Key, db: Db) -> RedeemOut:
    with db.write() as s:
        customer = customers.get(s, body.customer_id) if body.customer_id else None
        return redemption.as_out(
            redemption.redeem(s, code, customer=customer, order_id=body.order_id)
        )


@router.post("/codes/{code}/validate", tags=["codes"])
def validate_code(
    code: CodeParam,
    key: Key,
    db: Db,
    body: Annotated[ValidateIn | None, Body()] = None,
) -> ValidateOut:
    """Whether the code can be redeemed now (by ``customer_id`` when given), and why not:
    a checkout's question before the order. Changes nothing."""
    with db.read() as s:
        customer_id = body.customer_id if body else None
        customer = customers.get(s, customer_id) if customer_id else None
        return checkout.as_out(checkout.validate(s, code, customer=customer))


@router.post("/codes/{code}/block", tags=["codes"])
def block_code(code: CodeParam, actor: ApiActor, db: Db) -> BlockOut:
    with db.write() as s:
        previous = redemption.block(s, code, actor=actor)
    return BlockOut(code=code, status="blocked", previous_status=previous)


@router.post("/codes/{code}/unblock", tags=["codes"])
def unblock_code(code: CodeParam, actor: ApiActor, db: Db) -> UnblockOut:
    with db.write() as s:
        previous, status = redemption.unblock(s, code, actor=actor)
    return UnblockOut(code=code, status=status, previous_status=previous)


@router.delete("/codes/{code}/redemption", tags=["codes"])
def unredeem_code(
    code: CodeParam,
    actor: ApiActor,
    db: Db,
    order_id: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)
    ] = None,
) -> UnredeemOut:
    """Reverse a redemption: the code goes back to its holder, or to the group's stock."""
    with db.write() as s:
        status = redemption.unredeem(s, code, order_id=order_id, actor=actor)
    return UnredeemOut(code=code, status=status, previous_status="redeemed", order_id=order_id)
