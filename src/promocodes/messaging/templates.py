"""Templates against the database: validation with the live groups, the ``client`` a
template sees for a customer, the codes a message draws (from the codes domain), and the
problems as the API reports them."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from promocodes.codes.issuance import CANNOT_GIVE, MessageCodes
from promocodes.codes.service import live_groups
from promocodes.customers.schemas import CUSTOMER_FIELDS
from promocodes.errors import ValidationFailed
from promocodes.messaging.rendering import CodeSource, MessageTemplate, RenderSkip
from promocodes.messaging.validation import Validation, validate


def check(session: Session, template: MessageTemplate) -> Validation:
    return validate(
        template,
        known_groups=[g.name for g in live_groups(session).values()],
        customer_fields=CUSTOMER_FIELDS,
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
