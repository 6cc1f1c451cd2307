"""SQL of the segments domain. Services call these inside their transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from promocodes.codes.models import CodeGroup
from promocodes.customers.models import Customer
from promocodes.segments.models import Segment


def by_name(session: Session, name: str) -> Segment | None:
    return session.scalar(select(Segment).where(Segment.name == name))


def all_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name, Segment.id)))


def live_group_ids(session: Session, group_ids: Iterable[int]) -> set[int]:
    """Those of ``group_ids`` naming groups that exist and are not archived."""
    ids = sorted(set(group_ids))
    if not ids:
        return set()
    stmt = select(CodeGroup.id).where(CodeGroup.id.in_(ids), CodeGroup.archived_at.is_(None))
    return set(session.scalars(stmt))


def customers_after(
    session: Session, where: ColumnElement[bool], *, after_id: int | None, limit: int
) -> list[Customer]:
    """Matching customers in id order, from just after ``after_id`` (keyset pagination:
    every page is one index range, however deep)."""
    stmt = select(Customer).where(where).order_by(Customer.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Customer.id > after_id)
    return list(session.scalars(stmt))
