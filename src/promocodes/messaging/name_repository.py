"""SQL that reads the names of mailings and campaigns, for pages that mention them by id
(a code's history, the audit log)."""

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
