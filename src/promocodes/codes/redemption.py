"""Redeeming and blocking codes, and taking either back: the status changes after issuing.

Each is a conditional UPDATE from the status that was read, so none can race a claim
(or another of them) into a double count; the counters change in the same transaction.
A code taken back (a redemption reversed, a block lifted) returns to ``issued`` when
someone holds it (an issuance not voided), otherwise to the group's stock.
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
from promocodes.codes.schemas import RedeemOut
from promocodes.errors import (
    CodeAlreadyRedeemed,
    CodeBlocked,
    CodeNotFound,
    CodeNotIssued,
    CodeNotRedeemed,
    Conflict,
    WrongOrder,
)
from promocodes.models import utcnow


@dataclass(frozen=True, slots=True)
class Redeemed:
    code: str
    group_id: int
    redeemed_at: datetime
    order_id: str | None
    customer_id: str | None


def as_out(done: Redeemed) -> RedeemOut:
    """A redemption as the API answers it (and ``codes redeem --code --json`` prints it)."""
    return RedeemOut(
        code=done.code,
        status=REDEEMED,
        group_id=done.group_id,
        redeemed_at=done.redeemed_at,
        order_id=done.order_id,
        customer_id=done.customer_id,
    )


# What a second redemption of a redeemed code is (``repeat_of``).
RETRY = "retry"
FOR_ANOTHER = "same order, another customer"
ANOTHER = "another redemption"


def repeat_of(
    done_order: str | None,
    done_for: object | None,
    order_id: str | None,
    customer: object | None,
) -> str:
    """The rule for redeeming a code already redeemed (by ``done_order``, for the customer
    ``done_for``), here and for each line of a redemption file: with the same order id it
    is the same checkout retried (``RETRY``, answered with the first result) unless it
    names another customer than the redemption did (``FOR_ANOTHER``: not the same
    request, and must not be answered as theirs); anything else is ``ANOTHER``. Customers
    are compared by any one key (row ids here, a file's external ids)."""
    if order_id is None or done_order != order_id:
        return ANOTHER
    if customer is not None and customer != done_for:
        return FOR_ANOTHER
    return RETRY


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
        repeat = ANOTHER
        if done is not None:
            asked_for = customer.id if customer else None
            repeat = repeat_of(done.order_id, done.customer_id, order_id, asked_for)
        if repeat == FOR_ANOTHER and customer is not None:
            raise CodeAlreadyRedeemed(
                f"code {code!r} was already redeemed (order {order_id}), not for "
                f"customer {customer.external_id!r}"
            )
        if repeat == RETRY and done is not None:
            return Redeemed(row.code, row.group_id, done.redeemed_at, done.order_id, external_id)
        raise CodeAlreadyRedeemed(
            f"code {code!r} was already redeemed"
            + (f" (order {done.order_id})" if done is not None and done.order_id else ""),
        )
    if row.status == BLOCKED:
        raise CodeBlocked(f"code {code!r} is blocked and cannot be redeemed")
    if customer is not None and not history.issued_to(session, row.id, customer.id):
        raise CodeNotIssued(f"code {code!r} was not issued to customer {customer.external_id!r}")
    if row.status == AVAILABLE and (require_issued or not _flyers(session, row.group_id)):
        raise CodeNotIssued(
            f"code {code!r} has not been issued to anyone, and its group only redeems codes "
            "that were"
        )
    previous = row.status
    if not history.mark_redeemed(session, row.id, previous, now):
        raise Conflict(f"code {code!r} changed while redeeming it; try again")
    history.add_redemption(session, row.id, customer.id if customer else None, order_id, now)
    repo.bump_counters(
        session, row.group_id, redeemed=1, available=-1 if previous == AVAILABLE else 0
    )
    return Redeemed(row.code, row.group_id, now, order_id, external_id)


def _flyers(session: Session, group_id: int) -> bool:
    """Whether the group's codes may be redeemed without being issued (printed flyers)."""
    group = repo.get_group(session, group_id, live=False)
    return group is not None and group.redeem_unissued


def unredeem(session: Session, code: str, *, order_id: str | None, actor: Actor = SYSTEM) -> str:
    """Reverse a redemption (a cancelled or refunded order). ``order_id`` must be the
    order that redeemed the code (None only when it was redeemed without one). Returns
    the status the code went back to."""
    row = rows.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    done = history.get_redemption(session, row.id) if row.status == REDEEMED else None
    if done is None:
        raise CodeNotRedeemed(f"code {code!r} is {row.status}, not redeemed; nothing to reverse")
    if done.order_id != order_id:
        by = f"order {done.order_id!r}" if done.order_id else "no order id"
        raise WrongOrder(f"code {code!r} was redeemed by {by}, not {order_id!r}")
    issued_before = row.issued_at is not None
    back = ISSUED if history.has_standing_issuance(session, row.id) else AVAILABLE
    if not history.unmark_redeemed(session, row.id, back):
        raise Conflict(f"code {code!r} changed while reversing its redemption; try again")
    history.delete_redemption(session, row.id)
    _bump_back(session, row.group_id, back, issued_before, redeemed=-1)
    details = {"group_id": row.group_id, "order_id": order_id, "status": back}
    record(session, actor, "code.unredeemed", Target("code", row.id, code), details)
    return back


def _bump_back(
    session: Session, group_id: int, back: str, issued_before: bool, **change: int
) -> None:
    # Back in stock, a code counts as available again and no longer as issued (its
    # issued_at was cleared: a later claim counts it again).
    stock = back == AVAILABLE
    repo.bump_counters(
        session,
        group_id,
        available=1 if stock else 0,
        issued=-1 if stock and issued_before else 0,
        **change,
    )


def unblock(session: Session, code: str, *, actor: Actor = SYSTEM) -> tuple[str, str]:
    """Lift a block. Returns the status the code had and the one it has now; unblocking
    a code that is not blocked is a no-op (both are its status)."""
    row = rows.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    if row.status != BLOCKED:
        return row.status, row.status
    issued_before = row.issued_at is not None
    back = ISSUED if history.has_standing_issuance(session, row.id) else AVAILABLE
    if not rows.set_unblocked(session, row.id, back):
        raise Conflict(f"code {code!r} changed while unblocking it; try again")
    _bump_back(session, row.group_id, back, issued_before, blocked=-1)
    details = {"group_id": row.group_id, "status": back}
    record(session, actor, "code.unblocked", Target("code", row.id, code), details)
    return BLOCKED, back


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
