"""Tests for the streaming promo-code importer (pure: no database)."""

from __future__ import annotations

import gc
import io
import itertools
import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promocodes.codes.code_text import (
    CodeRun,
    ImportItem,
    InvalidLine,
    ParsedCode,
    invalid_reason,
    normalize,
    safe_display,
)
from promocodes.codes.columns import is_code_name
from promocodes.codes.importer import (
    MAX_LINE_CHARS,
    CodeReader,
    read_text,
)
from promocodes.codes.sniff import SNIFF_BYTES, NotText
from promocodes.errors import ValidationFailed

ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Strippable characters that do not end a line (CR/LF would create new physical lines).
EDGE_CHARS = (
    "\t\x0b\x0c \x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff"
)
ENCODINGS = {
    "utf-8": b"",
    "utf-8-bom": b"\xef\xbb\xbf",
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
}

valid_codes = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
edges = st.text(alphabet=st.sampled_from(EDGE_CHARS), max_size=6)
# Characters a code may not contain and normalisation cannot remove. No NUL: one in the
# first block refuses the whole file (test_a_file_that_is_not_text_…).
bad_chars = st.characters(
    categories=None,
    exclude_categories=["Cs"],
    exclude_characters="".join(ALLOWED) + EDGE_CHARS + "\r\n\x00",
)


def encode(text: str, encoding: str) -> bytes:
    codec = encoding.removesuffix("-bom")
    return ENCODINGS[encoding] + text.encode(codec)


def read_bytes(
    data: bytes, fmt: str | None = None, filename: str | None = None
) -> list[ImportItem]:
    return list(CodeReader(io.BytesIO(data), fmt=fmt, filename=filename))


def summary(items: list[ImportItem]) -> list[tuple[int, str]]:
    return [(i.line, i.code if isinstance(i, ParsedCode) else "!") for i in items]


# --- properties -------------------------------------------------------------------------------


@given(valid_codes, edges, edges)
def test_valid_code_with_noise_round_trips(code: str, left: str, right: str) -> None:
    assert normalize(left + code + right) == code
    assert invalid_reason(code) is None
    assert list(read_text(left + code + right)) == [ParsedCode(1, code, None)]
    for encoding in ENCODINGS:
        data = encode(f"{left}{code}{right}\n", encoding)
        assert read_bytes(data) == [ParsedCode(1, code, None)]


@given(
    st.text(alphabet=sorted(ALLOWED), max_size=10),
    bad_chars,
    st.text(alphabet=sorted(ALLOWED), max_size=10),
    st.lists(valid_codes, min_size=1, max_size=30),
    st.data(),
)
def test_bad_character_is_reported_on_its_line(
    left: str, bad: str, right: str, good: list[str], data: st.DataObject
) -> None:
    value = left + bad + right
    position = data.draw(st.integers(0, len(good)))
    lines = [*good[:position], value, *good[position:]]
    assert invalid_reason(value) is not None
    for items in (read_text("\n".join(lines)), read_bytes("\r\n".join(lines).encode())):
        invalid = [item for item in items if isinstance(item, InvalidLine)]
        assert [item.line for item in invalid] == [position + 1]
        assert invalid[0].reason == invalid_reason(value)


line_kinds = st.one_of(
    valid_codes.map(lambda code: ("valid", code)),
    st.tuples(st.text(alphabet=sorted(ALLOWED), max_size=5), bad_chars).map(
        lambda parts: ("invalid", "".join(parts))
    ),
    edges.map(lambda blank: ("blank", blank)),
)


@given(
    st.lists(st.tuples(line_kinds, edges, edges), max_size=40),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(sorted(ENCODINGS)),
    st.booleans(),
)
def test_line_numbers_for_mixed_lines(
    lines: list[tuple[tuple[str, str], str, str]], eol: str, encoding: str, trailing_eol: bool
) -> None:
    text = eol.join(left + value + right for (_, value), left, right in lines)
    text += eol if trailing_eol else ""
    expected = [
        (number, value if kind == "valid" else "!")
        for number, ((kind, value), _, _) in enumerate(lines, 1)
        if kind != "blank"
    ]
    first = next(((kind, value) for (kind, value), _, _ in lines if kind != "blank"), None)
    if first is not None and first[0] == "valid" and is_code_name(first[1]):
        expected = expected[1:]  # a first line "code" names the column: it is not a code
    assert summary(list(read_text(text))) == expected
    try:
        reader = CodeReader(io.BytesIO(data := encode(text, encoding)))
    except ValidationFailed as exc:
        # Nothing but blank lines: an empty file; control characters alone: not text.
        assert isinstance(exc, NotText) or not any(kind != "blank" for (kind, _), _, _ in lines)
        return
    assert summary(list(reader)) == expected
    assert reader.bytes_read == len(data)


