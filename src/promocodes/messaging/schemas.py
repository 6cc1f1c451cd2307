"""API shapes of mailings, campaigns, events and templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from promocodes.customers.schemas import CustomerFields, CustomerIdText
from promocodes.messaging.models import Channel
from promocodes.text import Rfc3339, Text

# Numbers and flags of a body are strict (``strict=True``, ``StrictBool``): the schema
# says integer or boolean, and Pydantic alone took ``"yes"`` as true and ``true`` as 1.


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Text = Field(default="", max_length=100_000)
    body_text: Text | None = Field(default=None, max_length=100_000)
    body_html: Text | None = Field(default=None, max_length=100_000)


class MailingCreate(TemplateIn):
    name: Text = Field(min_length=1, max_length=200)
    segment_id: int = Field(ge=1, le=2_147_483_647, strict=True)
    channel: Channel = "outbox"
    send_at: Annotated[datetime | None, Rfc3339] = None  # a string, not seconds
    chunk_size: int = Field(default=500, ge=1, le=10_000, strict=True)


class MailingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    segment_id: int | None = Field(default=None, ge=1, le=2_147_483_647, strict=True)
    channel: Channel | None = None
    subject: Text | None = Field(default=None, max_length=100_000)
    body_text: Text | None = Field(default=None, max_length=100_000)
    body_html: Text | None = Field(default=None, max_length=100_000)
    send_at: Annotated[datetime | None, Rfc3339] = None  # a string, not seconds


class AttemptOut(BaseModel):
    """One send of a mailing: round 0 is the first, each resend of failed recipients the
    next; its recipients' messages by status."""

    round: int
    started_at: datetime | None
    recipients: int
    sent: int
    failed: int
    queued: int
    skipped: int


class MailingOut(BaseModel):
    id: int
    name: str
    segment_id: int
    channel: str
    subject: str
    body_text: str | None
    body_html: str | None
    status: str
    send_at: datetime | None
    total: int
    rendered: int
    sent: int
    skipped: int
    failed: int
    skipped_reasons: dict[str, int]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Figures above are per recipient, by their latest message; with resends, each
    # attempt's own figures are here (empty when the mailing was sent once).
    attempts: list[AttemptOut] = []


class SkipOut(BaseModel):
    reason: str
    detail: str | None
    count: int


class StockCheck(BaseModel):
    group_id: int
    name: str
    # Codes the mailing needs from the group: exact when the sample is the whole
    # segment, else the segment times the sample's share that draws a code, rounded up.
    needed: int
    active: int
    enough: bool
    drawing: int = 0  # recipients of the sample whose message takes a code from it
    # Why the group can give no code at all now (expired, not valid yet), else null.
    closed: str | None = None


class MailingCheckOut(BaseModel):
    recipients: int  # the segment's size now
    sample: int  # recipients rendered in the dry run (up to 200, spread over the segment)
    estimated: bool  # the figures come from part of the segment
    groups: list[StockCheck]
    skipped: list[SkipOut]  # recipients of the sample that would be skipped, and why


class ResendIn(BaseModel):
    """A resend takes no options (the request's identity is its path)."""


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_partial: StrictBool = False


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText | None = None


class TemplatePreviewIn(TemplateIn):
    customer_id: CustomerIdText | None = None


# Whitespace spelled out: ``\s`` is one set to JSON Schema (ECMA-262: with U+FEFF) and
# another to Pydantic's Rust regex (with U+0085), so the schema allowed addresses the API
# refused, and the other way round. Both sets, and NUL: every other character is allowed
# by both.
_ADDRESS_PART = (
    r"[^@\x00\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+"
)
ADDRESS = rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$"


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No NUL in the pattern either: Text's own (no NUL) gives way to a field's pattern.
    email: Text = Field(min_length=3, max_length=320, pattern=ADDRESS)


class RenderedOut(BaseModel):
    subject: str
    body_text: str | None
    body_html: str | None
    preview: bool = True
    # Which values are placeholders, and why a macro renders empty for this customer.
    notes: list[str] = []


class ProblemItem(BaseModel):
    field: str
    line: int | None
    column: int | None
    message: str


class ValidationOut(BaseModel):
    valid: bool
    errors: list[ProblemItem]
    groups: list[str]


class MessageOut(BaseModel):
    id: int
    customer_id: str
    channel: str
    recipient: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    status: str
    skip_reason: str | None
    error: str | None
    message_id: str
    created_at: datetime
    sent_at: datetime | None


class CampaignIn(TemplateIn):
    name: Text = Field(min_length=1, max_length=200)
    event: Text = Field(min_length=1, max_length=100)
    channel: Channel = "outbox"
    active: StrictBool = True
    # An event for an unknown customer creates it (from the event's ``customer``), and
    # the ``customer`` of an event updates a known one; off, the object is ignored.
    creates_customers: StrictBool = False


class CampaignUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    event: Text | None = Field(default=None, min_length=1, max_length=100)
    channel: Channel | None = None
    subject: Text | None = Field(default=None, max_length=100_000)
    body_text: Text | None = Field(default=None, max_length=100_000)
    body_html: Text | None = Field(default=None, max_length=100_000)
    active: StrictBool | None = None
    creates_customers: StrictBool | None = None


class CampaignOut(BaseModel):
    id: int
    name: str
    event: str
    channel: str
    subject: str
    body_text: str | None
    body_html: str | None
    active: bool
    creates_customers: bool
    created_at: datetime
    stats: dict[str, int]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText
    event: Text = Field(min_length=1, max_length=100)
    event_id: Text | None = Field(default=None, min_length=1, max_length=200)
    # The customer as the event knows them: the same fields and rules as
    # ``PUT /customers/{customer_id}``. Applied only when a campaign on the event allows it.
    customer: CustomerFields | None = None

    @model_validator(mode="before")
    @classmethod
    def _attributes_go_under_customer(cls, data: Any) -> Any:
        # An event has no attributes of its own: a top-level ``attributes`` is the
        # customer's, sent one level too high. Refused with where they go (not just as an
        # unknown key): taken silently, they would be lost without a word.
        if isinstance(data, dict) and "attributes" in data:
            raise PydanticCustomError(
                "extra_forbidden",
                "an event has no attributes of its own: the customer's go under customer "
                '({"customer": {"attributes": {…}}}), applied where a campaign on the '
                "event adds customers",
                {"path": "attributes"},
            )
        return data


# What the event did to its customer: created or updated them from its ``customer``, or
# ignored that object (no active campaign on the event allows it); null: left as it was.
CustomerChange = Literal["created", "updated", "ignored"]


class EventOut(BaseModel):
    event: str
    customer_id: str
    customer_change: CustomerChange | None = None
    messages: list[MessageOut]
