"""Pydantic shapes of the codes domain, shared by the API, the web UI and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from promocodes.codes.benefit import Benefit
from promocodes.codes.pattern import MAX_GENERATE, check_count, parse
from promocodes.codes.report import UploadReport as UploadReport  # re-exported: its home
from promocodes.customers.schemas import CustomerIdText
from promocodes.errors import ValidationFailed
from promocodes.text import Rfc3339, Text, clean_name

MAX_GROUP_NAME = 200
# Numbers and flags of a body are strict (``strict=True``, ``StrictBool``): the schema
# says integer or boolean, and Pydantic alone took ``true`` as 1 and ``"5"`` as 5.


def clean_group_name(value: str) -> str:
    return clean_name(value, MAX_GROUP_NAME)


class _Validity(BaseModel):
    # Rfc3339: the schema's date-time is a string; Pydantic alone took 0 as 1970.
    valid_from: Annotated[datetime | None, Rfc3339] = None
    valid_until: Annotated[datetime | None, Rfc3339] = None

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-31T23:59:59Z)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> _Validity:
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_until must be later than valid_from")
        return self


LimitAction = Literal["repeat", "skip"]
# The column is a 32-bit integer on both backends.
MAX_CUSTOMER_LIMIT = 2_147_483_647


class _Rules(_Validity):
    """What create and edit share beyond the validity: the benefit and the limit."""

    benefit: Benefit | None = None
    customer_limit: int | None = Field(default=None, ge=1, le=MAX_CUSTOMER_LIMIT, strict=True)
    limit_action: LimitAction = "repeat"


# The column is a 32-bit integer on both backends; a larger threshold was a server error.
MAX_LOW_STOCK_THRESHOLD = 2_147_483_647
REFILL_FIELDS = ("refill_pattern", "refill_below", "refill_count")


class _Refill(BaseModel):
    """Refill: when active codes fall below ``refill_below``, the workers generate
    ``refill_count`` codes of ``refill_pattern``. All three together, or none."""

    refill_pattern: str | None = Field(default=None, max_length=64)
    refill_below: int | None = Field(default=None, ge=1, le=MAX_LOW_STOCK_THRESHOLD, strict=True)
    refill_count: int | None = Field(default=None, ge=1, le=MAX_GENERATE, strict=True)

    @model_validator(mode="after")
    def _whole(self) -> _Refill:
        given = [getattr(self, f) is not None for f in REFILL_FIELDS]
        if any(given) and not all(given):
            raise ValueError("refill: give refill_pattern, refill_below and refill_count together")
        if self.refill_pattern is not None and self.refill_count is not None:
            try:
                check_count(parse(self.refill_pattern), self.refill_count)
            except ValidationFailed as exc:
                raise ValueError(f"refill_{exc.detail}") from None
        return self


class GroupCreate(_Rules, _Refill):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: Text | None = Field(default=None, max_length=5_000)
    low_stock_threshold: int | None = Field(
        default=None, ge=0, le=MAX_LOW_STOCK_THRESHOLD, strict=True
    )
    # Printed flyers: codes may be redeemed without having been issued to anyone.
    redeem_unissued: StrictBool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_group_name(value)


class GroupUpdate(_Rules, _Refill):
    """Only the fields present in the request are changed (``model_fields_set``); the
    refill's three fields change together (null all three to stop refilling)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: Text | None = Field(default=None, max_length=5_000)
    low_stock_threshold: int | None = Field(
        default=None, ge=0, le=MAX_LOW_STOCK_THRESHOLD, strict=True
    )
    redeem_unissued: StrictBool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str:
        # Runs only for a name that was sent: null would remove it, and a group keeps one.
        if value is None:
            raise ValueError("a group keeps its name: send a new one, or leave name out")
        return clean_group_name(value)


class Counts(BaseModel):
    total: int = 0
    active: int = 0
    issued: int = 0
    redeemed: int = 0
    blocked: int = 0


class GroupOut(Counts):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    low_stock_threshold: int | None
    redeem_unissued: bool = False
    refill_pattern: str | None = None
    refill_below: int | None = None
    refill_count: int | None = None
    benefit: Benefit | None = None
    customer_limit: int | None = None
    limit_action: str = "repeat"
    archived_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=1, le=MAX_GENERATE, strict=True)


