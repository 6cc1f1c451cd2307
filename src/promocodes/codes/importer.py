"""Streaming parser for uploaded promo codes: pasted text, ``.txt``, ``.csv`` and JSON.

Pure: no database and no I/O beyond the given stream. A bad line never aborts an upload;
it becomes an :class:`InvalidLine` with a human reason, and parsing continues.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import ijson

from promocodes.codes import sniff
from promocodes.codes.code_text import (
    MAX_CODE_LENGTH,
    CodeRun,
    ImportItem,
    InvalidLine,
    ParsedCode,
    Piece,
    check,
    invalid_reason,
    normalize,
    parse_until,
    safe_display,
)
from promocodes.errors import ValidationFailed

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_LINE_CHARS = 10_000
_DRAIN_CHARS = 64 * 1024
# Plain-text uploads are decoded in blocks this size. A block of nothing but valid codes,
# one per line, is taken as a whole by one regular expression (the common case: a file
# exported by a loyalty platform); any other block is read line by line. Measured on 1M
# codes: ~0.7 µs a line instead of ~4 µs line by line.
BLOCK_CHARS = 256 * 1024

_VALID_LINES = re.compile(rf"(?:[A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}\n)+")
_BAD_BYTE = re.compile("[\udc00-\udcff]")
# UTF-32 LE must be tried before UTF-16 LE: its BOM starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# (line number, text without terminator, line-level problem)
_Line = tuple[int, str, str | None]
_MARK_ERRORS = "promocodes.importer.mark"


def _mark_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    # Like "surrogateescape" but also for bytes < 0x80 (which UTF-16/32 can reject, where
    # surrogateescape would raise). Valid UTF-8/16/32 never decodes to a lone surrogate, so a
    # U+DCxx in a decoded line reliably flags that line as undecodable without stopping the stream.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_MARK_ERRORS, _mark_bad_bytes)


_TOO_LONG = f"line too long (over {MAX_LINE_CHARS} characters)"


def _scan(text: io.TextIOBase, encoding: str | None) -> Iterator[_Line]:
    """Physical lines of a universal-newline text stream, with bounded memory per line."""
    number = 0
    while chunk := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        problem = None
        if chunk.endswith("\n"):
            chunk = chunk[:-1]
        elif len(chunk) > MAX_LINE_CHARS:
            problem = _TOO_LONG
            # Discard the rest piece by piece: a giant line must never be held whole.
            while (rest := text.readline(_DRAIN_CHARS)) and not rest.endswith("\n"):
                pass
        chunk, problem = _marked(chunk, encoding, problem)
        yield number, chunk, problem


def _line_item(number: int, line: str, problem: str | None) -> ImportItem | None:
    """One plain-text line (terminator removed); None for a blank line."""
    code = normalize(line)
    if problem is not None:
        return InvalidLine(number, safe_display(code), problem)
    return check(number, code) if code else None


def _marked(line: str, encoding: str | None, problem: str | None) -> tuple[str, str | None]:
    """Show undecodable bytes as ``\\xNN`` and say why the line is invalid."""
    if encoding is not None and _BAD_BYTE.search(line):
        line = _BAD_BYTE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", line)
        problem = problem or f"not valid {encoding}"
    return line, problem


def _text_pieces(
    text: io.TextIOBase, encoding: str | None, block_chars: int = BLOCK_CHARS
) -> Iterator[Piece]:
    """Plain-text lines of a universal-newline stream, read in bounded blocks.

    Same items and line numbers as reading line by line; a block made only of valid
    codes comes out as one :class:`CodeRun`, so a large clean file costs a regular
    expression and a ``split`` per block rather than Python work per line.
    """
    number = 0  # lines before ``rest``
    rest = ""  # the unterminated start of the next line
    draining = False  # inside a line already reported as too long
    while block := text.read(block_chars):
        if draining:
            end = block.find("\n")
            if end < 0:
                continue
            block, draining = block[end + 1 :], False
        data = rest + block
        end = data.rfind("\n")
        if end < 0:
            if len(data) > MAX_LINE_CHARS:
                number += 1
                line, problem = _marked(data[: MAX_LINE_CHARS + 1], encoding, _TOO_LONG)
                yield InvalidLine(number, safe_display(normalize(line)), problem or _TOO_LONG)
                rest, draining = "", True
            else:
                rest = data
            continue
        complete, rest = data[: end + 1], data[end + 1 :]
        if _VALID_LINES.fullmatch(complete):
            codes = complete[:-1].split("\n")
            yield CodeRun(number + 1, codes)
            number += len(codes)
            continue
        for line in complete[:-1].split("\n"):
            number += 1
            problem = None
            if len(line) > MAX_LINE_CHARS:
                line, problem = line[: MAX_LINE_CHARS + 1], _TOO_LONG
            line, problem = _marked(line, encoding, problem)
            if (item := _line_item(number, line, problem)) is not None:
                yield item
    if rest:  # the last line, without a terminator: the same rules as any other
        problem = None
        if len(rest) > MAX_LINE_CHARS:
            rest, problem = rest[: MAX_LINE_CHARS + 1], _TOO_LONG
        line, problem = _marked(rest, encoding, problem)
        if (item := _line_item(number + 1, line, problem)) is not None:
            yield item


def expand(pieces: Iterable[Piece]) -> Iterator[ImportItem]:
    """Pieces as one item per line, for callers that want nothing but ImportItems."""
    for piece in pieces:
        if isinstance(piece, CodeRun):
            for offset, code in enumerate(piece.codes):
                yield ParsedCode(piece.first_line + offset, code, None)
        else:
            yield piece


def _csv_row(
    number: int, cells: list[str], code_col: int, until_col: int | None, sep: str
) -> ImportItem:
    code = cells[code_col] if code_col < len(cells) else ""
    if not code:
        return InvalidLine(number, safe_display(sep.join(cells)), "missing code")
    until_raw = cells[until_col] if until_col is not None and until_col < len(cells) else ""
    until = parse_until(until_raw) if until_raw else None
    if until_raw and until is None and invalid_reason(code) is None:
        return InvalidLine(
            number,
            safe_display(code),
            f"invalid valid_until '{safe_display(until_raw, 40)}': expected an ISO 8601 date "
            "like 2027-01-31 or datetime like 2027-01-31T23:59:59Z",
        )
    return check(number, code, until)


def _csv_items(lines: Iterable[_Line], sep: str = ",") -> Iterator[ImportItem]:
    """Rows of a table whose columns are separated by ``sep`` (``,`` ``;`` or tab)."""
    pending: list[ImportItem] = []  # line-level problems found while csv pulls lines
    last = ""

    def feed() -> Iterator[str]:
        nonlocal last
        for number, line, problem in lines:
            if problem is None and "\x00" in line:
                problem = "contains a NUL byte"  # csv rejects NUL before 3.13; report it our way
            if problem is not None:
                pending.append(InvalidLine(number, safe_display(normalize(line)), problem))
                line = ""  # an empty stand-in keeps csv.line_num equal to the physical line
            last = line
            yield line + "\n"

    reader = csv.reader(feed(), delimiter=sep)
    code_col: int | None = None
    until_col: int | None = None
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader resets itself and resumes at the next line
            where = f" (record started at line {start})" if start < reader.line_num else ""
            reason = f"malformed CSV: {exc}{where}"
            pending.append(InvalidLine(reader.line_num, safe_display(normalize(last)), reason))
        else:
            cells = [normalize(cell) for cell in row]
            # Only the first non-blank row may be a header.
            if code_col is None and "code" in (names := [cell.lower() for cell in cells]):
                code_col = names.index("code")
                until_col = names.index("valid_until") if "valid_until" in names else None
            elif any(cells):
                code_col = code_col or 0  # no header: the first column is the code
                pending.append(_csv_row(start, cells, code_col, until_col, sep))
        pending.sort(key=lambda item: item.line)  # stable; keeps output in line order
        yield from pending
        pending.clear()
        start = reader.line_num + 1


class _Source(io.RawIOBase):
    """Raw view of the upload that replays the sniffed head bytes and counts what it reads."""

    def __init__(self, stream: BinaryIO, head: bytes, owner: CodeReader) -> None:
        super().__init__()
        self._stream, self._head, self._owner = stream, head, owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
        else:
            data = self._stream.read(len(view)) or b""
            self._owner.bytes_read += len(data)
        view[: len(data)] = data
        return len(data)


def format_of(filename: str | None, content_type: str | None) -> str:
    """An uploaded file's format: ``csv`` when it is named ``*.csv`` or sent as
    ``text/csv``, ``json`` (``{"codes": [...]}``) when named ``*.json`` or sent as
    ``application/json``, else ``text`` (one code per line)."""
    name, kind = (filename or "").lower(), content_type or ""
    if name.endswith(".csv") or kind.startswith("text/csv"):
        return "csv"
    if name.endswith(".json") or kind.startswith("application/json"):
        return "json"
    return "text"


def read_head(stream: BinaryIO) -> tuple[bytes, int, str, str]:
    """The first block of a file without its byte order mark, the bytes read, the codec
    and its name. Raises ``NotText`` when the file is not text: it is refused before
    anything of it is read further or recorded."""
    head = b""
    while len(head) < sniff.SNIFF_BYTES and (more := stream.read(sniff.SNIFF_BYTES - len(head))):
        head += more  # raw streams may return short reads
    size, encoding, label = len(head), "utf-8", "UTF-8"
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            head, encoding, label = head[len(bom) :], codec, name
            break
    sniff.refuse_binary(head, encoding)
    return head, size, encoding, label


class CodeReader:
    """Iterates ImportItems from a binary stream; never reads it whole. Iterate once."""

    bytes_read: int  # bytes consumed so far (for progress bars)

    def __init__(
        self,
        stream: BinaryIO,
        *,
        fmt: str | None = None,
        filename: str | None = None,
        block_chars: int = BLOCK_CHARS,
    ) -> None:
        if fmt is None:
            fmt = format_of(filename, None)
        if fmt not in ("text", "csv"):
            raise ValueError(f"unknown format {fmt!r} (expected 'text' or 'csv')")
        self._block_chars = block_chars
        self._stream = stream
        head, self.bytes_read, self._encoding, self._label = read_head(stream)
        self._head = head
        start = codecs.getincrementaldecoder(self._encoding)(errors="replace").decode(head)
        self._fmt, self._sep = _layout(fmt, sniff.first_lines(start))

    def __iter__(self) -> Iterator[ImportItem]:
        return expand(self.pieces())

    def pieces(self) -> Iterator[Piece]:
        """The items, with runs of clean plain-text lines kept together (the fast path)."""
        # Universal newlines give CRLF, LF and lone CR for free; bad bytes are marked, not fatal.
        buffered = io.BufferedReader(_Source(self._stream, self._head, self))
        encoding, label = self._encoding, self._label
        text = io.TextIOWrapper(buffered, encoding=encoding, errors=_MARK_ERRORS, newline=None)
        if self._fmt == "csv":
            yield from _csv_items(_scan(text, label), self._sep)
        else:
            yield from _text_pieces(text, label, self._block_chars)


def _layout(fmt: str, lines: list[str]) -> tuple[str, str]:
    """The format and separator to read with: a CSV's separator is sniffed from its first
    lines; a plain-text file whose first line is a header (``code;valid_until``) is
    read as that table."""
    sep = sniff.separator(lines)
    if fmt == "text" and not (lines and sniff.is_header(lines[0], sep)):
        return fmt, sep
    return "csv", sep


def read_text(text: str) -> Iterator[ImportItem]:
    """Items from pasted text; same rules and line numbering as a .txt upload."""
    fmt, sep = _layout("text", sniff.first_lines(text[: sniff.SNIFF_BYTES]))
    stream = io.StringIO(text, newline=None)
    if fmt == "csv":
        return _csv_items(_scan(stream, None), sep)
    return expand(_text_pieces(stream, None))


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
    A body that is not that shape raises ``ValidationFailed`` where it goes wrong."""
    return read_list(_json_codes(stream))


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
