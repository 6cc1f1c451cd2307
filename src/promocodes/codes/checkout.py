"""Checkout validation: may this code be redeemed now (by this customer), and if not,
why — answered without changing anything (no status, counter, history or audit entry).

The verdict follows ``redemption.redeem``'s rules (blocked, already redeemed, issued to
someone else, never issued in a group that needs it) and adds the group's and the code's
validity: a shop asks before it takes the order, so a code past its date is refused
here even though ``redeem`` would still record it (a late order from a valid checkout).
A code issued to another customer is reported as such, never with who holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from promocodes.codes import code_repository as rows
from promocodes.codes import issuance_repository as history
from promocodes.codes import repository as repo
from promocodes.codes.benefit import Benefit, benefit_of
from promocodes.codes.issuance import CustomerLike
from promocodes.codes.models import AVAILABLE, BLOCKED, REDEEMED, Code, CodeGroup, closed_at
from promocodes.codes.schemas import ValidatedGroupOut, ValidateOut
from promocodes.models import utcnow


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the code can be redeemed now; ``reason`` (a stable slug) and ``detail``
    say why not. ``group`` is None only for an unknown code. ``valid_until`` is the
    earlier of the code's own expiry and its group's."""

    code: str
    valid: bool
    reason: str | None
    detail: str | None
    group: CodeGroup | None
    benefit: Benefit | None
    valid_from: datetime | None
    valid_until: datetime | None


def validate(
    session: Session,
    code: str,
    *,
    customer: CustomerLike | None = None,
    now: datetime | None = None,
) -> Verdict:
    """The verdict on ``code`` at ``now``, for ``customer`` when given. Reads only."""
    now = now or utcnow()
    row = rows.get_code(session, code)
    if row is None:
        return Verdict(
            code, False, "code-not-found", f"code {code!r} does not exist", None, None, None, None
        )
    group = repo.get_group(session, row.group_id, live=False)
    assert group is not None, "a code's group outlives it (codes/models.py)"
    refusal = _refusal(session, row, group, customer, now)
    until = min((t for t in (row.valid_until, group.valid_until) if t), default=None)
    reason, detail = refusal if refusal else (None, None)
    return Verdict(
        row.code,
        refusal is None,
        reason,
        detail,
        group,
        benefit_of(group),
        group.valid_from,
        until,
    )


def _refusal(
    session: Session, row: Code, group: CodeGroup, customer: CustomerLike | None, now: datetime
) -> tuple[str, str] | None:
    """(reason, detail) of the first rule the code breaks, or None. Most final first: a
    redeemed code is reported as redeemed even after its group expired."""
    code = row.code
    if group.archived_at is not None:
        return "group-archived", f"the group of code {code!r} was deleted (archived)"
    if row.status == BLOCKED:
        return "code-blocked", f"code {code!r} is blocked and cannot be redeemed"
    if row.status == REDEEMED:
        return "code-already-redeemed", f"code {code!r} was already redeemed"
    closed = closed_at(group, now)
    if closed is not None:
        return closed.slug, closed.detail
    if row.valid_until is not None and now >= row.valid_until:
        return "code-expired", f"code {code!r} expired on {row.valid_until:%Y-%m-%d %H:%M UTC}"
    if customer is not None and not history.issued_to(session, row.id, customer.id):
        if history.has_standing_issuance(session, row.id):
            return "code-issued-to-another-customer", f"code {code!r} belongs to another customer"
        return "code-not-issued", f"code {code!r} was not issued to this customer"
    if row.status == AVAILABLE and not group.redeem_unissued:
        return (
            "code-not-issued",
            f"code {code!r} has not been issued to anyone, and its group only redeems codes "
            "that were",
        )
    return None


def as_out(verdict: Verdict) -> ValidateOut:
    """The verdict as the API and ``codes validate --json`` give it."""
    group = verdict.group
    return ValidateOut(
        code=verdict.code,
        valid=verdict.valid,
        reason=verdict.reason,
        detail=verdict.detail,
        group=ValidatedGroupOut(id=group.id, name=group.name) if group else None,
        benefit=verdict.benefit,
        valid_from=verdict.valid_from,
        valid_until=verdict.valid_until,
    )
