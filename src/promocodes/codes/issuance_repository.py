"""SQL of redemptions and of reading issuances back: histories, who holds a code.
(Every statement that claims, records or voids an issuance is in ``claim_repository``.)
Status changes are conditional UPDATEs that must change exactly one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session

from promocodes.codes.models import (
    AVAILABLE,
    INITIAL,
    REDEEMED,
    Code,
    CodeGroup,
    Issuance,
    Redemption,
)
from promocodes.customers.models import Customer
from promocodes.db import rowcount

codes_t = cast(Table, Code.__table__)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A live group as issuing needs it (validity, expiry flag, name for messages)."""

    id: int
    name: str
    valid_from: datetime | None
    valid_until: datetime | None
    has_code_expiry: bool
    # At most this many standing initial codes per customer (None: no limit), and what
    # an initial issue does at it (``models.LIMIT_ACTIONS``).
    customer_limit: int | None = None
    limit_action: str = "repeat"


def mark_redeemed(session: Session, code_id: int, expected: str, now: datetime) -> bool:
    result = session.execute(
        update(codes_t)
        .where(codes_t.c.id == code_id, codes_t.c.status == expected)
        .values(status=REDEEMED, redeemed_at=now)
    )
    return rowcount(result) == 1


def add_redemption(
    session: Session, code_id: int, customer_id: int | None, order_id: str | None, now: datetime
) -> None:
    session.add(
        Redemption(code_id=code_id, customer_id=customer_id, order_id=order_id, redeemed_at=now)
    )
    session.flush()


def get_redemption(session: Session, code_id: int) -> Redemption | None:
    return session.get(Redemption, code_id)


def unmark_redeemed(session: Session, code_id: int, to_status: str) -> bool:
    """Redeemed → ``to_status``, only if the code is still redeemed; back in stock it
    also loses its ``issued_at`` (see ``code_repository.set_unblocked``)."""
    values: dict[str, object] = {"status": to_status, "redeemed_at": None}
    if to_status == AVAILABLE:
        values["issued_at"] = None
    result = session.execute(
        update(codes_t)
        .where(codes_t.c.id == code_id, codes_t.c.status == REDEEMED)
        .values(**values)
    )
    return rowcount(result) == 1


def delete_redemption(session: Session, code_id: int) -> None:
    session.execute(delete(Redemption).where(Redemption.code_id == code_id))


def has_standing_issuance(session: Session, code_id: int) -> bool:
    """Whether anyone holds the code: an issuance of it that was not voided."""
    stmt = exists().where(Issuance.code_id == code_id, Issuance.voided_at.is_(None))
    return bool(session.scalar(select(stmt)))


def initial_issues_since(session: Session, group_id: int, since: datetime) -> int:
    """Initial issues from the group since ``since`` that still stand."""
    stmt = select(func.count()).where(
        Issuance.group_id == group_id,
        Issuance.kind == INITIAL,
        Issuance.voided_at.is_(None),
        Issuance.issued_at >= since,
    )
    return session.scalar(stmt) or 0


def issued_to(session: Session, code_id: int, customer_id: int) -> bool:
    """Whether the code stands issued (not voided) to the customer."""
    stmt = exists().where(
        Issuance.code_id == code_id,
        Issuance.customer_id == customer_id,
        Issuance.voided_at.is_(None),
    )
    return bool(session.scalar(select(stmt)))


@dataclass(frozen=True, slots=True)
class HistoryRow:
    issuance_id: int
    code: str
    group_id: int
    group_name: str
    kind: str
    issued_at: datetime
    source: str
    source_ref: str | None
    status: str
    voided_at: datetime | None
    redeemed_at: datetime | None
    customer_id: str


_HISTORY = (
    select(
        Issuance.id,
        Code.code,
        Issuance.group_id,
        CodeGroup.name,
        Issuance.kind,
        Issuance.issued_at,
        Issuance.source,
        Issuance.source_ref,
        Code.status,
        Issuance.voided_at,
        Code.redeemed_at,
        Customer.external_id,
    )
    .join(Code, Code.id == Issuance.code_id)
    .join(CodeGroup, CodeGroup.id == Issuance.group_id)
    .join(Customer, Customer.id == Issuance.customer_id)
)


def customer_history(
    session: Session, customer_id: int, *, before_id: int | None, limit: int
) -> list[HistoryRow]:
    """A customer's issuances, newest first (keyset on issuance id)."""
    stmt = _HISTORY.where(Issuance.customer_id == customer_id)
    if before_id is not None:
        stmt = stmt.where(Issuance.id < before_id)
    rows = session.execute(stmt.order_by(Issuance.id.desc()).limit(limit))
    return [HistoryRow(*tuple(row)) for row in rows]


def code_history(session: Session, code_id: int) -> list[HistoryRow]:
    stmt = _HISTORY.where(and_(Issuance.code_id == code_id))
    return [HistoryRow(*tuple(row)) for row in session.execute(stmt.order_by(Issuance.id))]
