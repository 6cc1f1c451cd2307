"""Erasing a customer (the right to be forgotten): their personal fields and attributes
go, their stored messages lose recipient, subject and bodies, and their history stays
under a random pseudonym, so a group's counts, a segment's size and "who got code X"
still add up (to an anonymous customer). The audit entry names the pseudonym only.

A top-level service: it spans customers and messaging, which know nothing of each other
in this direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.customers import service as customers
from promocodes.messaging import outbox


@dataclass(frozen=True, slots=True)
class Erased:
    """``customer_id``: the pseudonym the customer's history now stands under;
    ``already``: nothing was left to erase (it had been erased before)."""

    customer_id: str
    messages_redacted: int
    already: bool


def erase(session: Session, external_id: str, *, actor: Actor = SYSTEM) -> Erased:
    """Erase the customer in the caller's transaction. Unknown: ``CustomerNotFound``
    (so is the original id after an erasure: it is forgotten). Erasing an erased
    customer, by its pseudonym, changes and records nothing."""
    customer = customers.get(session, external_id)
    if customer.erased_at is not None:
        return Erased(customer.external_id, 0, already=True)
    redacted = outbox.redact_customer(session, customer.id)
    pseudonym = customers.forget(session, customer)
    record(
        session,
        actor,
        "customer.erased",
        Target("customer", pseudonym),
        {"messages_redacted": redacted},
    )
    return Erased(pseudonym, redacted, already=False)
