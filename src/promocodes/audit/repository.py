"""Reading the audit log: newest first, keyset-paged by id, with optional filters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from promocodes.audit.models import AuditEntry
from promocodes.audit.schemas import Filters


def page(
    session: Session, filters: Filters, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Entries matching ``filters``, newest first, older than ``before_id`` when given.
    ``action`` matches exactly or, ending in ``.`` (``upload.``), by prefix; ``actor``
    matches the actor's name (key name, email, OS user) or ``kind:id`` (``api_key:3``)."""
    query = select(AuditEntry)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == filters.action)
    if filters.actor:
        kind, sep, ref = filters.actor.partition(":")
        if sep and kind in ("api_key", "user"):
            query = query.where(AuditEntry.actor_kind == kind, AuditEntry.actor_id == ref)
        else:
            query = query.where(AuditEntry.actor_name == filters.actor)
    if filters.target_type:
        query = query.where(AuditEntry.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditEntry.target_id == filters.target_id)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
