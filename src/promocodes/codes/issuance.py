"""Issuing codes to customers, one at a time: the door of the API issue, of campaign
events and of the demo. (A mailing chunk takes its codes in bulk through
``reservation.py``; a refused message gives them back through ``void``.)

Exactly-once per message comes from the business key ``(key, group, kind)``: a retry
finds the issuance it made before, and a unique constraint settles two racing calls with
the same key. A code is only ever claimed by a conditional UPDATE of an ``available`` row
(``claim_repository``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from promocodes.codes import batch_repository as batch
from promocodes.codes import claim_repository as claims
from promocodes.codes import repository as repo
from promocodes.codes.benefit import benefit_of, public_text
from promocodes.codes.models import INITIAL, REPEAT, CodeGroup, closed_at, name_key
from promocodes.codes.schemas import IssueOut
from promocodes.codes.service import live_groups
from promocodes.customers.service import CustomerErased, CustomerNotFound
from promocodes.db import Driver
from promocodes.errors import (
    CustomerLimitReached,
    GroupExhausted,
    GroupExpired,
    GroupNotFound,
    GroupNotYetValid,
    IdempotencyKeyReused,
)
from promocodes.models import utcnow

SOURCES = ("api", "cli", "mailing", "campaign")


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


def as_out(got: Issued) -> IssueOut:
    """An issue as the API answers it (and ``codes issue --json`` prints it)."""
    return IssueOut(
        code=got.code,
        kind=got.kind,
        group_id=got.group_id,
        customer_id=got.customer_id,
        issued_at=got.issued_at,
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
    if isinstance(found, claims.NoCustomer) and found.erased:
        raise CustomerErased(f"customer {request.external_id!r} was erased: they get no codes")
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
    if isinstance(result, claims.AtLimit):
        return None  # issue_initial decides: the last code again, or nothing
    if isinstance(result, claims.KeyTaken):
        # A concurrent call with this key committed first; answer as it did.
        prior = claims.prior_issue(tx, request.key, group.id, kind)
        assert prior is not None, "the conflicting issuance must be visible after it won"
    if prior is not None:
        return _replay(prior, kind, group.id, attempt.customer_id, external_id)
    if not attempt.live and (closed := closed_at(group, request.now)) is not None:
        raise closed
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
    group, once per ``key``. A customer at the group's limit gets their last code again,
    recorded as a repeat (``kind`` says so), or, when the group says ``skip`` or there
    is no code to show, CustomerLimitReached."""
    attempt, request, issued = _issue(tx, INITIAL, customer, group_id, key, source, source_ref, now)
    if isinstance(attempt.result, claims.AtLimit):
        shown = None
        if attempt.group.limit_action == REPEAT:
            shown = issue_repeat(
                tx, customer, group_id, key=key, source=source, source_ref=source_ref, now=now
            )
        if shown is not None and shown.code is not None:
            return shown
        raise limit_reached(attempt.group.name, attempt.group.customer_limit, request.external_id)
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


def limit_reached(
    group_name: str, limit: int | None, external_id: str | None
) -> CustomerLimitReached:
    who = "the customer" if external_id is None else f"customer {external_id!r}"
    return CustomerLimitReached(
        f"{who} already holds {limit} code{'s' if limit != 1 else ''} "
        f"from group {group_name!r}, its limit per customer"
    )


# --- the codes of one message ----------------------------------------------------------


class GroupsByName:
    """The live groups by the names template macros give them, read once, and whether
    each can issue at ``now``: ``open`` returns the group or raises GroupNotFound,
    GroupExpired or GroupNotYetValid (decided once per name)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.now = now
        self._live = live_groups(session)
        self._judged: dict[str, CodeGroup | GroupNotFound | GroupExpired | GroupNotYetValid] = {}

    def open(self, name: str) -> CodeGroup:
        key = name_key(name)
        if key not in self._judged:
            group = self._live.get(key)
            if group is None:
                self._judged[key] = GroupNotFound(f"no group named {name!r}")
            else:
                self._judged[key] = closed_at(group, self.now) or group
        found = self._judged[key]
        if isinstance(found, CodeGroup):
            return found
        raise found.with_traceback(None)  # raised again for every message: no growing trace

    def benefit(self, name: str) -> str:
        """The live group's benefit in words (whatever its validity: it takes no code);
        GroupNotFound when no live group has the name."""
        group = self._live.get(name_key(name))
        if group is None:
            raise GroupNotFound(f"no group named {name!r}")
        return public_text(benefit_of(group))


# Why a group named in a message cannot give it a code: the message is skipped for it.
CANNOT_GIVE = (GroupNotFound, GroupExpired, GroupNotYetValid, GroupExhausted, CustomerLimitReached)


class MessageCodes(Protocol):
    """The codes of one message: a new code from a group (``initial``) or the
    customer's last one from it (``repeat``, None when there is none). Both raise one of
    ``CANNOT_GIVE`` when the group cannot give one. ``benefit`` is the group's benefit in
    words (it takes no code)."""

    def initial(self, group_name: str) -> str: ...

    def repeat(self, group_name: str) -> str | None: ...

    def benefit(self, group_name: str) -> str: ...


class IssuedCodes:
    """A message's codes issued one at a time under the message's key (campaign events):
    each is an exactly-once issue, so a retried event gets the same codes."""

    def __init__(
        self,
        session: Session,
        customer: CustomerLike,
        *,
        key: str,
        source: str,
        source_ref: str | None,
        groups: GroupsByName,
    ) -> None:
        self._session = session
        self._customer = customer
        self._key = key
        self._source = source
        self._ref = source_ref
        self._groups = groups

    def initial(self, group_name: str) -> str:
        group = self._groups.open(group_name)
        got = issue_initial(
            self._session,
            self._customer,
            group.id,
            key=self._key,
            source=self._source,
            source_ref=self._ref,
        )
        assert got.code is not None
        return got.code

    def repeat(self, group_name: str) -> str | None:
        group = self._groups.open(group_name)
        return issue_repeat(
            self._session,
            self._customer,
            group.id,
            key=self._key,
            source=self._source,
            source_ref=self._ref,
        ).code

    def benefit(self, group_name: str) -> str:
        return self._groups.benefit(group_name)


def holders_of_last(
    session: Session, group_ids: Iterable[int], customer_ids: Sequence[int]
) -> dict[int, set[int]]:
    """group id -> the customers (of those given) holding a last code from it: what
    ``last_promocode`` would show them (their latest initial issue, not voided, its code
    not blocked)."""
    return {g: set(batch.last_initials(session, g, customer_ids)) for g in group_ids}


# --- giving codes back ----------------------------------------------------------------


def void(session: Session, key: str, *, now: datetime | None = None) -> int:
    """Void the issuances of the message ``key`` (nobody saw it: the receiving server
    refused it): they stay as history, marked voided, and its initial codes go back to
    their groups' stock. A code redeemed or blocked meanwhile stays as it is. Returns how
    many issuances were voided (0 when they already were)."""
    standing = batch.standing_of_key(session, key)
    if not standing:
        return 0
    batch.void(session, [s.id for s in standing], now or utcnow())
    by_group: dict[int, list[int]] = {}
    for s in standing:
        if s.kind == INITIAL:
            by_group.setdefault(s.group_id, []).append(s.code_id)
    back: Counter[int] = Counter()
    for group_id, code_ids in by_group.items():
        back[group_id] = batch.release(session, code_ids)
    for group_id, n in back.items():
        repo.bump_counters(session, group_id, available=n, issued=-n)
    return len(standing)
