"""The reads the demo needs of a database (it writes only through the real services)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from promocodes.codes.models import AVAILABLE, INITIAL, Code, CodeGroup, Issuance
from promocodes.customers.models import Customer
from promocodes.messaging.models import Campaign, Mailing
from promocodes.segments.models import Segment

_HELD = {
    "groups": CodeGroup.id,
    "customers": Customer.id,
    "segments": Segment.id,
    "mailings": Mailing.id,
    "campaigns": Campaign.id,
}


def holdings(session: Session) -> dict[str, int]:
    """Rows of each kind the demo would mix with."""
    return {name: session.scalar(select(func.count(column))) or 0 for name, column in _HELD.items()}


def group_name_keys(session: Session) -> set[str]:
    return set(session.scalars(select(CodeGroup.name_key)))


def customers_with_id_prefix(session: Session, prefix: str) -> int:
    stmt = select(func.count()).where(Customer.external_id.startswith(prefix, autoescape=True))
    return session.scalar(stmt) or 0


def customers(session: Session, *, kids_only: bool) -> list[tuple[int, str]]:
    """(id, external id) of every customer, or of those whose ``kids`` attribute is true."""
    stmt = select(Customer.id, Customer.external_id).order_by(Customer.id)
    if kids_only:
        stmt = stmt.where(Customer.attributes["kids"].as_boolean().is_(True))
    return [(cid, ext) for cid, ext in session.execute(stmt)]


def standing_initial_codes(session: Session, group_id: int) -> list[tuple[str, int, str]]:
    """(code, customer id, external id) of the group's standing initial issues."""
    stmt = (
        select(Code.code, Customer.id, Customer.external_id)
        .join(Issuance, Issuance.code_id == Code.id)
        .join(Customer, Customer.id == Issuance.customer_id)
        .where(
            Issuance.group_id == group_id,
            Issuance.kind == INITIAL,
            Issuance.voided_at.is_(None),
        )
        .order_by(Issuance.id)
    )
    return [(code, cid, ext) for code, cid, ext in session.execute(stmt)]


def first_available_code(session: Session, group_id: int) -> str | None:
    stmt = (
        select(Code.code)
        .where(Code.group_id == group_id, Code.status == AVAILABLE)
        .order_by(Code.id)
        .limit(1)
    )
    return session.scalar(stmt)
