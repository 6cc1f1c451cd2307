"""Issuing codes to customers and redeeming them: the one path every channel uses.

API calls, mailings and campaigns all come through ``issue_initial`` / ``issue_repeat``,
so a code can only ever be claimed one way: a conditional UPDATE of an ``available`` row
(see ``issuance_repository.claim_available``). Exactly-once per message comes from the
business key ``(key, group, kind)``: a retry finds the issuance it made before, and a
unique constraint settles two racing calls with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import claims
from promocodes.codes import issuance_repository as repo
from promocodes.codes import repository as codes_repo
from promocodes.codes.models import (
    AVAILABLE,
    BLOCKED,
    INITIAL,
    ISSUED,
    REDEEMED,
    REPEAT,
    CodeGroup,
)
from promocodes.customers.service import CustomerNotFound
from promocodes.db import Driver
from promocodes.errors import (
    CodeAlreadyRedeemed,
    CodeBlocked,
    CodeNotFound,
    CodeNotIssued,
    Conflict,
    GroupExhausted,
    GroupExpired,
    GroupNotFound,
    GroupNotYetValid,
    IdempotencyKeyReused,
)
from promocodes.models import utcnow

SOURCES = ("api", "mailing", "campaign")


class CustomerLike(Protocol):
    """A customer as issuing sees it (a ``Customer`` row or a ``CustomerRef``). Issuing
    also takes the external id alone: it finds the customer in its first statement."""

    @property
    def id(self) -> int: ...

    @property
    def external_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Issued:
    code: str | None
    kind: str
    group_id: int
    customer_id: str
    issued_at: datetime | None
    issuance_id: int | None


def check_validity(group: CodeGroup | repo.GroupRow, now: datetime) -> None:
    if group.valid_until is not None and now >= group.valid_until:
        raise GroupExpired(
            f"group {group.name!r} expired on {group.valid_until:%Y-%m-%d %H:%M UTC}",
            group_id=group.id,
        )
    if group.valid_from is not None and now < group.valid_from:
        raise GroupNotYetValid(
            f"group {group.name!r} is valid from {group.valid_from:%Y-%m-%d %H:%M UTC}",
            group_id=group.id,
        )


def _replay(
    prior: claims.Prior, kind: str, group_id: int, customer_id: int, external_id: str
) -> Issued:
    """The answer an earlier call with this key gave."""
    if prior.customer_id != customer_id:
        raise IdempotencyKeyReused(
            "this idempotency key was already used to issue a code to another customer"
        )
    return Issued(prior.code, kind, group_id, external_id, prior.issued_at, prior.issuance_id)


def _known(
    found: claims.Attempt | claims.NoCustomer | claims.NoGroup, request: claims.Request
) -> claims.Attempt:
    """The attempt, once the customer (first) and the group are known to exist."""
    if isinstance(found, claims.NoCustomer):
        raise CustomerNotFound(f"customer {request.external_id!r} does not exist")
    if isinstance(found, claims.NoGroup):
        raise GroupNotFound(f"group {request.group_id} does not exist")
    return found


def _answer(
    tx: Session | Driver, attempt: claims.Attempt, kind: str, request: claims.Request
) -> Issued | None:
    """What every issue answers alike: a replay of the key (even after the group
    expired: it hands out nothing new), a key won by a concurrent call, a group not valid
    now, or the recorded issue. None when there was nothing to give."""
    group, result, prior = attempt.group, attempt.result, attempt.prior
    external_id = request.external_id
    if isinstance(result, claims.KeyTaken):
        # A concurrent call with this key committed first; answer as it did.
        prior = claims.prior_issue(tx, request.key, group.id, kind)
        assert prior is not None, "the conflicting issuance must be visible after it won"
    if prior is not None:
        return _replay(prior, kind, group.id, attempt.customer_id, external_id)
    if not attempt.live:
        check_validity(group, request.now)
    if isinstance(result, claims.Claimed):
        return Issued(result.code, kind, group.id, external_id, request.now, result.issuance_id)
    return None


def _issue(
    tx: Session | Driver,
    kind: str,
    customer: CustomerLike | str,
    group_id: int,
    key: str,
    source: str,
    source_ref: str | None,
    now: datetime | None,
) -> tuple[claims.Attempt, claims.Request, Issued | None]:
    """One issue of either kind: the attempt, what was asked, and the answer (None when
    there was nothing to give)."""
    external_id = customer if isinstance(customer, str) else customer.external_id
    request = claims.Request(group_id, key, external_id, source, source_ref, now or utcnow())
    attempt_of_kind = claims.attempt_initial if kind == INITIAL else claims.attempt_repeat
    attempt = _known(attempt_of_kind(tx, request), request)
    return attempt, request, _answer(tx, attempt, kind, request)


def issue_initial(
    tx: Session | Driver,
    customer: CustomerLike | str,
    group_id: int,
    *,
    key: str,
    source: str,
    source_ref: str | None = None,
    now: datetime | None = None,
) -> Issued:
    """Give the customer (or the customer with this external id) a new code from the
    group, once per ``key``."""
    attempt, _, issued = _issue(tx, INITIAL, customer, group_id, key, source, source_ref, now)
    if issued is None:
        name = attempt.group.name
        raise GroupExhausted(f"group {name!r} has no codes left to issue", group_id=group_id)
    return issued


def issue_repeat(
    tx: Session | Driver,
    customer: CustomerLike | str,
    group_id: int,
    *,
    key: str,
    source: str,
    source_ref: str | None = None,
    now: datetime | None = None,
) -> Issued:
    """Re-show the code the customer last received initially from the group, recorded
    as a repeat issuance; ``code`` is None (and nothing is recorded) when there is none."""
    _, request, issued = _issue(tx, REPEAT, customer, group_id, key, source, source_ref, now)
    return issued or Issued(None, REPEAT, group_id, request.external_id, None, None)


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
    row = codes_repo.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    if row.status == REDEEMED:
        done = repo.get_redemption(session, row.id)
        if done is not None and order_id is not None and done.order_id == order_id:
            return Redeemed(
                row.code,
                row.group_id,
                done.redeemed_at,
                done.order_id,
                customer.external_id if customer else None,
            )
        raise CodeAlreadyRedeemed(
            f"code {code!r} was already redeemed"
            + (f" (order {done.order_id})" if done is not None and done.order_id else ""),
        )
    if row.status == BLOCKED:
        raise CodeBlocked(f"code {code!r} is blocked and cannot be redeemed")
    if customer is not None and not _issued_to(session, row.id, customer):
        raise CodeNotIssued(f"code {code!r} was not issued to customer {customer.external_id!r}")
    if require_issued and row.status != ISSUED:
        raise CodeNotIssued(f"code {code!r} has not been issued to anyone")
    previous = row.status
    if not repo.mark_redeemed(session, row.id, previous, now):
        raise Conflict(f"code {code!r} changed while redeeming it; try again")
    repo.add_redemption(session, row.id, customer.id if customer else None, order_id, now)
    codes_repo.bump_counters(
        session, row.group_id, redeemed=1, available=-1 if previous == AVAILABLE else 0
    )
    return Redeemed(
        row.code, row.group_id, now, order_id, customer.external_id if customer else None
    )


def _issued_to(session: Session, code_id: int, customer: CustomerLike) -> bool:
    return any(
        h.customer_id == customer.external_id and h.voided_at is None
        for h in repo.code_history(session, code_id)
    )


@dataclass(frozen=True, slots=True)
class Lookup:
    code: str
    status: str
    group_id: int
    group_name: str
    valid_until: datetime | None
    issuances: list[repo.HistoryRow]
    redeemed_at: datetime | None
    order_id: str | None


def lookup(session: Session, code: str, *, actor: Actor = SYSTEM) -> Lookup:
    """Who received this code, when, through what, and its status. A look-up reveals
    customers, so it is audited: the caller's transaction must be a write."""
    row = codes_repo.get_code(session, code)
    if row is None:
        raise CodeNotFound(f"code {code!r} does not exist")
    group = session.get(CodeGroup, row.group_id)
    assert group is not None
    target = Target("code", row.id, row.code)
    record(session, actor, "code.looked_up", target, {"group_id": group.id})
    redemption = repo.get_redemption(session, row.id)
    return Lookup(
        code=row.code,
        status=row.status,
        group_id=row.group_id,
        group_name=group.name,
        valid_until=row.valid_until,
        issuances=repo.code_history(session, row.id),
        redeemed_at=row.redeemed_at,
        order_id=redemption.order_id if redemption else None,
    )


def customer_history(
    session: Session, customer: CustomerLike, *, before_id: int | None = None, limit: int = 100
) -> list[repo.HistoryRow]:
    return repo.customer_history(session, customer.id, before_id=before_id, limit=limit)
