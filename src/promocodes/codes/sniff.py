"""What an uploaded file is, from its first block: text at all (or a workbook, an image, an
archive sent by mistake), and, for a table, which separator its columns use and whether
its first line is a header (``columns`` tells). Pure: it looks at bytes and text it is given.

A file that is not text is refused up front, in one sentence, before anything is
recorded: reading it line by line would only report every line as undecodable.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO, NamedTuple

from promocodes.codes.code_text import normalize, safe_display
from promocodes.errors import ValidationFailed

# How much of a file is looked at: enough for a few hundred lines of codes.
SNIFF_BYTES = 8192
# Known kinds of non-text files, by their first bytes, in the words the refusal uses.
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook, an .xls file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
)
# A first block with more than this share of undecodable bytes and control characters is
# not text in a wrong encoding (a few accented letters in Latin-1) but not text at all.
_MOSTLY = 0.3
_WHITESPACE_CONTROLS = frozenset("\t\n\r\x0b\x0c")
SEPARATORS = (",", ";", "\t")
# UTF-32 LE must be tried before UTF-16 LE: its BOM starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# Codecs' names in reports, as the files' programs name them.
_LABELS = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "iso8859-1": "ISO-8859-1"}


class NotText(ValidationFailed):
    """An upload that is not a text file (checked from its first block)."""

    slug = "not-a-text-file"
    title = "Not a text file"


def refuse_binary(head: bytes, encoding: str = "utf-8") -> None:
    """Raise ``NotText`` when the first block of a file (its BOM removed, decoded as
    ``encoding``) is not text: a known binary signature, a NUL, or mostly bytes that
    decode to nothing readable."""
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            raise _refusal(f"it looks like {kind}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    # Not final: a character cut by the end of the block is not counted as bad.
    text = decoder.decode(head, final=len(head) < SNIFF_BYTES)
    if "\x00" in text:
        raise _refusal("it contains NUL bytes, as programs' own files do")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in _WHITESPACE_CONTROLS))
    if text and odd / len(text) > _MOSTLY:
        raise _refusal("most of its first bytes are not letters in any text encoding")


def _refusal(why: str) -> NotText:
    return NotText(
        f"This file is not a text file ({why}): save it as CSV or plain text and upload again."
    )


def first_lines(head: str, limit: int = 5) -> list[str]:
    """Up to ``limit`` non-blank, complete lines of the start of a text."""
    lines = head.splitlines()
    if lines and not head.endswith(("\n", "\r")) and len(lines) > 1:
        lines.pop()  # cut by the end of the block: not a whole line
    return [line for line in lines if line.strip()][:limit]


def refuse_header_only(
    whole: str, *, header: bool, what: str = "file", nothing_to: str = "upload"
) -> None:
    """Raise ``ValidationFailed`` when ``whole`` (all of a file or a paste), read as
    having a header, is that header line and nothing else: no codes, refused in words up
    front as an empty file is (not a report of zeros that says nothing). Lines of empty
    cells (``,``, ``;;``, ``"",""``) hold nothing either: a spreadsheet saved with a blank
    row below its header is the same empty file."""
    if not header:
        return
    lines = [line for line in whole.splitlines() if _has_content(line)]
    if len(lines) == 1:
        shown = safe_display(normalize(lines[0]), 80)
        raise ValidationFailed(
            f"The {what} has only a header line ('{shown}') and no codes below it: "
            f"nothing to {nothing_to}."
        )


# A line of empty cells, whatever its separator, is separators and quotes around blanks.
_CELL_MARKS = str.maketrans("", "", "".join(SEPARATORS) + '"')


def _has_content(line: str) -> bool:
    return bool(normalize(line.translate(_CELL_MARKS)))


def separator(lines: list[str]) -> str:
    """The column separator the first lines use most (``,`` ``;`` or tab; ``,`` when
    none appears, and on a tie, in that order)."""
    counts = {sep: sum(line.count(sep) for line in lines) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # max keeps the first of a tie
    return best if counts[best] else ","


class Head(NamedTuple):
    """The first block of a file (its byte order mark removed) and how it is decoded."""

    data: bytes
    size: int  # bytes read from the stream
    encoding: str  # the codec
    label: str  # its name in reports
    guessed: bool  # not UTF-8, so read as Windows-1252


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if it has one."""
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"'):
            return value.strip().strip('"')
    return None


def read_head(stream: BinaryIO, charset: str | None = None, *, nothing_to: str = "upload") -> Head:
    """The first block of a file and its encoding: its byte order mark, else the
    ``charset`` it was sent with, else UTF-8, or Windows-1252 when the block is not
    UTF-8 but is Windows-1252 (as Excel on Windows saves). Raises ``NotText`` when the
    file is not text and ``ValidationFailed`` when it is empty ("nothing to
    ``nothing_to``"): it is refused before anything of it is read further or recorded.
    Code uploads and redemption files both pass here."""
    head = b""
    while len(head) < SNIFF_BYTES and (more := stream.read(SNIFF_BYTES - len(head))):
        head += more  # raw streams may return short reads
    size = len(head)
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            head, encoding, label, guessed = head[len(bom) :], codec, name, False
            break
    else:
        encoding, label, guessed = _encoding_of(head, charset)
    refuse_binary(head, encoding)
    if size < SNIFF_BYTES and not normalize(head.decode(encoding, "replace")):
        raise ValidationFailed(f"The file is empty: nothing to {nothing_to}.")
    return Head(head, size, encoding, label, guessed)


def _encoding_of(head: bytes, charset: str | None) -> tuple[str, str, bool]:
    if charset is not None:
        try:
            codec = codecs.lookup(charset).name
        except LookupError:
            shown = safe_display(charset, 40)
            raise ValidationFailed(f"Content-Type: unknown charset '{shown}'") from None
        return codec, _LABELS.get(codec, charset), False
    try:
        # Not final: a character cut by the end of the block is not a fault.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        try:
            head.decode("cp1252")
        except UnicodeDecodeError:
            pass
        else:
            return "cp1252", "Windows-1252", True
    return "utf-8", "UTF-8", False
