"""The names of mailings and campaigns a page refers to by id: people read names."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from promocodes.messaging import name_repository


def _ids(refs: Iterable[str | int | None]) -> list[int]:
    # A code's history keeps its source as text; only whole numbers can be ids.
    return sorted({int(r) for r in refs if r is not None and str(r).isdigit()})


def mailings(session: Session, refs: Iterable[str | int | None]) -> dict[str, str]:
    """Mailing names by id, the ids as text (how histories and the audit log keep them)."""
    found = name_repository.mailing_names(session, _ids(refs))
    return {str(k): v for k, v in found.items()}


def campaigns(session: Session, refs: Iterable[str | int | None]) -> dict[str, str]:
    found = name_repository.campaign_names(session, _ids(refs))
    return {str(k): v for k, v in found.items()}
