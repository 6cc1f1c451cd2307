"""Pydantic shapes of segments, shared by the API, the web UI and the CLI."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promocodes.customers.schemas import CustomerOut
from promocodes.segments.models import MAX_SEGMENT_NAME
from promocodes.segments.tree import Filter, FilterTree
from promocodes.text import clean_name

DEFAULT_SAMPLE = 10
MAX_SAMPLE = 100


def clean_segment_name(value: str) -> str:
    return clean_name(value, MAX_SEGMENT_NAME)


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    filter: FilterTree

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_segment_name(value)


class SegmentUpdate(BaseModel):
    """Fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    filter: FilterTree | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("name cannot be removed")
        return clean_segment_name(value)

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, value: object) -> object:
        if value is None:
            raise ValueError("filter cannot be removed")
        return value


class SegmentOut(BaseModel):
    id: int
    name: str
    filter: Filter
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    """Body of ``POST /segments/preview``: a filter tree not saved yet."""

    model_config = ConfigDict(extra="forbid")

    filter: FilterTree
    # Strict: a JSON true or false is no sample size (lax Pydantic would read them as 1, 0).
    sample_size: int = Field(default=DEFAULT_SAMPLE, ge=0, le=MAX_SAMPLE, strict=True)


class PreviewOut(BaseModel):
    count: int
    sample: list[CustomerOut]


class CustomersPage(BaseModel):
    """One page of a segment's customers; ``next_cursor`` is None on the last page."""

    customers: list[CustomerOut]
    next_cursor: str | None
