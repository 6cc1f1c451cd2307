"""A saved segment's customers as CSV: the same rows in the web UI's download, the API's
``Accept: text/csv`` and ``segments export``.

Customers are personal data, so an export is audited (``export.customers``: who, which
segment, how many customers it held) in a short write before the first row, and then
streams keyset pages (``Database.pages``: each page its own short read) of the filter as
it stood then: a segment of a million customers never sits in memory or holds a
transaction, and an edit of the segment midway does not change what the export selects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from promocodes import csvexport
from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.db import dialect_of
from promocodes.segments import repository as repo
from promocodes.segments import service
from promocodes.segments.filters import to_sql
from promocodes.segments.tree import Filter

COLUMNS = (
    "customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "attributes",
    "created_at",
    "updated_at",
)
PAGE = 5_000


@dataclass(frozen=True, slots=True)
class Row:
    """A customer as the export writes it (read inside its page's transaction)."""

    id: int
    customer_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Started:
    """An export begun: the filter its pages select, and the customers it held then."""

    segment_id: int
    tree: Filter
    count: int


def start(session: Session, segment_id: int, *, actor: Actor = SYSTEM) -> Started:
    """Audit an export of the segment's customers, in a write transaction before any
    row streams (a partly streamed export has still disclosed them); SegmentNotFound,
    and nothing recorded, when it does not exist (or was deleted)."""
    segment = service.get(session, segment_id)
    tree = service.tree_of(segment)
    count = service.count(session, tree)
    target = Target("segment", segment.id, segment.name)
    record(session, actor, "export.customers", target, {"rows": count})
    return Started(segment.id, tree, count)


def page(session: Session, tree: Filter, *, after_id: int | None, limit: int = PAGE) -> list[Row]:
    """Up to ``limit`` of the filter's customers after ``after_id``, in id order."""
    where = to_sql(tree, dialect_of(session))
    rows = repo.customer_rows_after(session, where, after_id=after_id, limit=limit)
    return [
        Row(
            r.id,
            r.external_id,
            r.email,
            r.phone,
            r.first_name,
            r.last_name,
            dict(r.attributes or {}),
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]


def filename(segment_id: int) -> str:
    return f"segment-{segment_id}-customers.csv"


def csv_chunks(pages: Iterable[Sequence[Row]]) -> Iterator[str]:
    """The export's CSV text, a chunk per page. Every cell a customer or an import could
    have written is made formula-safe."""
    return csvexport.chunks(COLUMNS, pages, _cells)


def _cells(r: Row) -> list[str]:
    attributes = (
        json.dumps(r.attributes, ensure_ascii=False, sort_keys=True) if r.attributes else ""
    )
    return [
        csvexport.safe(r.customer_id),
        csvexport.safe(r.email or ""),
        csvexport.safe(r.phone or ""),
        csvexport.safe(r.first_name or ""),
        csvexport.safe(r.last_name or ""),
        csvexport.safe(attributes),
        csvexport.iso(r.created_at),
        csvexport.iso(r.updated_at),
    ]
