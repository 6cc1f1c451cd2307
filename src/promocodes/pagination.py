"""Paginated lists: opaque keyset cursors (``?cursor=`` → ``next_cursor``) and the
status filter lists take."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from promocodes.errors import ValidationFailed

T = TypeVar("T")


# A cursor is the last id of a page in base 36: every string of this pattern names a
# position (the schema declares it, so a well-formed cursor is never refused). Ids are
# 32-bit integer columns, so a larger value is read as the largest id: the same position
# for every row there is, and no out-of-range parameter for PostgreSQL.
CURSOR_PATTERN = r"^[0-9a-z]{0,11}$"
MAX_ID = 2**31 - 1
_CURSOR = re.compile(CURSOR_PATTERN)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_cursor(last_id: int) -> str:
    digits = ""
    while True:
        last_id, rest = divmod(last_id, 36)
        digits = _DIGITS[rest] + digits
        if not last_id:
            return digits


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise ValidationFailed("cursor is not valid; use next_cursor from a previous page")
    return min(int(cursor, 36), MAX_ID)


def split_page(
    rows: Sequence[T], limit: int, key: Callable[[T], int]
) -> tuple[list[T], str | None]:
    """A page from ``limit + 1`` fetched rows: the first ``limit`` rows, and the cursor of
    the next page when the extra row shows there is one."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return page, encode_cursor(key(page[-1])) if more else None


def status_filter(status: str | None, statuses: Sequence[str]) -> str | None:
    """A list's ``status`` filter: empty means every status; anything else must be one
    of ``statuses``."""
    if not status:
        return None
    if status not in statuses:
        raise ValidationFailed(f"status must be one of {', '.join(statuses)}; got {status!r}")
    return status