# --- text examples ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"\n", b" \r\n\t\n\xc2\xa0\n\xe2\x80\x8b\n", b"\xef\xbb\xbf"]
)
def test_empty_and_blank_files_are_refused_and_blank_text_gives_nothing(data: bytes) -> None:
    with pytest.raises(ValidationFailed, match=r"^The file is empty: nothing to upload\.$"):
        read_bytes(data)
    assert list(read_text(data.decode("utf-8"))) == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    data = eol.join([b"AAA", b"", b"BBB", b"CCC"])
    assert summary(read_bytes(data)) == [(1, "AAA"), (3, "BBB"), (4, "CCC")]


def test_lone_cr_across_chunks_is_one_line_ending() -> None:
    # CR at the end of a read chunk followed by LF at the start of the next is still one CRLF.
    data = b"A" * 8191 + b"\r\nB\r\rC"
    assert summary(read_bytes(data)) == [(1, "!"), (2, "B"), (4, "C")]


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_bom_encodings(encoding: str) -> None:
    data = encode("\ufeffFIRST\r\nЯ1\r\nSECOND\n", encoding)
    items = read_bytes(data)
    assert summary(items) == [(1, "FIRST"), (2, "!"), (3, "SECOND")]
    assert isinstance(items[1], InvalidLine)
    reason = "invalid character 'Я' (U+042F CYRILLIC CAPITAL LETTER YA) at position 1"
    assert items[1].reason == reason


def test_utf32_bom_is_not_mistaken_for_utf16() -> None:
    data = b"\xff\xfe\x00\x00" + "AB\nCD\n".encode("utf-32-le")
    assert summary(read_bytes(data)) == [(1, "AB"), (2, "CD")]


def test_nul_bytes_past_the_first_block_are_invalid_lines() -> None:
    start = b"GOOD\n" * (SNIFF_BYTES // 5 + 1)  # the first block is clean text
    items = read_bytes(start + b"AB\x00CD\n\x00\n")
    lines = SNIFF_BYTES // 5 + 1
    assert items[lines:] == [
        InvalidLine(lines + 1, "AB\\x00CD", "contains a NUL byte"),
        InvalidLine(lines + 2, "\\x00", "contains a NUL byte"),
    ]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "old Excel workbook"),
        (b"%PDF-1.7\n", "PDF"),
        (b"GOOD\nAB\x00CD\n", "NUL bytes"),
        (bytes(range(128, 256)) * 40, "not letters"),
    ],
)
@pytest.mark.parametrize("fmt", ["text", "csv"])
def test_a_file_that_is_not_text_is_refused_in_one_sentence(
    data: bytes, why: str, fmt: str
) -> None:
    with pytest.raises(NotText) as refused:
        CodeReader(io.BytesIO(data), fmt=fmt)
    said = refused.value.detail
    assert said.startswith("This file is not a text file (") and why in said
    assert said.endswith("save it as CSV or plain text and upload again.")


def test_text_in_another_encoding_or_with_a_bom_is_still_text() -> None:
    assert summary(read_bytes("\ufeffA1\nA2\n".encode("utf-16"))) == [(1, "A1"), (2, "A2")]
    latin = read_bytes("caf\xe9\nA2\n".encode("latin-1"))  # one bad line, not a refusal
    assert summary(latin) == [(1, "!"), (2, "A2")]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("fmt", ["csv", "text"])
def test_separators_are_sniffed_and_the_header_recognised(sep: str, fmt: str) -> None:
    rows = ["valid_until", "code"], ["2031-01-31", "A1"], ["", "A2"], ["2031-02-01", "A3"]
    data = "".join(sep.join(row) + "\r\n" for row in rows).encode()
    items = read_bytes(data, fmt=fmt)
    assert [(i.line, i.code, i.valid_until) for i in items if isinstance(i, ParsedCode)] == [
        (2, "A1", datetime(2031, 1, 31, 23, 59, 59, 999999, UTC)),
        (3, "A2", None),
        (4, "A3", datetime(2031, 2, 1, 23, 59, 59, 999999, UTC)),
    ]
    pasted = list(read_text(data.decode()))
    assert [i.line for i in pasted] == [2, 3, 4]


