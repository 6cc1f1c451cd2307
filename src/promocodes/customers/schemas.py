"""Shapes of the customers domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from promocodes.text import Text, check_json

# Fields a template may read as ``client.<field>`` (besides ``attributes``).
CUSTOMER_FIELDS = ("customer_id", "email", "phone", "first_name", "last_name")


class CustomerIn(BaseModel):
    """An upsert: fields left out keep their stored value; ``attributes`` are merged."""

    model_config = ConfigDict(extra="forbid")

    customer_id: Text = Field(min_length=1, max_length=200)
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

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if not at or not local or "." not in domain or " " in value:
            raise ValueError(f"{value!r} is not an email address")
        return value


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
