"""Streaming parser for uploaded promo codes: pasted text, ``.txt``, ``.csv`` and JSON.

Pure: no database and no I/O beyond the given stream. A bad line never aborts an upload;
it becomes an :class:`InvalidLine` with a human reason, and parsing continues.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from promocodes.codes import columns, sniff
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
    """Show undecodable bytes as the replacement character (the rest of the line stays
    readable, as a text editor shows it) and say why the line is invalid."""
    if encoding is not None and _BAD_BYTE.search(line):
        line = _BAD_BYTE.sub("\ufffd", line)
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
            f"invalid valid_until '{safe_display(until_raw, 40)}': expected a date like "
            "2027-01-31 (YYYY-MM-DD; 31.01.2027 and 31/01/2027 are read day first) or a "
            "datetime like 2027-01-31T23:59:59Z",
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
            if code_col is None and any(cells):
                # Only the first non-blank row may be a header.
                layout = columns.of_first_row(cells)
                code_col, until_col = layout.code, layout.until
                if not layout.header:
                    pending.append(_csv_row(start, cells, code_col, until_col, sep))
            elif any(cells):
                pending.append(_csv_row(start, cells, code_col or 0, until_col, sep))
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
    """An uploaded file's format: ``csv`` when it is named ``*.csv`` or ``*.tsv`` or sent
    as ``text/csv`` or ``text/tab-separated-values``, ``json`` (``{"codes": [...]}``)
    when named ``*.json`` or sent as ``application/json``, else ``text`` (one code per
    line)."""
    name, kind = (filename or "").lower(), content_type or ""
    if name.endswith((".csv", ".tsv")) or kind.startswith(("text/csv", "text/tab-separated")):
        return "csv"
    if name.endswith(".json") or kind.startswith("application/json"):
        return "json"
    return "text"


class Reader(ABC):
    """Items of an upload, once; ``warnings`` are what the report says of the whole
    file (a column not read, the encoding it was read in)."""

    warnings: list[str]

    def __iter__(self) -> Iterator[ImportItem]:
        return expand(self.pieces())

    @abstractmethod
    def pieces(self) -> Iterator[Piece]:
        """The upload as runs of valid codes and single items (``expand`` flattens them)."""


class CodeReader(Reader):
    """Iterates ImportItems from a binary stream; never reads it whole. Iterate once.
    A file that cannot be read (not text, empty, a header without a code column) is
    refused here, before anything of it is recorded."""

    bytes_read: int  # bytes consumed so far (for progress bars)

    def __init__(
        self,
        stream: BinaryIO,
        *,
        fmt: str | None = None,
        filename: str | None = None,
        charset: str | None = None,
        block_chars: int = BLOCK_CHARS,
    ) -> None:
        if fmt is None:
            fmt = format_of(filename, None)
        if fmt not in ("text", "csv"):
            raise ValueError(f"unknown format {fmt!r} (expected 'text' or 'csv')")
        self._block_chars = block_chars
        self._stream = stream
        head = sniff.read_head(stream, charset)
        self._head, self.bytes_read = head.data, head.size
        self._encoding, self._label = head.encoding, head.label
        start = codecs.getincrementaldecoder(self._encoding)(errors="replace").decode(head.data)
        self._layout = _layout(fmt, sniff.first_lines(start))
        if head.size < sniff.SNIFF_BYTES:  # the head is the whole file
            sniff.refuse_header_only(start, header=self._layout.header)
        self.warnings = list(self._layout.warnings)
        if head.guessed:
            self.warnings.append("read as Windows-1252: the file is not UTF-8")

    def pieces(self) -> Iterator[Piece]:
        """The items, with runs of clean plain-text lines kept together (the fast path)."""
        # Universal newlines give CRLF, LF and lone CR for free; bad bytes are marked, not fatal.
        buffered = io.BufferedReader(_Source(self._stream, self._head, self))
        encoding, label = self._encoding, self._label
        text = io.TextIOWrapper(buffered, encoding=encoding, errors=_MARK_ERRORS, newline=None)
        yield from self._layout.pieces(text, label, self._block_chars)


class PastedText(Reader):
    """Items of pasted text; same rules and line numbering as a .txt upload."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._layout = _layout("text", sniff.first_lines(text[: sniff.SNIFF_BYTES]))
        if len(text) <= sniff.SNIFF_BYTES:
            sniff.refuse_header_only(text, header=self._layout.header, what="pasted text")
        self.warnings = list(self._layout.warnings)

    def pieces(self) -> Iterator[Piece]:
        stream = io.StringIO(self._text, newline=None)
        yield from self._layout.pieces(stream, None, BLOCK_CHARS)


def read_text(text: str) -> PastedText:
    """Items from pasted text (refused now if its header has no code column)."""
    return PastedText(text)


@dataclass(frozen=True, slots=True)
class _Layout:
    fmt: str  # "csv" or "text"
    sep: str
    skip: bool = False  # plain text whose first line is a header (``code``)
    header: bool = False  # its first line names columns (skip, or a table's header)
    warnings: list[str] = field(default_factory=list)

    def pieces(self, text: io.TextIOBase, label: str | None, block_chars: int) -> Iterator[Piece]:
        if self.fmt == "csv":
            return _csv_items(_scan(text, label), self.sep)
        pieces = _text_pieces(text, label, block_chars)
        return _without_first(pieces) if self.skip else pieces


def _layout(fmt: str, lines: list[str]) -> _Layout:
    """How to read a file from its first lines: a CSV's separator is sniffed, and its
    columns found from its first row (refused now when a header has no code column);
    plain text whose first line is a header (``code``, ``code;valid_until``) is read
    without it, as that table."""
    sep = sniff.separator(lines)
    row = _first_row([normalize(lines[0])] if fmt == "text" and lines else lines, sep)
    if fmt == "text":
        # One code a line, unless the first line names known columns (not just any
        # line with a comma: a pasted sentence is a line to report, not a header).
        if row is None or not (columns.looks_like_header(row) and columns.names_a_column(row)):
            return _Layout("text", sep)
        if len(row) == 1:
            return _Layout("text", sep, skip=True, header=True)
    if row is None:
        return _Layout("csv", sep)
    found = columns.of_first_row(row)
    return _Layout("csv", sep, header=found.header, warnings=found.warnings)


def _first_row(lines: list[str], sep: str) -> list[str] | None:
    try:
        for row in csv.reader(lines, delimiter=sep):
            if any(cells := [normalize(cell) for cell in row]):
                return cells
    except csv.Error:  # a malformed first line is reported as such when read
        pass
    return None


def _without_first(pieces: Iterator[Piece]) -> Iterator[Piece]:
    """Plain-text pieces without the first non-blank line (the header)."""
    first = next(pieces, None)
    if isinstance(first, CodeRun) and len(first.codes) > 1:
        yield CodeRun(first.first_line + 1, first.codes[1:])
    yield from pieces
