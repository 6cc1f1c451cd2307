"""Text the databases can store: no NUL characters (PostgreSQL refuses them) and no lone
surrogates (not encodable as UTF-8). Every free-text input goes through ``Text``."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it has a lone surrogate)") from None
    return value


def clean_name(value: str, max_chars: int) -> str:
    """A name people give a thing (a group, a segment): text the databases can store,
    trimmed, 1 to ``max_chars`` characters, on one line with no control characters."""
    name = check_text(value).strip()
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > max_chars:
        raise ValueError(f"name is {len(name)} characters long (at most {max_chars})")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError("name must not contain control characters or line breaks")
    return name


NON_FINITE = "numbers must be finite (NaN and Infinity are not numbers JSON can store)"
# How deep lists and objects may nest inside one value (``{"a": [[1]]}``: ``a`` nests 2).
# Deeper, a value costs recursion to check, store and answer, and past about 250 levels the
# API cannot even write it back (pydantic's serializer stops): a customer saved that way
# answered 500 to every read. Real attributes are flat or nearly so.
MAX_JSON_DEPTH = 32
TOO_DEEP = (
    f"lists and objects are nested more than {MAX_JSON_DEPTH} levels deep "
    f"(at most {MAX_JSON_DEPTH})"
)


def check_json(value: Any) -> Any:
    """The same rule for every string (keys included) inside a JSON value, and numbers
    JSON can store: Python's parser takes ``NaN`` and ``Infinity``, but stored they make
    the column invalid JSON (SQLite's JSON functions then fail, PostgreSQL refuses them).
    A non-finite number is refused naming where it is (``path`` in the error's context,
    e.g. ``n`` or ``list[2].x``), as the API's and the importer's field names read it.
    Lists and objects nested deeper than ``MAX_JSON_DEPTH`` are refused naming the
    top-level key they are under, checked no deeper than the limit."""
    return _check_json(value, "", 0, "")


def _check_json(value: Any, path: str, depth: int, top: str) -> Any:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", NON_FINITE, {"path": path})
    elif isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
        raise PydanticCustomError("json_depth", TOO_DEEP, {"path": top})
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key))
            inner = f"{path}.{key}" if path else str(key)
            _check_json(item, inner, depth + 1, top or inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            inner = f"{path}[{index}]"
            _check_json(item, inner, depth + 1, top or inner)
    return value


# For path parameters and headers, where a validator cannot run: the same rule as a pattern.
NO_NUL_PATTERN = r"^[^\x00]*$"


class _NoNulInSchema:
    """States ``check_text``'s NUL rule in the JSON schema too (as ``NO_NUL_PATTERN``),
    so a client (or a contract test) knows a NUL is refused; the validator still runs
    for its clearer message. A field with a pattern of its own keeps it (that pattern
    must then exclude NUL itself)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


Text = Annotated[str, AfterValidator(check_text), _NoNulInSchema]

# An RFC 3339 time, "2025-01-31T12:00:00Z" (the schema's ``date-time``). Pydantic alone
# would also take a number (``0``, ``"0.5"``) as seconds since 1970, which the schema
# refuses: a time sent as anything else is refused here, before Pydantic reads it.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?")


def rfc3339(value: object) -> object:
    """The time, read as UTC when it has an offset (a time without one stays as given,
    for the field's own rule): an answer shows it as stored, not in the sender's zone,
    and a time whose UTC falls outside the years 1-9999 is refused here, not on the way
    to the database."""
    if value is None:
        return value
    if isinstance(value, str) and _TIME.fullmatch(value):
        value = datetime.fromisoformat(value.upper())
    if not isinstance(value, datetime):
        raise ValueError("must be an RFC 3339 time, such as 2025-01-31T12:00:00Z")
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("falls outside the years 1 to 9999 once in UTC") from None


Rfc3339 = BeforeValidator(rfc3339)


def digits(value: object) -> object:
    """A number sent as text (a path's id) written in digits alone: ``int()`` also reads
    ``1_0`` as 10 and `` +2`` or ``2.0`` as 2, so another spelling could name another row."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be written in digits alone, such as 42")
    return value


Digits = BeforeValidator(digits)
