"""SQL of the customers domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ARRAY, String, any_, bindparam, select
from sqlalchemy.orm import Session

from promocodes.customers.models import Customer
from promocodes.db import dialect_of


def by_external_id(session: Session, external_id: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.external_id == external_id))


def by_external_ids(session: Session, external_ids: Sequence[str]) -> dict[str, Customer]:
    if dialect_of(session) == "postgresql":
        # One array parameter, not IN with a parameter per id: once psycopg prepares the
        # statement, PostgreSQL's generic plan for a thousand-parameter IN list scans the
        # whole table instead of probing the unique index.
        ids = bindparam("ids", list(external_ids), type_=ARRAY(String))
        cond = Customer.external_id == any_(ids)
    else:
        cond = Customer.external_id.in_(external_ids)
    rows = session.scalars(select(Customer).where(cond))
    return {c.external_id: c for c in rows}


def page(session: Session, *, after_id: int | None, limit: int) -> list[Customer]:
    stmt = select(Customer).order_by(Customer.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Customer.id > after_id)
    return list(session.scalars(stmt))
