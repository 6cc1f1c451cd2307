"""Who received a code, and which codes a customer received: the read side of issuing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import code_repository as rows
from promocodes.codes import issuance_repository as history
from promocodes.codes import repository as repo
from promocodes.codes.issuance import CustomerLike
from promocodes.codes.issuance_repository import HistoryRow
from promocodes.codes.schemas import CodeLookupOut, IssuanceOut
from promocodes.customers.schemas import PromoCodeOut
from promocodes.errors import CodeNotFound


@dataclass(frozen=True, slots=True)
class Lookup:
    code: str
    status: str
    group_id: int
    group_name: str
    valid_until: datetime | None
    issuances: list[HistoryRow]
    redeemed_at: datetime | None
    order_id: str | None


def lookup(session: Session, code: str, *, actor: Actor = SYSTEM) -> Lookup:
    """Who received this code, when, through what, and its status. A look-up reveals
    customers, so it is audited: the caller's transaction must be a write."""
    row = rows.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    group = repo.get_group(session, row.group_id, live=False)
    assert group is not None
    details = {"group_id": group.id, "group_name": group.name}  # the log names the group
    record(session, actor, "code.looked_up", Target("code", row.id, row.code), details)
    redemption = history.get_redemption(session, row.id)
    return Lookup(
        code=row.code,
        status=row.status,
        group_id=row.group_id,
        group_name=group.name,
        valid_until=row.valid_until,
        issuances=history.code_history(session, row.id),
        redeemed_at=row.redeemed_at,
        order_id=redemption.order_id if redemption else None,
    )


def as_out(found: Lookup) -> CodeLookupOut:
    """A look-up as the API answers it (and ``codes lookup --json`` prints it)."""
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


def customer_history(
    session: Session, customer: CustomerLike, *, before_id: int | None = None, limit: int = 100
) -> list[HistoryRow]:
    """A customer's issuances, newest first (keyset on the issuance id)."""
    return history.customer_history(session, customer.id, before_id=before_id, limit=limit)


def promo_code_out(h: HistoryRow) -> PromoCodeOut:
    """One of a customer's codes as the API's ``/promo-codes`` and ``customers show``
    give it (a voided issuance says so instead of the code's status)."""
    return PromoCodeOut(
        code=h.code,
        group_id=h.group_id,
        group_name=h.group_name,
        kind=h.kind,
        issued_at=h.issued_at,
        source=h.source,
        source_ref=h.source_ref,
        status="voided" if h.voided_at else h.status,
    )
