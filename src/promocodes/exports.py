"""Streaming CSV exports, as every face runs them (API, web UI, CLI): audited in a short
write before the first row, then read page by page, each page its own short read
(``Database.pages``), so millions of rows never sit in memory or hold a transaction.
What the rows and columns are is the domains' (``codes/export.py``, ``messaging/outbox``,
``segments/export.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi.responses import StreamingResponse

from promocodes.audit.service import Actor
from promocodes.codes import export, service
from promocodes.db import Database
from promocodes.messaging import outbox
from promocodes.segments import export as segment_export


@dataclass(frozen=True)
class Export:
    filename: str
    chunks: Iterator[str]


def codes(db: Database, group_id: int, *, status: str | None, actor: Actor) -> Export:
    """A group's codes (one status, or all)."""
    with db.write() as s:
        export.start(s, service.get_group(s, group_id), status=status, actor=actor)
    pages = db.pages(
        lambda s, after: export.page(s, group_id, status=status, after_id=after),
        size=export.PAGE,
    )
    return Export(export.filename(group_id, status), export.csv_chunks(pages))


def messages(
    db: Database, source: outbox.Source, *, status: str | None, actor: Actor, domain: str
) -> Export:
    """A mailing's or a campaign's stored messages (one status, or all)."""
    with db.write() as s:
        outbox.record_export(s, source, status=status, actor=actor)
    pages = db.pages(
        lambda s, after: outbox.export_page(
            s, source, domain=domain, status=status, after_id=after
        ),
        size=outbox.EXPORT_PAGE,
    )
    suffix = f"-{status}" if status else ""
    return Export(f"{source.label}-messages{suffix}.csv", outbox.csv_chunks(pages))


def segment_customers(db: Database, segment_id: int, *, actor: Actor) -> Export:
    """A saved segment's customers (personal data: marketers and admins, the ``read``
    scope), as its filter stood when the export began."""
    with db.write() as s:
        started = segment_export.start(s, segment_id, actor=actor)
    pages = db.pages(
        lambda s, after: segment_export.page(
            s, started.tree, after_id=after, limit=segment_export.PAGE
        ),
        size=segment_export.PAGE,
    )
    return Export(segment_export.filename(segment_id), segment_export.csv_chunks(pages))


def response(done: Export) -> StreamingResponse:
    """The export as a download."""
    return StreamingResponse(
        done.chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{done.filename}"'},
    )
