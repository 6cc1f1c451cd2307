"""CSV exports that are safe to open in a spreadsheet: codes, messages.

Spreadsheets evaluate a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a line
break as a formula (OWASP "CSV injection"); a leading apostrophe makes it text. Codes may
start with ``-``, and ``-A1`` is a formula to Excel, so they are escaped too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")

Row = TypeVar("Row")


def safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def chunks(
    header: Sequence[str], pages: Iterable[Sequence[Row]], cells: Callable[[Row], list[str]]
) -> Iterator[str]:
    """CSV text, one chunk per page of rows (``Database.pages`` reads them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for rows in pages:
        writer.writerows(cells(r) for r in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
