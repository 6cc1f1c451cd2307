"""SQL of the segments domain. Services call these inside their transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.orm import Session

from promocodes.codes.models import CodeGroup
from promocodes.customers.models import Customer
from promocodes.segments.models import Segment


def by_name(session: Session, name: str) -> Segment | None:
    """The live segment of that name."""
    stmt = select(Segment).where(Segment.name == name, Segment.archived_at.is_(None))
    return session.scalar(stmt)


def by_id(session: Session, segment_id: int, *, lock: bool = False) -> Segment | None:
    stmt = select(Segment).where(Segment.id == segment_id)
    if lock:
        # PostgreSQL: FOR UPDATE; SQLite's write transaction already excludes the others.
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def all_segments(session: Session, *, archived: bool = False) -> list[Segment]:
    """The live segments by name; with ``archived``, the archived ones (kept only for the
    mailings that used them), the latest archived first."""
    if archived:
        stmt = select(Segment).where(Segment.archived_at.is_not(None))
        return list(session.scalars(stmt.order_by(Segment.archived_at.desc(), Segment.id)))
    stmt = select(Segment).where(Segment.archived_at.is_(None))
    return list(session.scalars(stmt.order_by(Segment.name, Segment.id)))


def remove(session: Session, segment: Segment) -> None:
    session.delete(segment)
    session.flush()


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


# What an export writes of a customer: plain columns, not entities (a million rows
# through the ORM's identity map cost twice the time).
EXPORT_COLUMNS = (
    Customer.id,
    Customer.external_id,
    Customer.email,
    Customer.phone,
    Customer.first_name,
    Customer.last_name,
    Customer.attributes,
    Customer.created_at,
    Customer.updated_at,
)


def customer_rows_after(
    session: Session, where: ColumnElement[bool], *, after_id: int | None, limit: int
) -> list[Row[Any]]:
    """``customers_after`` as rows of ``EXPORT_COLUMNS``."""
    stmt = select(*EXPORT_COLUMNS).where(where).order_by(Customer.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Customer.id > after_id)
    return list(session.execute(stmt))


def count(session: Session, stmt: Select[int]) -> int:
    """Run a count built by ``filters.count_sql``."""
    return session.scalar(stmt) or 0


def every_kth(
    session: Session, where: ColumnElement[bool], step: int, limit: int
) -> list[Customer]:
    """Matching customers 1, 1 + step, 1 + 2·step, … in id order, at most ``limit``."""
    numbered = (
        select(Customer.id, func.row_number().over(order_by=Customer.id).label("n"))
        .where(where)
        .subquery()
    )
    picked = select(numbered.c.id).where((numbered.c.n - 1) % step == 0).limit(limit)
    stmt = select(Customer).where(Customer.id.in_(picked)).order_by(Customer.id)
    return list(session.scalars(stmt))
