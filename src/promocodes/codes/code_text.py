"""What a promo code is, as uploads and look-ups check it: the valid characters and
length, how a value is normalised, why it is not a code (in words a marketer reads), and
how a line of an upload turns out (a code, or an invalid line with its reason). Pure."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

MAX_CODE_LENGTH = 64

# Explicit ASCII classes: `\w` and `\d` would accept Unicode letters/digits, `$` a trailing "\n".
_VALID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}")
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Unicode White_Space (not str.isspace(), which also counts the U+001C..U+001F separators).
_SPACES = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_STRIP = "".join(sorted(_SPACES | _INVISIBLE))
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*")
# 31.01.2030 and 31/01/2030, as Excel writes dates in most of Europe: the day comes first.
_DAY_FIRST = re.compile(r"([0-9]{1,2})[./]([0-9]{1,2})[./]([0-9]{4})")


@dataclass(frozen=True, slots=True)
class ParsedCode:
    line: int  # 1-based physical line number
    code: str  # normalised, valid
    valid_until: datetime | None  # tz-aware UTC, only from CSV


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line: int
    value: str  # safe display of the raw (stripped) value
    reason: str


@dataclass(frozen=True, slots=True)
class CodeRun:
    """Consecutive lines from ``first_line`` on, each one valid code as is (no expiry)."""

    first_line: int
    codes: list[str]


ImportItem = ParsedCode | InvalidLine
# What the fast path yields: runs of valid codes, and single items for everything else.
Piece = ImportItem | CodeRun


def normalize(raw: str) -> str:
    """Strip Unicode whitespace, BOM and zero-width characters from both ends; keep case."""
    return raw.strip(_STRIP)


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()


def invalid_reason(code: str) -> str | None:
    """Why an already-normalised value is not a valid code, or None if it is valid."""
    if _VALID.fullmatch(code):
        return None
    if not code:
        return "empty code"
    if "\x00" in code:
        return "contains a NUL byte"
    # Character problems first: they explain look-alikes and pasted sentences better than length.
    for position, ch in enumerate(code, 1):
        if ch in _ALLOWED:
            continue
        if ch in "\r\n":
            return f"contains a line break at position {position}"
        if ch in _SPACES or ch in _INVISIBLE:
            detail = "" if ch == " " else f" ({_describe(ch)})"
            return f"contains a space{detail} at position {position}"
        return f"invalid character '{safe_display(ch)}' ({_describe(ch)}) at position {position}"
    return f"too long: {len(code)} characters (at most {MAX_CODE_LENGTH})"


def safe_display(raw: str, limit: int = 80) -> str:
    """Printable, short rendering: non-printables escaped, cut to `limit` chars plus '…'."""
    parts: list[str] = []
    size = 0
    for ch in raw:  # stops early, so a huge value costs O(limit)
        piece = ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        if size + len(piece) > limit:
            return "".join(parts) + "…"
        parts.append(piece)
        size += len(piece)
    return "".join(parts)


def parse_until(value: str) -> datetime | None:
    if not value.isascii():  # fromisoformat may accept non-ASCII digits
        return None
    try:
        if _DATE.fullmatch(value):
            # A bare date means "through the end of that day", in UTC.
            return datetime.combine(date.fromisoformat(value), time.max, UTC)
        if day_first := _DAY_FIRST.fullmatch(value):
            day, month, year = (int(part) for part in day_first.groups())
            return datetime.combine(date(year, month, day), time.max, UTC)
        if _DATETIME.fullmatch(value):
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    return None


def check(number: int, code: str, valid_until: datetime | None = None) -> ImportItem:
    reason = invalid_reason(code)
    if reason is not None:
        return InvalidLine(number, safe_display(code), reason)
    return ParsedCode(number, code, valid_until)
