"""What an uploaded file is, from its first block: text at all (or a workbook, an image, an
archive sent by mistake), and, for a table, which separator its columns use and whether
its first line is a header. Pure: it looks at bytes and text it is given.

A file that is not text is refused up front, in one sentence, before anything is
recorded: reading it line by line would only report every line as undecodable.
"""

from __future__ import annotations

import codecs

from promocodes.codes.code_text import normalize
from promocodes.errors import ValidationFailed

# How much of a file is looked at: enough for a few hundred lines of codes.
SNIFF_BYTES = 8192
# Known kinds of non-text files, by their first bytes, in the words the refusal uses.
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls)"),
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
# Columns a header row may name (any other header cell is ignored, as before).
HEADER_NAMES = frozenset({"code", "valid_until"})


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


def separator(lines: list[str]) -> str:
    """The column separator the first lines use most (``,`` ``;`` or tab; ``,`` when
    none appears, and on a tie, in that order)."""
    counts = {sep: sum(line.count(sep) for line in lines) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # max keeps the first of a tie
    return best if counts[best] else ","


def is_header(line: str, sep: str) -> bool:
    """Whether a line names the columns: ``code`` and ``valid_until`` (a ``code`` line
    alone is a code: ``CODE`` is as good a promo code as any)."""
    cells = [normalize(normalize(cell).strip('"')).lower() for cell in line.split(sep)]
    return len(cells) > 1 and "code" in cells and set(cells) <= HEADER_NAMES
