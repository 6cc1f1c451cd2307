"""An event from the integrator: find (or, where a campaign allows it, create or update)
its customer, then let every active campaign on the event send its message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from promocodes.customers import repository as customers_repo
from promocodes.customers import service as customers
from promocodes.customers.models import Customer
from promocodes.customers.schemas import CustomerFields
from promocodes.messaging import campaigns
from promocodes.messaging import repository as repo
from promocodes.messaging.models import Campaign, Message
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
    it. A retried event (an ``event_id`` a campaign already answered for the customer)
    changes nothing: it gets the first messages back, and its customer object is not
    applied again (a late retry must not undo what newer events set). An erased
    customer gets nothing new: 409."""
    live = repo.active_campaigns_on(session, event.event)
    known = customers_repo.by_external_id(session, event.customer_id)
    if known is not None and known.erased_at is not None:
        raise customers.CustomerErased(
            f"customer {event.customer_id!r} was erased: they get no messages or codes"
        )
    if (
        known is not None
        and event.event_id
        and campaigns.is_retry(session, known, event.event_id, live)
    ):
        customer, change = known, None
    else:
        customer, change = _customer(session, event, known, live)
    made = campaigns.handle_event(
        session, customer, event.event, event_id=event.event_id, on_event=live
    )
    return Handled(customer, change, made)


def _customer(
    session: Session, event: EventIn, known: Customer | None, live: Sequence[Campaign]
) -> tuple[Customer, CustomerChange | None]:
    fields = event.customer
    if not any(c.creates_customers for c in live):
        if known is None:
            # Name why nobody was added: a typo in the event name shows here.
            why = "adds customers" if live else "listens to it"
            raise customers.CustomerNotFound(
                f"customer {event.customer_id!r} does not exist "
                f"(no active campaign on event {event.event!r} {why})"
            )
        return known, None if fields is None else "ignored"
    if fields is None:
        if known is not None:
            return known, None
        fields = CustomerFields()
    # The upsert takes care of the race of two events creating one customer: the
    # second waits on the unique external id and then updates the first one's row.
    customer, created = customers.upsert(session, fields.upsert_for(event.customer_id))
    return customer, "created" if created else "updated"
