"""How the web UI writes values in its pages: template macros for a group, times, numbers
(Jinja filters and globals; ``web/kit`` registers them)."""

from __future__ import annotations

from datetime import UTC, datetime


def macro(kind: str, group_name: str) -> str:
    """The template macro for a group, its name as a Jinja single-quoted literal:
    backslash and apostrophe escaped (SPEC §2: an apostrophe is written ``\\'``)."""
    literal = group_name.replace("\\", "\\\\").replace("'", "\\'")
    return "{{client.%s('%s')}}" % (kind, literal)  # noqa: UP031 - braces are literal


def fmt_dt(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def fmt_input_dt(value: datetime | None) -> str:
    """The value of a ``datetime-local`` input (UTC, to the second)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def fmt_num(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""