class GenerateReport(BaseModel):
    """Generated codes: ``added`` new codes (``requested`` unless the pattern ran out);
    ``collisions``: drawn codes that already existed (anywhere) and were drawn again."""

    upload_id: int
    group_id: int
    pattern: str
    requested: int
    added: int
    collisions: int


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_id: int
    source: str
    actor: str | None
    filename: str | None
    received: int
    added: int
    duplicates_in_upload: int
    already_in_group: int
    in_other_groups: int
    invalid_count: int
    withdrawn: int
    withdrawn_at: datetime | None
    created_at: datetime


class CodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    status: str
    group_id: int
    valid_until: datetime | None
    created_at: datetime
    issued_at: datetime | None
    redeemed_at: datetime | None
    blocked_at: datetime | None


class GroupIn(GroupCreate):
    """Create a group, optionally with its first codes."""

    codes: list[str] | None = Field(default=None, max_length=100_000)


class GroupCreated(GroupOut):
    upload: UploadReport | None = None


class CodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[str] = Field(max_length=1_000_000)


class UploadStatusOut(BaseModel):
    """A recorded upload; ``report`` once it is done, ``lines_processed`` while running."""

    id: int
    group_id: int
    status: str
    source: str
    filename: str | None
    created_at: datetime
    withdrawn: int
    withdrawn_at: datetime | None
    # The pattern of generated codes; null for a file or a list.
    pattern: str | None = None
    lines_processed: int | None = None
    error: str | None = None
    report: UploadReport | None = None


class CodeRowOut(BaseModel):
    code: str
    status: str
    customer_id: str | None
    issued_at: datetime | None
    redeemed_at: datetime | None
    valid_until: datetime | None


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText
    kind: Literal["initial", "repeat"] = "initial"


class IssueOut(BaseModel):
    code: str | None
    kind: str
    group_id: int
    customer_id: str
    issued_at: datetime | None


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText | None = None
    order_id: Text | None = Field(default=None, min_length=1, max_length=200)


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdText | None = None


class ValidatedGroupOut(BaseModel):
    id: int
    name: str


class ValidateOut(BaseModel):
    """Whether the code can be redeemed now and, when not, why (``reason``: a stable
    slug). ``valid_until`` is the earlier of the code's own expiry and its group's."""

    code: str
    valid: bool
    reason: str | None
    detail: str | None
    group: ValidatedGroupOut | None
    benefit: Benefit | None
    valid_from: datetime | None
    valid_until: datetime | None


class RedeemOut(BaseModel):
    code: str
    status: str
    group_id: int
    redeemed_at: datetime
    order_id: str | None
    customer_id: str | None


class IssuanceOut(BaseModel):
    customer_id: str
    kind: str
    issued_at: datetime
    source: str
    source_ref: str | None
    voided: bool


class CodeLookupOut(BaseModel):
    code: str
    status: str
    group_id: int
    group_name: str
    valid_until: datetime | None
    redeemed_at: datetime | None
    order_id: str | None
    issuances: list[IssuanceOut]


class BlockOut(BaseModel):
    code: str
    status: str
    previous_status: str


class UnblockOut(BaseModel):
    """``status`` is where the code went back to (``issued`` or ``available``); a code
    that was not blocked is left as it is."""

    code: str
    status: str
    previous_status: str


class UnredeemOut(BaseModel):
    code: str
    status: str
    previous_status: str
    order_id: str | None


class RejectedLineOut(BaseModel):
    line: int
    code: str
    reason: str


class RedemptionReport(BaseModel):
    """What a redemption file did: lines read, codes redeemed, lines already redeemed by
    their order (nothing changed), lines refused (the first ones listed, with why)."""

    received: int = 0
    redeemed: int = 0
    already: int = 0
    rejected: int = 0
    rejected_lines: list[RejectedLineOut] = Field(default_factory=list)


class StockOut(BaseModel):
    group_id: int
    active: int
    issued_last_7_days: int
    rate_per_day: float
    days_until_empty: float | None
    low_stock: bool


class AlertOut(BaseModel):
    id: int
    group_id: int
    kind: str
    created_at: datetime
    delivered_at: datetime | None
