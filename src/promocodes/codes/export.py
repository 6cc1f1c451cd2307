"""CSV export of a group's codes, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import repository as repo
from promocodes.codes.models import CodeGroup

EXPORT_COLUMNS = ("code", "status", "valid_until", "created_at", "issued_at", "redeemed_at")

# Spreadsheets evaluate a cell that starts with one of these as a formula
# (OWASP "CSV injection"). A leading apostrophe makes it text. Codes may start with '-',
# and "-A1" is a formula to Excel, so they are escaped too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_Keyed)


def keyset_csv(
    header: Sequence[str],
    fetch: Callable[[int | None], Sequence[Row]],
    cells: Callable[[Row], list[str]],
    page_size: int,
) -> Iterator[str]:
    """CSV text, one chunk per page: ``fetch(after_id)`` returns up to ``page_size``
    rows after that id, each call its own short read, so an export of millions never
    holds a transaction or all its rows at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    after: int | None = None
    while True:
        rows = fetch(after)
        writer.writerows(cells(r) for r in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < page_size:
            return
        after = rows[-1].id


def record_export(
    session: Session, group: CodeGroup, *, status: str | None, actor: Actor = SYSTEM
) -> None:
    """Audit an export of ``group``'s codes, in a write transaction before any row is
    streamed: a partly streamed export has still disclosed codes, so it is recorded when
    it starts, once, and never for a group that does not exist."""
    target = Target("group", group.id, group.name)
    record(session, actor, "export.codes", target, {"status": status})


def export_rows(session: Session, group_id: int, *, status: str | None) -> Iterator[list[str]]:
    for row in repo.iter_codes(session, group_id, status=status):
        yield [
            csv_safe(row.code),
            row.status,
            iso(row.valid_until),
            iso(row.created_at),
            iso(row.issued_at),
            iso(row.redeemed_at),
        ]
