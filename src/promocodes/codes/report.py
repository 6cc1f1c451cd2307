"""The shape of an upload's report, shared by the API, the web UI and the CLI: every
non-blank line in one count, and the first lines of each kind listed by line number."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class InvalidLineOut(BaseModel):
    line: int
    value: str
    reason: str


class ConflictOut(BaseModel):
    """A code of the upload that already exists in another group."""

    line: int
    code: str
    group_id: int
    group_name: str


class DuplicateOut(BaseModel):
    """A line of the upload whose code was not added again: ``in_upload`` when an
    earlier line of the same upload had it (``first_line``: that line, when it is
    known), ``in_group`` when the group had it already."""

    line: int
    code: str
    kind: Literal["in_upload", "in_group"]
    first_line: int | None = None


class UploadReport(BaseModel):
    """Every non-blank line in exactly one count; the lists give the first lines of
    each (up to the report limit), all of them counted."""

    received: int = 0
    added: int = 0
    duplicates_in_upload: int = 0
    already_in_group: int = 0
    in_other_groups: int = 0
    invalid_count: int = 0
    expired_count: int = 0
    invalid: list[InvalidLineOut] = Field(default_factory=list)
    other_groups: list[ConflictOut] = Field(default_factory=list)
    duplicates: list[DuplicateOut] = Field(default_factory=list)
    # Warnings: valid codes that were not added because their own date has passed.
    expired: list[InvalidLineOut] = Field(default_factory=list)
    # Of the whole file: a column that is not read, the encoding it was read in.
    warnings: list[str] = Field(default_factory=list)
    dry_run: bool = False
    upload_id: int | None = None
