"""Customers: upsert, bulk import, read, list."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from promocodes.customers import repository as repo
from promocodes.customers.importer import CustomerItem
from promocodes.customers.models import Customer
from promocodes.customers.schemas import CustomerIn, CustomerOut, ImportReport, LineError
from promocodes.errors import Conflict, NotFound
from promocodes.models import utcnow

# Re-exported for callers that page customers (explicit re-export form for mypy).
from promocodes.pagination import decode_cursor as decode_cursor
from promocodes.pagination import encode_cursor as encode_cursor
from promocodes.pagination import split_page

IMPORT_BATCH = 1_000
REPORT_LIMIT = 1_000


class CustomerNotFound(NotFound):
    slug = "customer-not-found"
    title = "Customer not found"


def to_out(customer: Customer) -> CustomerOut:
    return CustomerOut(
        customer_id=customer.external_id,
        email=customer.email,
        phone=customer.phone,
        first_name=customer.first_name,
        last_name=customer.last_name,
        attributes=dict(customer.attributes or {}),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def _apply(customer: Customer, data: CustomerIn) -> None:
    for field in ("email", "phone", "first_name", "last_name"):
        if field in data.model_fields_set:
            setattr(customer, field, getattr(data, field))
    if data.attributes is not None:
        # Merge, so a partial update never drops attributes another system set;
        # a null value removes a key.
        merged = dict(customer.attributes or {})
        for key, value in data.attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        customer.attributes = merged
    customer.updated_at = utcnow()


class CustomerErased(Conflict):
    slug = "customer-erased"
    title = "Customer erased"


def upsert(session: Session, data: CustomerIn) -> tuple[Customer, bool]:
    """Create or update by external id. Returns (customer, created). An erased customer's
    pseudonymous record takes no personal data again."""
    customer = repo.by_external_id(session, data.customer_id)
    if customer is not None and customer.erased_at is not None:
        raise CustomerErased(f"customer {data.customer_id!r} was erased and takes no data")
    if customer is not None:
        _apply(customer, data)
        session.flush()
        return customer, False
    customer = Customer(external_id=data.customer_id, attributes={})
    _apply(customer, data)
    try:
        with session.begin_nested():
            session.add(customer)
    except IntegrityError:
        # Created concurrently between our read and insert: update that one instead.
        existing = repo.by_external_id(session, data.customer_id)
        if existing is None:
            raise
        _apply(existing, data)
        session.flush()
        return existing, False
    return customer, True


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """What issuing needs of a customer: the hot path does not load the whole row."""

    id: int
    external_id: str


def get(session: Session, external_id: str) -> Customer:
    customer = repo.by_external_id(session, external_id)
    if customer is None:
        raise CustomerNotFound(f"customer {external_id!r} does not exist")
    return customer


ERASED_PREFIX = "erased-"


def forget(session: Session, customer: Customer) -> str:
    """Remove the customer's personal fields and attributes, and replace their external
    id with a random pseudonym (``erased-…``): the row stays, so their issuances,
    redemptions and messages still count and still name one (now anonymous) customer.
    Returns the pseudonym."""
    customer.external_id = ERASED_PREFIX + secrets.token_hex(8)
    customer.email = customer.phone = customer.first_name = customer.last_name = None
    customer.attributes = {}
    customer.erased_at = customer.updated_at = utcnow()
    session.flush()
    return customer.external_id


def import_customers(session: Session, items: Iterable[CustomerItem]) -> ImportReport:
    """Upsert every valid record, in batches; report each bad line. A record appearing
    twice is applied twice, in order (the later values win)."""
    report = ImportReport()
    batch: list[CustomerIn] = []
    for item in items:
        report.received += 1
        if isinstance(item, LineError):
            report.invalid_count += 1
            if len(report.invalid) < REPORT_LIMIT:
                report.invalid.append(item)
            continue
        batch.append(item[1])
        if len(batch) >= IMPORT_BATCH:
            _import_batch(session, batch, report)
            batch = []
    _import_batch(session, batch, report)
    return report


def _import_batch(session: Session, batch: list[CustomerIn], report: ImportReport) -> None:
    if not batch:
        return
    known = repo.by_external_ids(session, list({c.customer_id for c in batch}))
    for data in batch:
        customer = known.get(data.customer_id)
        if customer is None:
            customer = Customer(external_id=data.customer_id, attributes={})
            session.add(customer)
            known[data.customer_id] = customer
            report.created += 1
        else:
            report.updated += 1
        _apply(customer, data)
    session.flush()


def list_page(
    session: Session, *, cursor: str | None, limit: int = 50
) -> tuple[list[CustomerOut], str | None]:
    rows = repo.page(session, after_id=decode_cursor(cursor), limit=limit + 1)
    page, next_cursor = split_page(rows, limit, lambda c: c.id)
    return [to_out(c) for c in page], next_cursor
