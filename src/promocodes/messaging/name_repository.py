"""SQL that reads mailings and campaigns for pages about something else: their names
by id (a code's history, the audit log), and the mailings not sent yet (what uses a
group)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from promocodes.messaging.models import Campaign, Mailing


def mailing_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Mailing.id, Mailing.name).where(Mailing.id.in_(ids)))
    return {row.id: row.name for row in rows}


def campaign_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
    return {row.id: row.name for row in rows}


def waiting_mailings(session: Session) -> list[Mailing]:
    """Drafts and scheduled mailings: what archiving a group or a segment would strand."""
    stmt = select(Mailing).where(Mailing.status.in_(("draft", "scheduled")))
    return list(session.scalars(stmt.order_by(Mailing.id)))