def test_plain_text_without_a_header_stays_one_code_per_line() -> None:
    # A separator alone does not make a table: "A1,A2" is one bad line, as it always was.
    items = read_bytes(b"A1,A2\nA3\n", fmt="text")
    assert summary(items) == [(1, "!"), (2, "A3")]
    assert summary(list(read_text("codes\nA3"))) == [(1, "codes"), (2, "A3")]


def test_invalid_utf8_line_among_good_ones() -> None:
    # 0x81 is no letter in Windows-1252 either: the file stays UTF-8, its bad bytes shown
    # as replacement characters.
    items = read_bytes(b"ONE\nBAD\xff\x81\nTWO\n\xe2\x82\nTHREE")
    assert items == [
        ParsedCode(1, "ONE", None),
        InvalidLine(2, "BAD\ufffd\ufffd", "not valid UTF-8"),
        ParsedCode(3, "TWO", None),
        InvalidLine(4, "\ufffd\ufffd", "not valid UTF-8"),
        ParsedCode(5, "THREE", None),
    ]


def test_invalid_utf16_is_reported_not_raised() -> None:
    data = b"\xff\xfe" + "OK\n".encode("utf-16-le") + b"\x00\xd8\n\x00" + "NEXT".encode("utf-16-le")
    items = read_bytes(data)
    assert summary(items) == [(1, "OK"), (2, "!"), (3, "NEXT")]
    assert isinstance(items[1], InvalidLine)
    assert items[1].reason == "not valid UTF-16"


def test_zero_width_and_nbsp_around_are_stripped_inside_rejected() -> None:
    text = "\u200b\xa0PROMO1\u2060\ufeff\u3000\nPRO\xa0MO\nPRO\u200bMO\nPRO MO\nPRO\tMO"
    assert list(read_text(text)) == [
        ParsedCode(1, "PROMO1", None),
        InvalidLine(2, "PRO\\xa0MO", "contains a space (U+00A0 NO-BREAK SPACE) at position 4"),
        InvalidLine(3, "PRO\\u200bMO", "contains a space (U+200B ZERO WIDTH SPACE) at position 4"),
        InvalidLine(4, "PRO MO", "contains a space at position 4"),
        InvalidLine(5, "PRO\\tMO", "contains a space (U+0009) at position 4"),
    ]


def test_cyrillic_look_alike() -> None:
    [item] = read_text("PR\u041eMO")
    assert item == InvalidLine(
        1, "PRОMO", "invalid character 'О' (U+041E CYRILLIC CAPITAL LETTER O) at position 3"
    )


def test_formula_injection_and_controls_are_invalid_and_displayed_safely() -> None:
    [formula, control, bidi] = read_text("=cmd|' /C calc'!A0\nAB\x1bC\nAB\u202eC")
    assert formula == InvalidLine(
        1, "=cmd|' /C calc'!A0", "invalid character '=' (U+003D EQUALS SIGN) at position 1"
    )
    assert control == InvalidLine(2, "AB\\x1bC", "invalid character '\\x1b' (U+001B) at position 3")
    assert isinstance(bidi, InvalidLine) and bidi.value == "AB\\u202eC"


def test_length_limits() -> None:
    assert list(read_text("A" * 64)) == [ParsedCode(1, "A" * 64, None)]
    [item] = read_text("B" * 65)
    assert item == InvalidLine(1, "B" * 65, "too long: 65 characters (at most 64)")
    assert invalid_reason("") == "empty code"


def test_safe_display_escapes_and_truncates() -> None:
    assert safe_display("a\x00\u200b\U000e0001b") == "a\\x00\\u200b\\U000e0001b"
    assert safe_display("x" * 80) == "x" * 80
    assert safe_display("x" * 81) == "x" * 80 + "…"
    assert safe_display("\x00" * 30, limit=10) == "\\x00\\x00…"


