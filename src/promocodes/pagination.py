"""Paginated lists: opaque keyset cursors (``?cursor=`` → ``next_cursor``) and the
status filter lists take."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TypeVar

from promocodes.errors import ValidationFailed

T = TypeVar("T")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("c"):
            raise ValueError(raw)
        value = int(raw[1:])
        if not 0 <= value < 2**62:
            raise ValueError(raw)
        return value
    except ValueError:
        raise ValidationFailed(
            "cursor is not valid; use next_cursor from a previous page"
        ) from None


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
