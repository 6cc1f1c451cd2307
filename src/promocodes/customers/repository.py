"""SQL of the customers domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from promocodes.customers.models import Customer


def by_external_id(session: Session, external_id: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.external_id == external_id))


def by_external_ids(session: Session, external_ids: Sequence[str]) -> dict[str, Customer]:
    rows = session.scalars(select(Customer).where(Customer.external_id.in_(external_ids)))
    return {c.external_id: c for c in rows}


def page(session: Session, *, after_id: int | None, limit: int) -> list[Customer]:
    stmt = select(Customer).order_by(Customer.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Customer.id > after_id)
    return list(session.scalars(stmt))
