"""Header rows, encodings and dates of uploaded files, as a marketer's spreadsheet
writes them (pure: no database)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from promocodes.codes.code_text import ImportItem, InvalidLine, ParsedCode
from promocodes.codes.columns import UnknownColumns
from promocodes.codes.importer import CodeReader, format_of, read_text
from promocodes.codes.sniff import charset_of
from promocodes.errors import ValidationFailed

END_OF_JAN = datetime(2030, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)


def read(data: bytes, fmt: str = "csv", charset: str | None = None) -> CodeReader:
    return CodeReader(io.BytesIO(data), fmt=fmt, charset=charset)


@pytest.mark.parametrize(
    "header",
    [
        "promo;expiry",
        "Code;Valid until",
        "code;expires",
        "Promo Code;Expiration Date",
        "COUPON;valid_until",
        "voucher;Expires-At",
        "promocode;End date",
        "coupon_code;valid till",
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "text"])
def test_header_synonyms_name_the_code_and_date_columns(header: str, fmt: str) -> None:
    reader = read(f"{header}\nPR-1;2030-01-31\n".encode(), fmt)
    assert list(reader) == [ParsedCode(2, "PR-1", END_OF_JAN)]
    assert reader.warnings == []
    assert list(read_text(f"{header}\nPR-1;2030-01-31")) == [ParsedCode(2, "PR-1", END_OF_JAN)]


@pytest.mark.parametrize("first", ["code", "Code", "promo code", "PROMO-CODE", "Coupon"])
@pytest.mark.parametrize("fmt", ["csv", "text"])
def test_a_first_line_naming_the_code_column_is_never_a_code(first: str, fmt: str) -> None:
    expected: list[ImportItem] = [ParsedCode(2, "AB1", None), ParsedCode(3, "CD2", None)]
    assert list(read(f"{first}\nAB1\nCD2\n".encode(), fmt)) == expected
    assert list(read_text(f"\n{first}\r\nAB1\nCD2")) == [
        ParsedCode(3, "AB1", None),
        ParsedCode(4, "CD2", None),
    ]
    # Only the first line: "code" further down is a code like any other.
    assert next(iter(read_text(f"AB1\n{first}"))) == ParsedCode(1, "AB1", None)


def test_an_unknown_header_without_a_code_column_is_refused_naming_its_columns() -> None:
    for data in (b"name;Note\nPR-1;x\n", b"Label,When\nPR-1,2030-01-31\n"):
        with pytest.raises(UnknownColumns) as caught:
            read(data)
        message = caught.value.detail
        assert message.count(".") == 1 and message.endswith(".")
        assert "'name', 'Note'" in message or "'Label', 'When'" in message
        assert "'code'" in message
    # Pasted, the same line names no known column: it is a line to report, never a code.
    assert [type(item) for item in read_text("name;Note\nPR-1;x")] == [InvalidLine] * 2


def test_a_column_that_is_not_read_is_a_warning() -> None:
    reader = read(b"Note;Code;Valid until\nhi;PR-1;31.01.2030\n")
    assert list(reader) == [ParsedCode(2, "PR-1", END_OF_JAN)]
    assert reader.warnings == ["column 'Note' is not read"]
    headless = read(b"PR-1;2030-01-31;hello\n")
    assert list(headless) == [ParsedCode(1, "PR-1", END_OF_JAN)]
    assert headless.warnings == ["column 3 is not read"]


def test_rows_without_a_header_keep_their_dates() -> None:
    items = list(read(b"PR-1;2030-01-31\nPR-2;31/01/2030\nPR-3;\n"))
    assert items == [
        ParsedCode(1, "PR-1", END_OF_JAN),
        ParsedCode(2, "PR-2", END_OF_JAN),
        ParsedCode(3, "PR-3", None),
    ]


def test_day_first_dates_are_read_and_a_wrong_date_shows_the_expected_format() -> None:
    items = list(read(b"code;valid_until\nA;31.01.2030\nB;31/01/2030\nC;1.2.2030\nD;31.13.2030\n"))
    assert items[:3] == [
        ParsedCode(2, "A", END_OF_JAN),
        ParsedCode(3, "B", END_OF_JAN),
        ParsedCode(4, "C", datetime(2030, 2, 1, 23, 59, 59, 999999, tzinfo=UTC)),
    ]
    assert isinstance(items[3], InvalidLine) and "YYYY-MM-DD" in items[3].reason


def test_a_windows_1252_file_is_read_as_such_and_the_report_says_so() -> None:
    data = "code;Note\nPR-1;café\nPR-2;crème\n".encode("cp1252")
    reader = read(data)
    assert list(reader) == [ParsedCode(2, "PR-1", None), ParsedCode(3, "PR-2", None)]
    assert "read as Windows-1252: the file is not UTF-8" in reader.warnings
    # UTF-8 stays UTF-8, and says nothing of it.
    assert read("code\ncafé\n".encode()).warnings == []


def test_an_explicit_charset_is_honoured() -> None:
    assert charset_of("text/csv; charset=windows-1252") == "windows-1252"
    assert charset_of('text/csv;Charset="UTF-8"') == "UTF-8"
    assert charset_of("text/csv") is None
    data = "code\nPR-é1\n".encode("cp1252")
    item = next(iter(read(data, charset="windows-1252")))
    assert isinstance(item, InvalidLine) and item.value == "PR-é1"
    assert read(data, charset="windows-1252").warnings == []
    with pytest.raises(ValidationFailed, match="unknown charset 'klingon'"):
        read(data, charset="klingon")


def test_undecodable_bytes_show_as_replacement_characters() -> None:
    # 0x81 is not Windows-1252 either: the file is read as UTF-8, the line reported.
    items = list(read(b"code\nAB\x81C\n", "text"))
    assert items == [InvalidLine(2, "AB\ufffdC", "not valid UTF-8")]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"   \r\n\t", b"\xef\xbb\xbf\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(ValidationFailed, match=r"^The file is empty: nothing to upload\.$"):
        read(data)


def test_a_tsv_file_is_a_table() -> None:
    assert format_of("codes.TSV", None) == "csv"
    assert format_of(None, "text/tab-separated-values") == "csv"
    reader = CodeReader(io.BytesIO(b"PR-1\t2030-01-31\n"), filename="codes.tsv")
    assert list(reader) == [ParsedCode(1, "PR-1", END_OF_JAN)]
