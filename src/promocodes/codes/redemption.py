"""Redeeming and blocking codes: the status changes after issuing.

Both are conditional UPDATEs from the status that was read, so neither can race a claim
(or each other) into a double count; the counters change in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import code_repository as rows
from promocodes.codes import issuance_repository as history
from promocodes.codes import repository as repo
from promocodes.codes.issuance import CustomerLike
from promocodes.codes.models import AVAILABLE, BLOCKED, ISSUED, REDEEMED
from promocodes.errors import (
    CodeAlreadyRedeemed,
    CodeBlocked,
    CodeNotFound,
    CodeNotIssued,
    Conflict,
)
from promocodes.models import utcnow


@dataclass(frozen=True, slots=True)
class Redeemed:
    code: str
    group_id: int
    redeemed_at: datetime
    order_id: str | None
    customer_id: str | None


def redeem(
    session: Session,
    code: str,
    *,
    customer: CustomerLike | None = None,
    order_id: str | None = None,
    require_issued: bool = False,
    now: datetime | None = None,
) -> Redeemed:
    """Mark a code redeemed, exactly once.

    Redeeming again with the same ``order_id`` returns the first result (a retried
    checkout); anything else is a conflict. With a ``customer``, the code must have been
    issued to that customer; with ``require_issued``, it must have been issued at all.
    """
    now = now or utcnow()
    row = rows.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    external_id = customer.external_id if customer else None
    if row.status == REDEEMED:
        done = history.get_redemption(session, row.id)
        if done is not None and order_id is not None and done.order_id == order_id:
            return Redeemed(row.code, row.group_id, done.redeemed_at, done.order_id, external_id)
        raise CodeAlreadyRedeemed(
            f"code {code!r} was already redeemed"
            + (f" (order {done.order_id})" if done is not None and done.order_id else ""),
        )
    if row.status == BLOCKED:
        raise CodeBlocked(f"code {code!r} is blocked and cannot be redeemed")
    if customer is not None and not history.issued_to(session, row.id, customer.id):
        raise CodeNotIssued(f"code {code!r} was not issued to customer {customer.external_id!r}")
    if require_issued and row.status != ISSUED:
        raise CodeNotIssued(f"code {code!r} has not been issued to anyone")
    previous = row.status
    if not history.mark_redeemed(session, row.id, previous, now):
        raise Conflict(f"code {code!r} changed while redeeming it; try again")
    history.add_redemption(session, row.id, customer.id if customer else None, order_id, now)
    repo.bump_counters(
        session, row.group_id, redeemed=1, available=-1 if previous == AVAILABLE else 0
    )
    return Redeemed(row.code, row.group_id, now, order_id, external_id)


def block(session: Session, code: str, *, actor: Actor = SYSTEM) -> str:
    """Block a code (e.g. leaked): it is never issued or redeemed afterwards.
    Returns the status it had. Blocking a blocked code is a no-op."""
    row = rows.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    previous = row.status
    if previous == BLOCKED:
        return previous
    if previous not in (AVAILABLE, ISSUED):
        raise Conflict(f"code {code!r} is already {previous}; it cannot be blocked")
    # Conditional on the status we read: a concurrent claim that won meanwhile makes
    # this change no row, and we report the conflict instead of double-counting.
    if not rows.set_blocked(session, row.id, previous, utcnow()):
        raise Conflict(f"code {code!r} changed while blocking it; try again")
    repo.bump_counters(
        session,
        row.group_id,
        blocked=1,
        available=-1 if previous == AVAILABLE else 0,
    )
    record(
        session,
        actor,
        "code.blocked",
        Target("code", row.id, code),
        {"group_id": row.group_id, "previous_status": previous},
    )
    return previous