def test_giant_line_is_reported_with_bounded_memory() -> None:
    data = b"A" * 10_000_000 + b"\nGOOD\n"
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        reader = CodeReader(stream)
        items = list(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    assert items == [
        InvalidLine(1, "A" * 80 + "…", f"line too long (over {MAX_LINE_CHARS} characters)"),
        ParsedCode(2, "GOOD", None),
    ]
    assert reader.bytes_read == len(data)


def test_line_length_boundary() -> None:
    exact = "A" * MAX_LINE_CHARS
    items = list(read_text(f"{exact}\n{exact}A\nOK"))
    assert [type(item) for item in items] == [InvalidLine, InvalidLine, ParsedCode]
    assert isinstance(items[0], InvalidLine) and items[0].reason.startswith("too long")
    assert isinstance(items[1], InvalidLine) and items[1].reason.startswith("line too long")


class Trickle(io.RawIOBase):
    """A non-seekable stream that returns one byte per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1) if size > 0 else size)


def test_short_reads_and_bytes_read() -> None:
    data = "\ufeffAB\r\nCD".encode("utf-16-le")
    reader = CodeReader(Trickle(b"\xff\xfe" + data[2:]))  # type: ignore[arg-type]
    assert summary(list(reader)) == [(1, "AB"), (2, "CD")]
    assert reader.bytes_read == len(data)


def test_stream_is_not_closed() -> None:
    stream = io.BytesIO(b"AB\n")
    assert len(list(CodeReader(stream))) == 1
    gc.collect()  # the internal text wrapper closes what it wraps when collected
    assert not stream.closed


# --- CSV --------------------------------------------------------------------------------------


def test_format_detection() -> None:
    data = b"code,x\nAB,1\n"
    assert summary(read_bytes(data, filename="Upload.CSV")) == [(2, "AB")]
    # A first line naming a known column makes even a .txt file a table.
    assert summary(read_bytes(data, filename="upload.txt")) == [(2, "AB")]
    assert summary(read_bytes(b"A,x\nAB,1\n", filename="upload.txt")) == [(1, "!"), (2, "!")]
    assert summary(read_bytes(data, fmt="csv")) == [(2, "AB")]
    with pytest.raises(ValueError, match="unknown format"):
        CodeReader(io.BytesIO(data), fmt="xlsx")


def test_csv_with_header_and_valid_until() -> None:
    data = (
        "\ufeffNote, Code ,VALID_UNTIL\r\n"
        "a,DATE1,2027-01-31\r\n"
        "b,UTC1,2027-01-31T23:59:59Z\r\n"
        "c,OFFSET1,2027-01-31T10:00:00+02:00\r\n"
        "d,NAIVE1,2027-01-31 10:00\r\n"
        "e,NONE1,\r\n"
        "\r\n"
        "f,BAD1,2027-02-30\r\n"
        "g,BAD2,31-01-2027\r\n"
        "h,BAD3,２０２７-01-31\r\n"
        "i,bad code,2027-02-30\r\n"
        "j,,2027-01-31\r\n"
        "k\r\n"
    ).encode()
    items = read_bytes(data, fmt="csv")
    end_of_day = datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert items[:5] == [
        ParsedCode(2, "DATE1", end_of_day),
        ParsedCode(3, "UTC1", datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ParsedCode(4, "OFFSET1", datetime(2027, 1, 31, 8, 0, tzinfo=UTC)),
        ParsedCode(5, "NAIVE1", datetime(2027, 1, 31, 10, 0, tzinfo=UTC)),
        ParsedCode(6, "NONE1", None),
    ]
    for item in items[:4]:
        assert isinstance(item, ParsedCode) and item.valid_until is not None
        assert item.valid_until.utcoffset() is not None and not item.valid_until.utcoffset()
    invalid = items[5:]
    assert all(isinstance(item, InvalidLine) for item in invalid)
    assert [(item.line, item.value) for item in invalid if isinstance(item, InvalidLine)] == [
        (8, "BAD1"),
        (9, "BAD2"),
        (10, "BAD3"),
        (11, "bad code"),
        (12, "j,,2027-01-31"),
        (13, "k"),
    ]
    reasons = [item.reason for item in invalid if isinstance(item, InvalidLine)]
    assert reasons[0].startswith("invalid valid_until '2027-02-30'")
    assert all("valid_until" in reason for reason in reasons[:3])
    assert reasons[3:] == ["contains a space at position 4", "missing code", "missing code"]


def test_csv_without_header_uses_first_column() -> None:
    data = b"\nAB1,2027-01-31,x\nCD2\n\xd0\x9fX,1\n"
    items = read_bytes(data, fmt="csv")
    assert summary(items) == [(2, "AB1"), (3, "CD2"), (4, "!")]
    # Without a header, a second column of dates is still the codes' own end date.
    end_of_day = datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert isinstance(items[0], ParsedCode) and items[0].valid_until == end_of_day


def test_csv_quoted_fields_and_multiline_records() -> None:
    data = b'code,note\n"AB1","x, y"\n" CD2 ","multi\nline\r\nnote"\n"E""F",z\nGH3\n'
    assert summary(read_bytes(data, fmt="csv")) == [(2, "AB1"), (3, "CD2"), (6, "!"), (7, "GH3")]


def test_csv_line_problems_keep_numbering() -> None:
    # The NUL comes after the first block (a NUL in it refuses the whole file).
    data = b"code\nAB1\nX\x81Y\n" + b"Z" * 20_000 + b"\nC\x00D\nEF2\n"
    items = read_bytes(data, fmt="csv")
    assert summary(items) == [(2, "AB1"), (3, "!"), (4, "!"), (5, "!"), (6, "EF2")]
    reasons = [item.reason for item in items if isinstance(item, InvalidLine)]
    assert reasons == ["not valid UTF-8", reasons[1], "contains a NUL byte"]
    assert reasons[1].startswith("line too long")


def test_csv_error_reports_line_and_continues() -> None:
    # An unterminated quote swallows lines until csv's field size limit trips.
    data = b'code\n"' + b"x" * 9000 + (b"\n" + b"x" * 9000) * 20 + b"\n"
    data += b"after\nGOOD\n"
    items = read_bytes(data, fmt="csv")
    errors = [i for i in items if isinstance(i, InvalidLine) and "malformed CSV" in i.reason]
    assert len(errors) == 1 and "record started at line 2" in errors[0].reason
    assert items[-2:] == [ParsedCode(23, "after", None), ParsedCode(24, "GOOD", None)]
    assert [item.line for item in items] == sorted(item.line for item in items)


def test_csv_bytes_read_matches_stream_length() -> None:
    data = encode("code,valid_until\r\nAB,2027-01-31\r\n", "utf-16-le")
    reader = CodeReader(io.BytesIO(data), filename="x.csv")
    assert summary(list(reader)) == [(2, "AB")]
    assert reader.bytes_read == len(data)


def _line_by_line(text: str) -> list[ImportItem]:
    """The rules of SPEC §1 applied one physical line at a time: the reference."""
    items: list[ImportItem] = []
    for number, raw in enumerate(io.StringIO(text, newline=None).readlines(), 1):
        line = raw.removesuffix("\n")
        if len(line) > MAX_LINE_CHARS:
            reason = f"line too long (over {MAX_LINE_CHARS} characters)"
            items.append(InvalidLine(number, safe_display(normalize(line)), reason))
        elif code := normalize(line):
            why = invalid_reason(code)
            items.append(
                ParsedCode(number, code, None)
                if why is None
                else InvalidLine(number, safe_display(code), why)
            )
    return items


_LINES = st.one_of(
    st.text(alphabet="ABCxyz019_-", min_size=1, max_size=70),
    # No NUL: one in the first block refuses the file (test_a_file_that_is_not_text_…).
    st.sampled_from(
        ["", " ", "\t", "A B", "Ä", "\u200bCODE1", "A\x7fB", "A" * (MAX_LINE_CHARS + 3)]
    ),
)


@given(
    lines=st.lists(_LINES, max_size=40),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    last_newline=st.booleans(),
    block=st.integers(min_value=1, max_value=64),
)
def test_block_reading_gives_the_same_items_as_line_by_line(
    lines: list[str], ending: str, last_newline: bool, block: int
) -> None:
    text = ending.join(lines) + (ending if last_newline and lines else "")
    if not normalize(text):
        with pytest.raises(ValidationFailed, match="The file is empty"):
            CodeReader(io.BytesIO(text.encode()), block_chars=block)
        return
    reader = CodeReader(io.BytesIO(text.encode()), block_chars=block)
    assert list(reader) == _line_by_line(text)


def test_a_long_last_line_without_a_terminator_is_a_long_line() -> None:
    long = "x" * (MAX_LINE_CHARS + 5)
    reason = f"line too long (over {MAX_LINE_CHARS} characters)"
    for text in (f"a\n{long}", f"a\n{long}\n"):
        items = list(CodeReader(io.BytesIO(text.encode()), block_chars=100_000))
        assert items[1] == InvalidLine(2, "x" * 80 + "…", reason), text


def test_clean_blocks_come_out_as_runs() -> None:
    text = "".join(f"CODE{i:05d}\n" for i in range(1_000))
    pieces = list(CodeReader(io.BytesIO(text.encode()), block_chars=1_000).pieces())
    assert all(isinstance(piece, CodeRun) for piece in pieces)
    runs = [piece for piece in pieces if isinstance(piece, CodeRun)]
    assert [code for run in runs for code in run.codes] == [f"CODE{i:05d}" for i in range(1_000)]
    # Each run starts on the line after the previous one ended.
    starts = itertools.accumulate([1] + [len(run.codes) for run in runs[:-1]])
    assert [run.first_line for run in runs] == list(starts)
