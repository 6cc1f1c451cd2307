"""Codes sent as JSON: a list (an API body's ``codes``) or a file ``{"codes": [...]}``
parsed as it is read. Element *n* is reported as line *n*. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import BinaryIO

import ijson

from promocodes.codes.code_text import (
    ImportItem,
    InvalidLine,
    ParsedCode,
    invalid_reason,
    normalize,
    safe_display,
)
from promocodes.errors import ValidationFailed


def read_list(codes: Iterable[str]) -> Iterator[ImportItem]:
    """Codes given as a list (a JSON body): element *n* is reported as line *n*."""
    for line, raw in enumerate(codes, start=1):
        code = normalize(raw)
        if not code:
            continue
        reason = invalid_reason(code)
        if reason is None:
            yield ParsedCode(line, code, None)
        else:
            yield InvalidLine(line, safe_display(code), reason)


MAX_JSON_CODES = 1_000_000


def read_json(stream: BinaryIO) -> Iterator[ImportItem]:
    """Codes of a JSON body ``{"codes": [...]}``, parsed as they are read (the document
    is never held whole); element *n* is reported as line *n*, as ``read_list`` does.
    A body that is not that shape raises ``ValidationFailed`` where it goes wrong; one
    without a code (``{"codes": []}``, or blanks only) raises it at once, as an empty
    file is refused: before anything of it is recorded."""
    items = read_list(_json_codes(stream))
    # Its first item is read now, so the caller's up-front look refuses the empty body
    # (an upload with nothing in it is not history).
    first = next(items, None)
    if first is None:
        raise ValidationFailed("codes: The list holds no codes: nothing to upload.")
    return chain((first,), items)


def _json_codes(stream: BinaryIO) -> Iterator[str]:
    try:
        yield from _codes_of(ijson.parse(stream))
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"body: invalid JSON ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    """The parser's message without the picture of the text that it draws below it."""
    said = exc.args[0] if exc.args else ""
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    return safe_display(text.strip().split("\n", 1)[0], 120) or type(exc).__name__


def _codes_of(events: Iterator[tuple[str, str, object]]) -> Iterator[str]:
    """The strings of the ``codes`` array, checked against the upload's schema (an object
    with that one field) as the events arrive."""
    found, count = False, 0
    for prefix, event, value in events:
        if prefix == "":
            if event == "map_key" and value != "codes":
                field = safe_display(str(value), 40)
                raise ValidationFailed(f"body.{field}: Extra inputs are not permitted")
            if event not in ("start_map", "map_key", "end_map"):
                raise ValidationFailed('body: expected an object {"codes": [...]}')
            found = found or event == "map_key"
        elif prefix == "codes" and event not in ("start_array", "end_array"):
            raise ValidationFailed("codes: Input should be a valid list")
        elif prefix == "codes.item":
            if event != "string":
                raise ValidationFailed(f"codes.{count}: Input should be a valid string")
            count += 1
            if count > MAX_JSON_CODES:
                raise ValidationFailed(f"codes: at most {MAX_JSON_CODES:,} codes in one body")
            yield str(value)
    if not found:
        raise ValidationFailed("codes: Field required")
