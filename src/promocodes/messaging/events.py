"""An event from the integrator: find (or, where a campaign allows it, create or update)
its customer, then let every active campaign on the event send its message."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from promocodes.customers import repository as customers_repo
from promocodes.customers import service as customers
from promocodes.customers.models import Customer
from promocodes.customers.schemas import CustomerFields
from promocodes.messaging import campaigns
from promocodes.messaging import repository as repo
from promocodes.messaging.models import Message
from promocodes.messaging.schemas import CustomerChange, EventIn


@dataclass(frozen=True, slots=True)
class Handled:
    customer: Customer
    change: CustomerChange | None
    messages: list[Message]


def receive(session: Session, event: EventIn) -> Handled:
    """Handle ``event``. Its ``customer`` object is applied (the customer created or
    updated, by the rules of ``PUT /customers/{id}``) only when an active campaign on the
    event allows it; otherwise it is ignored, and an unknown customer is a 404 as without
    it. A retried event finds the customer its first try created: never a second one."""
    live = repo.active_campaigns_on(session, event.event)
    allowed = any(c.creates_customers for c in live)
    customer, change = _customer(session, event.customer_id, event.customer, allowed=allowed)
    made = campaigns.handle_event(
        session, customer, event.event, event_id=event.event_id, on_event=live
    )
    return Handled(customer, change, made)


def _customer(
    session: Session, customer_id: str, fields: CustomerFields | None, *, allowed: bool
) -> tuple[Customer, CustomerChange | None]:
    if not allowed:
        return customers.get(session, customer_id), None if fields is None else "ignored"
    if fields is None:
        known = customers_repo.by_external_id(session, customer_id)
        if known is not None:
            return known, None
        fields = CustomerFields()
    # The upsert takes care of the race of two events creating one customer: the
    # second waits on the unique external id and then updates the first one's row.
    customer, created = customers.upsert(session, fields.upsert_for(customer_id))
    return customer, "created" if created else "updated"
