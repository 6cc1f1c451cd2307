"""Parsing a file of redemptions (a shop's or a till's export). Pure: no database, and
no I/O beyond the given stream, read line by line with bounded memory.

Three shapes, told apart by the first line that is not blank:
- JSON lines: one object a line, ``{"code": …, "order_id": …, "redeemed_at": …,
  "customer_id": …}``;
- CSV with a header naming its columns (``code`` required; ``order_id``,
  ``redeemed_at``, ``customer_id`` optional; others ignored), or without one, in the
  order ``code,order_id,redeemed_at,customer_id``;
- plain text, one code a line (the order id then comes from the caller).

A file that is not text (a workbook, a PDF, NUL bytes) or is empty is refused up front
by the check code uploads pass (``sniff.read_head``), in one sentence; it is read in the
encoding that check finds. A line that cannot be read becomes a ``BadLine`` with its
reason in words a marketer reads; reading goes on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, BinaryIO

from promocodes.codes import sniff
from promocodes.codes.code_text import MAX_CODE_LENGTH, invalid_reason, normalize, safe_display
from promocodes.customers.schemas import check_customer_id

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# A line of a redemption file is a code, an order id, a date and a customer id: far
# below this. Longer lines are refused unread (their rest is skipped piece by piece).
MAX_LINE_CHARS = 2_000
# The largest redemption file accepted (413 in the API, an error in the CLI): about a
# million and a half lines of a shop's export.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ID_CHARS = 200
COLUMNS = ("code", "order_id", "redeemed_at", "customer_id")


@dataclass(frozen=True, slots=True)
class RedeemLine:
    line: int
    code: str
    order_id: str | None
    redeemed_at: datetime | None
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    value: str  # a safe display of what the line held
    reason: str


Item = RedeemLine | BadLine


# A redemption's time is a moment that happened: not before any code here could exist
# (a plain floor; year 1 was taken and, stored, broke reads of the group), and not
# later than now but for a till's clock running a little fast.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def _read_time(value: str) -> datetime | None:
    """An ISO 8601 date-time (UTC when it names no zone) or a bare date (its midnight,
    UTC), still in its own zone; None when it is neither."""
    if not value.isascii():
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def redemption_time(value: str, now: datetime) -> datetime | str:
    """A line's ``redeemed_at`` in UTC, or why it is refused, in words."""
    read = _read_time(value)
    if read is None:
        return "expected e.g. 2027-01-31T18:30:00Z"
    before = f"before {EARLIEST.year}, earlier than any code redeemed here"
    future = "in the future: a redemption file records redemptions already made"
    try:
        moment = read.astimezone(UTC)
    except OverflowError:  # past the year 9999 in UTC, or before the year 1
        return future if read.year > EARLIEST.year else before
    if moment < EARLIEST:
        return before
    return future if moment > now + CLOCK_SKEW else moment


def _identifier(value: str | None, what: str) -> tuple[str | None, str | None]:
    """(cleaned value or None, problem or None) for an order or customer id."""
    if value is None:
        return None, None
    value = normalize(value)
    if not value:
        return None, None
    if len(value) > MAX_ID_CHARS:
        return None, f"bad line: {what} longer than {MAX_ID_CHARS} characters"
    if not value.isprintable():
        return None, f"bad line: {what} contains a control character"
    return value, None


def _customer_problem(customer_id: str) -> str | None:
    """The API's rule of customer ids, said as a line's problem."""
    try:
        check_customer_id(customer_id)
    except ValueError as exc:
        return f"bad line: customer id {exc}"
    return None


def item_of(line: int, fields: dict[str, str | None]) -> Item:
    """One line's fields (by column name) as a redemption, or why not."""
    code = normalize(fields.get("code") or "")
    if not code:
        return BadLine(line, "", "bad line: no code")
    reason = invalid_reason(code)
    if reason is not None:
        return BadLine(line, safe_display(code), f"bad line: not a code ({reason})")
    order_id, problem = _identifier(fields.get("order_id"), "order id")
    customer_id, other = _identifier(fields.get("customer_id"), "customer id")
    if customer_id is not None and other is None:
        other = _customer_problem(customer_id)
    if problem or other:
        return BadLine(line, code, str(problem or other))
    raw_time = normalize(fields.get("redeemed_at") or "")
    redeemed_at = redemption_time(raw_time, datetime.now(UTC)) if raw_time else None
    if isinstance(redeemed_at, str):
        return BadLine(line, code, f"bad date '{safe_display(raw_time, 40)}': {redeemed_at}")
    return RedeemLine(line, code, order_id, redeemed_at, customer_id)


