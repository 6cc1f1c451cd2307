"""REST routes of the audit log: read-only by construction (only GET is routed), and the
``Actor`` dependency that tells services which API key is acting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from promocodes.apikit import PROBLEM_RESPONSES, Cursor, Db, Key, Limit, Page, Time
from promocodes.audit import service as audit
from promocodes.audit.models import AuditEntry
from promocodes.audit.schemas import AuditActorOut, AuditEntryOut, AuditTargetOut, Filters
from promocodes.audit.service import Actor
from promocodes.dispatch import OneHopRoute
from promocodes.pagination import decode_cursor, split_page
from promocodes.text import NO_NUL_PATTERN

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, route_class=OneHopRoute)
Text = Annotated[str | None, Query(max_length=320, pattern=NO_NUL_PATTERN)]


def api_actor(key: Key) -> Actor:
    return Actor.api_key(key.id, key.name)


# For routes that perform an audited action: authenticates like ``Key`` (FastAPI resolves
# the key once per request) and names the key as the actor.
ApiActor = Annotated[Actor, Depends(api_actor)]


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC (as everywhere in the API)."""
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        action=entry.action,
        actor=AuditActorOut(kind=entry.actor_kind, id=entry.actor_id, name=entry.actor_name),
        target=AuditTargetOut(type=entry.target_type, id=entry.target_id, name=entry.target_name),
        details=entry.details,
        request_id=entry.request_id,
    )


@router.get("/audit", tags=["audit"])
def list_audit(
    key: Key,
    db: Db,
    action: Text = None,
    actor: Text = None,
    target_type: Text = None,
    target_id: Text = None,
    since: Time = None,
    until: Time = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEntryOut]:
    """Sensitive actions, newest first. ``action`` is a slug (``code.blocked``) or a prefix
    ending in ``.`` (``upload.``); ``actor`` a name (key name, email, OS user) or
    ``api_key:<id>`` / ``user:<id>``; ``since``/``until`` ISO times. The log is
    append-only: there is no route that changes or removes an entry."""
    filters = Filters(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        since=_utc(since),
        until=_utc(until),
    )
    with db.read() as s:
        rows = audit.entries(s, filters, before_id=decode_cursor(cursor), limit=limit + 1)
        items, next_cursor = split_page(rows, limit, lambda e: e.id)
        return Page(items=[entry_out(e) for e in items], next_cursor=next_cursor)
