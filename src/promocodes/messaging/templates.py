"""Templates against the database: validation with the live groups, the ``client`` a
template sees for a customer, the codes a message draws (from the codes domain), the
preview of a message for a customer, and the problems as the API reports them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy.orm import Session

from promocodes.codes import issuance
from promocodes.codes.issuance import CANNOT_GIVE, MessageCodes
from promocodes.codes.models import name_key
from promocodes.codes.service import archived_name_keys, benefit_texts, live_groups
from promocodes.customers import service as customers
from promocodes.customers.schemas import CUSTOMER_FIELDS
from promocodes.errors import DomainError, ValidationFailed
from promocodes.messaging.rendering import (
    CodeSource,
    MessageTemplate,
    Rendered,
    RenderSkip,
    preview,
)
from promocodes.messaging.validation import Validation, validate

# The customer a preview shows when none is chosen.
SAMPLE_CLIENT: dict[str, object] = {
    "customer_id": "sample",
    "email": "sample@example.com",
    "phone": None,
    "first_name": "Sam",
    "last_name": "Sample",
    "attributes": {},
}
SAMPLE_NOTE = (
    "Sam Sample is a sample customer: their name and email are examples, and they hold "
    "a code from every group. Choose a customer to see their own message."
)


class RenderFailed(DomainError):
    """A template that fails for this customer, as a 422 problem: the reason
    (``template-error``, ``template-limit``, ``security``), the field, the line."""

    status = 422
    title = "The template fails for this customer"

    def __init__(self, skip: RenderSkip) -> None:
        super().__init__(
            skip.summary,
            errors=[
                {"field": skip.field, "line": skip.line, "reason": skip.reason,
                 "message": skip.detail}
            ],
        )  # fmt: skip
        self.slug = skip.reason


def preview_for(session: Session, template: MessageTemplate, customer_id: str | None) -> Rendered:
    """The message the customer would get, codes aside (placeholders, nothing issued):
    ``last_promocode`` of a group they hold no code from is empty, as it will be when
    sent. Without a customer, the sample one. A template that fails is RenderFailed."""
    if customer_id is None:
        client: dict[str, object] = SAMPLE_CLIENT
        last: set[str] | None = None
    else:
        customer = customers.get(session, customer_id)
        client = client_of(customer)
        last = _held_groups(session, template, customer.id)
    try:
        rendered = preview(template, client, last=last, benefits=benefit_texts(session))
    except RenderSkip as skip:
        raise RenderFailed(skip) from None
    if customer_id is None:
        return replace(rendered, notes=(SAMPLE_NOTE, *rendered.notes))
    return rendered


def _held_groups(session: Session, template: MessageTemplate, customer_id: int) -> set[str]:
    """The name keys of the template's groups the customer holds a last code from."""
    live = live_groups(session)
    named = {name_key(n) for n in check(session, template).groups} & live.keys()
    holders = issuance.holders_of_last(session, [live[k].id for k in named], [customer_id])
    return {key for key in named if customer_id in holders[live[key].id]}


def check(session: Session, template: MessageTemplate) -> Validation:
    return validate(
        template,
        known_groups=[g.name for g in live_groups(session).values()],
        customer_fields=CUSTOMER_FIELDS,
        archived_groups=archived_name_keys(session),
    )


class _Source:
    """A message's codes as the renderer asks for them: a group that cannot give a code
    (not found, expired, not valid yet, exhausted) skips the message, the reason being
    the codes domain's error slug."""

    __slots__ = ("_codes",)

    def __init__(self, codes: MessageCodes) -> None:
        self._codes = codes

    def promocode(self, group_name: str) -> str:
        try:
            return self._codes.initial(group_name)
        except CANNOT_GIVE as exc:
            raise RenderSkip(exc.slug, exc.detail) from None

    def last_promocode(self, group_name: str) -> str | None:
        try:
            return self._codes.repeat(group_name)
        except CANNOT_GIVE as exc:
            raise RenderSkip(exc.slug, exc.detail) from None

    def benefit(self, group_name: str) -> str:
        try:
            return self._codes.benefit(group_name)
        except CANNOT_GIVE as exc:
            raise RenderSkip(exc.slug, exc.detail) from None


def source_of(codes: MessageCodes) -> CodeSource:
    return _Source(codes)


def require_valid(session: Session, template: MessageTemplate) -> Validation:
    """Validation for saving: any problem refuses the save with every problem listed."""
    if not (template.body_text or template.body_html):
        raise ValidationFailed(
            "a message needs body_text or body_html",
            errors=[
                {
                    "field": "body_text",
                    "line": None,
                    "column": None,
                    "message": "give body_text, body_html or both",
                }
            ],
        )
    result = check(session, template)
    if not result.valid:
        errors = [
            {"field": p.field, "line": p.line, "column": p.column, "message": p.message}
            for p in result.problems
        ]
        first = errors[0]
        where = f"{first['field']}" + (f" line {first['line']}" if first["line"] else "")
        raise ValidationFailed(f"{where}: {first['message']}", errors=errors)
    return result


class CustomerFields(Protocol):
    """What a template sees of a customer: a Customer row or a chunk's lighter copy."""

    @property
    def external_id(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def attributes(self) -> dict[str, Any] | None: ...


def client_of(customer: CustomerFields) -> dict[str, Any]:
    return {
        "customer_id": customer.external_id,
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "attributes": dict(customer.attributes or {}),
    }
