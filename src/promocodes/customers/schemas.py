"""Shapes of the customers domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from promocodes.errors import ValidationFailed
from promocodes.text import Text, check_json

# Fields a template may read as ``client.<field>`` (besides ``attributes``).
CUSTOMER_FIELDS = ("customer_id", "email", "phone", "first_name", "last_name")


NO_SLASH = (
    "must not contain '/': a customer id is part of the customer's address, "
    "/api/v1/customers/{customer_id}, where a '/' cannot be sent"
)


def check_customer_id(value: str) -> str:
    """A customer id, wherever one comes in (the API, imports, events, redemption files,
    the CLI): the customer must stay reachable at ``/customers/{customer_id}`` to be read
    or erased, and a path segment cannot hold ``/`` (even sent as ``%2F``)."""
    if "/" in value:
        raise PydanticCustomError("customer_id_slash", NO_SLASH)
    return value


# The one type of a customer id sent in a body; the schema states the rule too, so a
# client (and the contract run) knows it.
CustomerIdText = Annotated[
    Text,
    # The pattern keeps NUL out too (it replaces Text's own, see text._NoNulInSchema).
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": r"^[^/\x00]*$"}),
    AfterValidator(check_customer_id),
]


def check_email(value: str | None) -> str | None:
    """An email address by its syntax (email-validator; no DNS look-up): it becomes a
    header of every message to the customer, so a line break or a second address in it
    must never get in. Empty means none."""
    if value is None or not value.strip():
        return None
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{safe(value)} is not an email address: {exc}") from None


def check_line(value: str | None) -> str | None:
    """A name or a phone number reaches message headers and pages: one line, no control
    characters."""
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must be one line of text, without control characters")
    return value


def safe(value: str, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"


class CustomerIn(BaseModel):
    """An upsert: fields left out keep their stored value; ``attributes`` are merged."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText
    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=40)
    first_name: Text | None = Field(default=None, max_length=200)
    last_name: Text | None = Field(default=None, max_length=200)
    attributes: Annotated[dict[str, Any] | None, AfterValidator(check_json)] = None

    @field_validator("customer_id")
    @classmethod
    def _trim(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("customer_id must not be empty")
        return value

    _email = field_validator("email")(classmethod(lambda cls, v: check_email(v)))
    _lines = field_validator("phone", "first_name", "last_name")(
        classmethod(lambda cls, v: check_line(v))
    )


class CustomerOut(BaseModel):
    customer_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class LineError(BaseModel):
    line: int
    message: str


class ImportReport(BaseModel):
    received: int = 0
    created: int = 0
    updated: int = 0
    invalid_count: int = 0
    invalid: list[LineError] = Field(default_factory=list)


class CustomerFields(BaseModel):
    """The body of ``PUT /customers/{customer_id}``: the id comes from the path."""

    model_config = ConfigDict(extra="forbid")

    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=40)
    first_name: Text | None = Field(default=None, max_length=200)
    last_name: Text | None = Field(default=None, max_length=200)
    attributes: Annotated[dict[str, Any] | None, AfterValidator(check_json)] = None

    _email = field_validator("email")(classmethod(lambda cls, v: check_email(v)))
    _lines = field_validator("phone", "first_name", "last_name")(
        classmethod(lambda cls, v: check_line(v))
    )

    def upsert_for(self, customer_id: str) -> CustomerIn:
        """The upsert of the customer ``customer_id`` (given apart: a path, an event)
        with these fields; only the fields sent, so the others keep their values. A bad
        id is a ``ValidationFailed`` naming ``customer_id``."""
        try:
            return CustomerIn(customer_id=customer_id, **self.model_dump(exclude_unset=True))
        except ValidationError as exc:
            raise ValidationFailed(f"customer_id: {exc.errors()[0]['msg']}") from None


class PromoCodeOut(BaseModel):
    """One line of the profile's Promo codes tab."""

    code: str
    group_id: int
    group_name: str
    kind: str
    issued_at: datetime
    source: str
    source_ref: str | None
    status: str