def _json_item(line: int, text: str) -> Item:
    try:
        value = json.loads(text)
    except ValueError:
        return BadLine(line, safe_display(text), "bad line: not JSON")
    if not isinstance(value, dict):
        return BadLine(line, safe_display(text), "bad line: not a JSON object")
    unknown = sorted(set(value) - set(COLUMNS))
    if unknown:  # a misspelt order_id would otherwise redeem without its order
        names = ", ".join(safe_display(str(k), 40) for k in unknown[:3])
        return BadLine(
            line, safe_display(text), f"bad line: unknown key {names} (known: {', '.join(COLUMNS)})"
        )
    fields: dict[str, str | None] = {}
    for name in COLUMNS:
        cell = value.get(name)
        if cell is not None and not isinstance(cell, str):
            return BadLine(line, safe_display(text), f"bad line: {name} is not text")
        fields[name] = cell
    return item_of(line, fields)


# The line nearly every shop's export is made of, ``code,order_id`` and empty columns after
# them, in words nothing needs cleaning: a valid code and an order id of printable ASCII
# without spaces, quotes or commas. One match says what ``item_of`` would have found, at a
# fraction of its cost; any other line takes the general way.
_PLAIN_LINE = re.compile(
    rf"([A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}),([!#-+\--~]{{1,{MAX_ID_CHARS}}}),*"
)


def _plain(columns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None] | None:
    """The plain line's matcher when the columns start with code and order id (and name
    neither again: a later column of the same name would win), else None."""
    if columns[:2] != ("code", "order_id") or {"code", "order_id"} & set(columns[2:]):
        return None
    return _PLAIN_LINE.fullmatch


def _cells(text: str) -> list[str]:
    # Most lines have no quotes: a split is far cheaper than a csv reader per line.
    return text.split(",") if '"' not in text else next(csv.reader([text]), [])


class RedemptionReader:
    """Iterates the items of a redemption file; never reads it whole. Iterate once.
    A file that is not text or is empty is refused here (``NotText``, ``ValidationFailed``),
    before anything of it is redeemed."""

    bytes_read: int  # consumed so far (for progress bars)

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        head = sniff.read_head(stream, nothing_to="redeem")
        self._head, self._encoding, self.bytes_read = head.data, head.encoding, head.size
        self.shape: str | None = None  # "json", "csv" or "text" once the first line is read
        if head.size < sniff.SNIFF_BYTES:  # the head is the whole file
            _refuse_header_only(head.data.decode(head.encoding, errors="replace"))

    def _lines(self) -> Iterator[tuple[int, str, bool]]:
        """(number, text, too long) of each physical line."""
        raw = _Counting(self._stream, self, self._head)
        text = io.TextIOWrapper(
            io.BufferedReader(raw), encoding=self._encoding, errors="replace", newline=None
        )
        number = 0
        while chunk := text.readline(MAX_LINE_CHARS + 1):
            number += 1
            if chunk.endswith("\n"):
                yield number, chunk[:-1], False
                continue
            too_long = len(chunk) > MAX_LINE_CHARS
            while too_long and (rest := text.readline(64 * 1024)) and not rest.endswith("\n"):
                pass
            yield number, chunk[:MAX_LINE_CHARS], too_long

    def __iter__(self) -> Iterator[Item]:
        columns: tuple[str, ...] = COLUMNS
        plain = None
        for number, text, too_long in self._lines():
            if plain is not None and not too_long and (match := plain(text)) is not None:
                yield RedeemLine(number, match[1], match[2], None, None)
                continue
            if too_long:
                yield BadLine(
                    number, safe_display(text), f"bad line: over {MAX_LINE_CHARS} characters"
                )
                continue
            stripped = normalize(text)
            if not stripped:
                continue
            if self.shape is None:
                self.shape, header = _shape_of(stripped)
                columns = header or columns
                plain = _plain(columns) if self.shape == "csv" else None
                if header is not None:
                    continue
            if self.shape == "json":
                yield _json_item(number, stripped)
            elif self.shape == "csv":
                yield item_of(number, dict(zip(columns, _cells(stripped), strict=False)))
            else:
                yield item_of(number, {"code": stripped})


def _refuse_header_only(whole: str) -> None:
    """A file whose first line is a CSV header with no redemption below it is refused
    up front, by the rule code uploads follow (a report of zeros said nothing)."""
    first = next((normalize(line) for line in whole.splitlines() if normalize(line)), "")
    header = _shape_of(first)[1] is not None
    sniff.refuse_header_only(whole, header=header, nothing_to="redeem")


def _shape_of(first: str) -> tuple[str, tuple[str, ...] | None]:
    """The file's shape from its first line, and its CSV header when it is one."""
    if first.startswith("{"):
        return "json", None
    names = tuple(normalize(cell).lower() for cell in _cells(first))
    if "code" in names:
        return "csv", names
    return ("csv" if len(names) > 1 else "text"), None


class _Counting(io.RawIOBase):
    """A raw view of the stream, its first block (read by the sniffing, its byte order
    mark removed) given first, that counts the bytes read after it (for progress)."""

    def __init__(self, stream: BinaryIO, owner: RedemptionReader, head: bytes) -> None:
        super().__init__()
        self._stream, self._owner, self._head = stream, owner, head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
            view[: len(data)] = data
            return len(data)
        data = self._stream.read(len(view)) or b""
        self._owner.bytes_read += len(data)
        view[: len(data)] = data
        return len(data)
