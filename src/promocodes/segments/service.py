"""Segments: saved filter trees, and counting, sampling and paging their customers.

Services take a session from the caller's transaction and only ``flush()``. Every
evaluation is one query over ``customers`` whose WHERE clause ``filters.to_sql`` builds,
so a segment of a million customers is counted without loading any of them.

Group references are checked (``validate_references``) when a tree is saved or
previewed; evaluating a saved segment never fails because a group it names was archived
later — its history still counts.
"""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from promocodes.customers.models import Customer
from promocodes.customers.schemas import CustomerOut
from promocodes.customers.service import decode_cursor, encode_cursor
from promocodes.customers.service import to_out as customer_out
from promocodes.db import dialect_of
from promocodes.errors import Conflict, NotFound, ValidationFailed
from promocodes.models import utcnow
from promocodes.segments import repository as repo
from promocodes.segments.filters import count_sql, to_sql
from promocodes.segments.models import Segment
from promocodes.segments.schemas import (
    DEFAULT_SAMPLE,
    CustomersPage,
    PreviewOut,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)
from promocodes.segments.tree import (
    Filter,
    IssuedCount,
    IssuedFromGroup,
    ReachedLimit,
    dump_filter,
    load_filter,
    walk,
)

MAX_PAGE = 1_000


class SegmentNotFound(NotFound):
    slug = "segment-not-found"
    title = "Segment not found"


class SegmentNameTaken(Conflict):
    slug = "segment-name-taken"
    title = "Segment name already in use"


# --- saved segments ---------------------------------------------------------------------


def to_out(segment: Segment) -> SegmentOut:
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        filter=tree_of(segment),
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


def tree_of(segment: Segment) -> Filter:
    return load_filter(segment.filter)


def create(session: Session, data: SegmentCreate) -> Segment:
    validate_references(session, data.filter)
    _ensure_name_free(session, data.name)
    segment = Segment(name=data.name, filter=dump_filter(data.filter))
    try:
        # The unique constraint settles a concurrent create slipping past the check.
        with session.begin_nested():
            session.add(segment)
    except IntegrityError as exc:
        raise SegmentNameTaken(f"a segment named {data.name!r} already exists") from exc
    return segment


def get(session: Session, segment_id: int, *, lock: bool = False) -> Segment:
    """A live segment. ``lock`` (PostgreSQL: FOR UPDATE) holds it against a concurrent
    deletion until the caller commits: a mailing made for it then cannot end up naming
    a segment deleted meanwhile."""
    segment = repo.by_id(session, segment_id, lock=lock)
    if segment is None or segment.archived_at is not None:
        raise SegmentNotFound(f"segment {segment_id} does not exist")
    return segment


def get_any(session: Session, segment_id: int) -> Segment:
    """A segment, deleted (archived) or not: what a mailing's report names."""
    segment = repo.by_id(session, segment_id)
    if segment is None:
        raise SegmentNotFound(f"segment {segment_id} does not exist")
    return segment


def list_segments(session: Session, *, archived: bool = False) -> list[Segment]:
    """Every saved segment, by name (there are few: they are made by hand); with
    ``archived``, the deleted ones kept for the mailings sent to them."""
    return repo.all_segments(session, archived=archived)


def update(session: Session, segment_id: int, data: SegmentUpdate) -> Segment:
    segment = get(session, segment_id)
    if data.name is not None:
        _ensure_name_free(session, data.name, except_id=segment.id)
        segment.name = data.name
    if data.filter is not None:
        validate_references(session, data.filter)
        segment.filter = dump_filter(data.filter)
    segment.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise SegmentNameTaken(f"a segment named {segment.name!r} already exists") from exc
    return segment


def archive(session: Session, segment: Segment) -> None:
    """Hide a segment a mailing was sent to: its reports still name it, and its name is
    free again (deciding when: messaging/mailings.delete_segment)."""
    segment.archived_at = utcnow()
    session.flush()


def remove(session: Session, segment: Segment) -> None:
    """Remove a segment no mailing was made for."""
    repo.remove(session, segment)


def _ensure_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    other = repo.by_name(session, name)
    if other is not None and other.id != except_id:
        raise SegmentNameTaken(f"a segment named {name!r} already exists", segment_id=other.id)


def validate_references(session: Session, tree: Filter) -> None:
    """Every group the tree names must exist and not be archived; the error names each
    offending filter's path, e.g. ``filters[1].group_id: group 7 does not exist or is
    archived``."""
    refs = [
        (f"{path}.group_id" if path else "group_id", node.group_id)
        for path, _, node in walk(tree)
        if isinstance(node, IssuedCount | IssuedFromGroup | ReachedLimit)
        and node.group_id is not None
    ]
    live = repo.live_group_ids(session, (gid for _, gid in refs))
    problems = [
        f"{path}: group {gid} does not exist or is archived"
        for path, gid in refs
        if gid not in live
    ]
    if problems:
        raise ValidationFailed("; ".join(problems), errors=problems)


# --- evaluating a tree ------------------------------------------------------------------


def count(session: Session, tree: Filter) -> int:
    """How many customers the tree selects (one query, see ``filters.count_sql``)."""
    return repo.count(session, count_sql(tree, dialect_of(session)))


def sample(session: Session, tree: Filter, n: int = DEFAULT_SAMPLE) -> list[CustomerOut]:
    """The first ``n`` matching customers by id: cheap (the scan stops after ``n``) and
    stable between two previews of the same tree, unlike a random sample."""
    page, _ = customers_page(session, tree, cursor=None, limit=n) if n > 0 else ([], None)
    return page


def customers_page(
    session: Session, tree: Filter, *, cursor: str | None, limit: int = 50
) -> tuple[list[CustomerOut], str | None]:
    """One page of the tree's customers in id order, and the cursor of the next page
    (None on the last). The cursor is the customers list's: keyset on the id."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}")
    where = to_sql(tree, dialect_of(session))
    rows = repo.customers_after(session, where, after_id=decode_cursor(cursor), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [customer_out(c) for c in rows], encode_cursor(rows[-1].id) if more and rows else None


def segment_customers(
    session: Session, segment_id: int, *, cursor: str | None, limit: int = 50
) -> CustomersPage:
    """``GET /segments/{id}/customers``: a page of a saved segment's customers."""
    customers, next_cursor = customers_page(
        session, tree_of(get(session, segment_id)), cursor=cursor, limit=limit
    )
    return CustomersPage(customers=customers, next_cursor=next_cursor)


def preview(session: Session, tree: Filter, *, sample_size: int = DEFAULT_SAMPLE) -> PreviewOut:
    """What saving the tree would give: its references checked, its count and a sample."""
    validate_references(session, tree)
    return PreviewOut(count=count(session, tree), sample=sample(session, tree, sample_size))


def spread_sample(session: Session, segment: Segment, size: int, n: int) -> list[Customer]:
    """Up to ``n`` of the segment's ``size`` customers, spread evenly over it (every
    k-th in id order), so a sample sees the whole segment, not its first pages."""
    step = max(1, math.ceil(size / n)) if n else 1
    return repo.every_kth(session, to_sql(tree_of(segment), dialect_of(session)), step, n)


def where_of(session: Session, segment: Segment) -> ColumnElement[bool]:
    """The saved segment's filter as a WHERE clause over ``customers``: a mailing freezes
    its recipients with it."""
    return to_sql(tree_of(segment), dialect_of(session))
