"""Streaming parser for customer imports: JSON lines, CSV, or a JSON array.

Pure: no database. Each record becomes a validated ``CustomerIn`` or a ``LineError``;
a bad record never stops the rest.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import ValidationError

from promocodes.customers.schemas import CustomerIn, LineError
from promocodes.errors import ValidationFailed, field_of

_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name")
MAX_LINE_BYTES = 64 * 1024

CustomerItem = tuple[int, CustomerIn] | LineError


def _error_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        parts.append(f"{field_of(err, 'record')}: {err['msg']}")
    return "; ".join(parts)


def validate_record(line: int, record: Any) -> CustomerItem:
    if not isinstance(record, dict):
        return LineError(line=line, message="expected an object with a customer_id")
    try:
        return line, CustomerIn.model_validate(record)
    except ValidationError as exc:
        return LineError(line=line, message=_error_text(exc))


def detect_format(filename: str | None, head: bytes) -> str:
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


class _HeadThenRest(io.RawIOBase):
    """The bytes already read to sniff the format, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def read_customers(
    stream: BinaryIO,
    *,
    filename: str | None = None,
    fmt: str | None = None,
    strict_body: bool = False,
) -> Iterator[CustomerItem]:
    """``strict_body``: a JSON body that is not an array of objects is refused whole
    (``ValidationFailed``), as the API's schema says, instead of reported as a bad line."""
    head = stream.read(64)
    kind = fmt or detect_format(filename, head)
    text = io.TextIOWrapper(
        io.BufferedReader(_HeadThenRest(head, stream)),
        encoding="utf-8-sig",
        errors="replace",
        newline="",
    )
    if kind == "json":
        # A JSON array cannot be parsed line by line; its size is bounded by the caller's
        # body/upload limit. Records are numbered by their position in the array.
        try:
            data = json.load(text)
        except json.JSONDecodeError as exc:
            if strict_body:
                raise ValidationFailed(f"body: invalid JSON: {exc.msg}") from None
            yield LineError(line=exc.lineno, message=f"invalid JSON: {exc.msg}")
            return
        if not isinstance(data, list) or (
            strict_body and not all(isinstance(r, dict) for r in data)
        ):
            if strict_body:
                raise ValidationFailed("body: expected a JSON array of customer objects")
            yield LineError(line=1, message="expected a JSON array of customer records")
            return
        for index, record in enumerate(data, start=1):
            yield validate_record(index, record)
    elif kind == "jsonl":
        yield from _jsonl(text)
    else:
        yield from _csv(text)


def _jsonl(text: io.TextIOWrapper) -> Iterator[CustomerItem]:
    for number, raw in enumerate(iter(lambda: text.readline(MAX_LINE_BYTES), ""), start=1):
        if len(raw) >= MAX_LINE_BYTES and not raw.endswith("\n"):
            # Drain the rest of an oversized line without keeping it.
            while (more := text.readline(MAX_LINE_BYTES)) and not more.endswith("\n"):
                pass
            yield LineError(line=number, message=f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield LineError(line=number, message=f"invalid JSON: {exc.msg}")
            continue
        yield validate_record(number, record)


def _csv(text: io.TextIOWrapper) -> Iterator[CustomerItem]:
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    if "customer_id" not in header:
        yield LineError(line=1, message="the CSV header needs a customer_id column")
        return
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            yield LineError(line=number, message=f"{len(row)} cells but {len(header)} columns")
            continue
        record: dict[str, Any] = {}
        attributes: dict[str, str] = {}
        for name, cell in zip(header, row, strict=False):
            if name in _COLUMNS:
                if cell != "":
                    record[name] = cell
            elif name and cell != "":
                attributes[name] = cell
        if attributes:
            record["attributes"] = attributes
        yield validate_record(number, record)
