"""What the demo asks of a database before and while it fills it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from promocodes.customers.service import CustomerRef
from promocodes.demo import repository as repo


def holdings(session: Session) -> dict[str, int]:
    """What the database already holds that the demo would mix with (users and API keys
    are access, not data: a fresh server already has its first administrator)."""
    return {name: n for name, n in repo.holdings(session).items() if n}


def names_free(session: Session, group_name: str, customer_id_prefix: str) -> bool:
    """Whether a run may use this group name and customer ids with this prefix."""
    taken = repo.group_name_keys(session)
    clash = repo.customers_with_id_prefix(session, customer_id_prefix)
    return group_name.casefold() not in taken and not clash


def customers(session: Session, *, kids_only: bool = False) -> list[CustomerRef]:
    return [CustomerRef(cid, ext) for cid, ext in repo.customers(session, kids_only=kids_only)]


def issued(session: Session, group_id: int) -> list[tuple[str, CustomerRef]]:
    """The group's codes that stand issued, with the customer who holds each."""
    rows = repo.standing_initial_codes(session, group_id)
    return [(code, CustomerRef(cid, ext)) for code, cid, ext in rows]


def an_available_code(session: Session, group_id: int) -> str | None:
    return repo.first_available_code(session, group_id)
