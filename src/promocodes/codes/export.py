"""A group's codes, page by page, and their CSV export: the same rows and columns in the
API (JSON pages and ``Accept: text/csv``), the web UI's export and ``codes export``.

An export streams keyset pages (``Database.pages``: each page its own short read), so
millions of codes never sit in memory or hold a transaction. It is audited when it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy.orm import Session

from promocodes import csvexport
from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import code_repository as repo
from promocodes.codes.code_repository import CodeRow
from promocodes.codes.models import CodeGroup

COLUMNS = ("code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until")
PAGE = 5_000


def page(
    session: Session, group_id: int, *, status: str | None, after_id: int | None, limit: int = PAGE
) -> list[CodeRow]:
    """Up to ``limit`` of the group's codes after ``after_id`` (id order), each with the
    customer it stands issued to."""
    return repo.code_page(session, group_id, status=status, after_id=after_id, limit=limit)


def start(session: Session, group: CodeGroup, *, status: str | None, actor: Actor = SYSTEM) -> None:
    """Audit an export of ``group``'s codes, in a write transaction before any row is
    streamed: a partly streamed export has still disclosed codes, so it is recorded when
    it starts, once, and never for a group that does not exist."""
    target = Target("group", group.id, group.name)
    record(session, actor, "export.codes", target, {"status": status})


def filename(group_id: int, status: str | None) -> str:
    return f"group-{group_id}{'-' + status if status else ''}.csv"


def csv_chunks(pages: Iterable[Sequence[CodeRow]]) -> Iterator[str]:
    """The export's CSV text, a chunk per page."""
    return csvexport.chunks(COLUMNS, pages, _cells)


def _cells(r: CodeRow) -> list[str]:
    return [
        csvexport.safe(r.code),
        r.status,
        csvexport.safe(r.customer_id or ""),
        csvexport.iso(r.issued_at),
        csvexport.iso(r.redeemed_at),
        csvexport.iso(r.valid_until),
    ]
