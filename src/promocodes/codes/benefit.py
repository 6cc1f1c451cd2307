"""A group's benefit: what its codes are worth, as checked on the way in, stored in
four columns of ``code_groups`` and told to customers (``public_text``). Pure: no I/O."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Protocol, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)

from promocodes.text import Text

BenefitType = Literal["percent", "amount", "free_shipping", "gift", "other"]
# Each type in words, in the order forms offer them.
BENEFIT_LABELS = {
    "percent": "Percent off",
    "amount": "Amount off",
    "free_shipping": "Free shipping",
    "gift": "Gift",
    "other": "Other",
}
# Money and percentages: exact in, a plain JSON number out (not Decimal's string).
Amount = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
MAX_BENEFIT_TEXT = 200


class Benefit(BaseModel):
    """What a code of the group is worth. ``value`` is the percentage (``percent``) or
    the amount off (``amount``, in ``currency``: ISO 4217, three letters); the other
    types take neither. ``text`` is what customers are shown (``client.benefit('G')``);
    without it a text is made from the type and value, so ``other`` needs one."""

    model_config = ConfigDict(extra="forbid")

    type: BenefitType
    value: Amount | None = Field(default=None, validate_default=True)
    currency: str | None = Field(default=None, validate_default=True)
    text: Text | None = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        kind = info.data.get("type")
        if kind in ("percent", "amount") and value is None:
            raise ValueError(f"a {kind} benefit needs a value")
        if kind not in ("percent", "amount") and value is not None and kind is not None:
            raise ValueError(f"a {kind} benefit has no value (only percent and amount do)")
        if kind == "percent" and value is not None and value > 100:
            raise ValueError("a percent benefit is at most 100")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if value is None:
            if kind == "amount":
                raise ValueError("an amount benefit needs a currency (ISO 4217, e.g. EUR)")
            return None
        if kind != "amount":
            raise ValueError("only an amount benefit has a currency")
        code = value.strip().upper()
        if len(code) != 3 or not code.isascii() or not code.isalpha():
            raise ValueError("a currency is an ISO 4217 code of three letters, e.g. EUR")
        return code

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = None if value is None else value.strip() or None
        if value is None:
            if info.data.get("type") == "other":
                raise ValueError("an 'other' benefit needs a text saying what it is")
            return None
        if len(value) > MAX_BENEFIT_TEXT:
            raise ValueError(f"text is {len(value)} characters long (at most {MAX_BENEFIT_TEXT})")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("text must be one line without control characters")
        return value


class _BenefitColumns(Protocol):
    """A group's benefit as stored (a ``CodeGroup``)."""

    @property
    def benefit_type(self) -> str | None: ...
    @property
    def benefit_value(self) -> Decimal | None: ...
    @property
    def benefit_currency(self) -> str | None: ...
    @property
    def benefit_text(self) -> str | None: ...


def benefit_of(group: _BenefitColumns) -> Benefit | None:
    """The group's benefit, or None when it has none. Stored values were validated on
    the way in, so they are not validated again."""
    if group.benefit_type is None:
        return None
    return Benefit.model_construct(
        type=cast(BenefitType, group.benefit_type),
        value=group.benefit_value,
        currency=group.benefit_currency,
        text=group.benefit_text,
    )


# The group's columns that store its benefit.
BENEFIT_COLUMNS = ("benefit_type", "benefit_value", "benefit_currency", "benefit_text")


def benefit_columns(benefit: Benefit | None) -> dict[str, object]:
    """The columns that store ``benefit`` (all None to remove it)."""
    if benefit is None:
        return dict.fromkeys(BENEFIT_COLUMNS)
    return {
        "benefit_type": benefit.type,
        "benefit_value": benefit.value,
        "benefit_currency": benefit.currency,
        "benefit_text": benefit.text,
    }


def public_text(benefit: Benefit | None) -> str:
    """What customers are told the code gives: the group's own text, or one made from the
    type and value ("10% off", "5 EUR off", "Free shipping", "A gift"); '' without one."""
    if benefit is None:
        return ""
    if benefit.text:
        return benefit.text
    value = benefit.value
    shown = "" if value is None else f"{value.normalize():f}"
    if benefit.type == "percent":
        return f"{shown}% off"
    if benefit.type == "amount":
        return f"{shown} {benefit.currency} off"
    return {"free_shipping": "Free shipping", "gift": "A gift"}.get(benefit.type, "")
