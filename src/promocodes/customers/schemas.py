"""Shapes of the customers domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Fields a template may read as ``client.<field>`` (besides ``attributes``).
CUSTOMER_FIELDS = ("customer_id", "email", "phone", "first_name", "last_name")


class CustomerIn(BaseModel):
    """An upsert: fields left out keep their stored value; ``attributes`` are merged."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None

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
