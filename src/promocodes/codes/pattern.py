"""Patterns for generated codes (``AUT-####-????``) and the random codes they make.

Pure: no database. ``#`` is a digit, ``?`` a letter, ``*`` either; every other character
is kept as written and must be one a code may hold (letters, digits, ``-``, ``_``).
Placeholders draw from alphabets without look-alikes (no 0/O, 1/I/L), so a code read
aloud or off a receipt is typed right. Randomness is ``secrets``' (the OS's CSPRNG): a
generated code must not be predictable from the ones a customer already holds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from itertools import repeat

from promocodes.codes.code_text import MAX_CODE_LENGTH
from promocodes.errors import ValidationFailed

DIGITS = "23456789"
LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"
ALPHABETS = {"#": DIGITS, "?": LETTERS, "*": DIGITS + LETTERS}
_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# At most this share of a pattern's codes may exist at once from one generation: with
# more, a guessed code is valid too often (1 in 100 tries at the limit).
GUESSABLE_SHARE = 100
MAX_GENERATE = 10_000_000


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern: ``parts`` are literal runs (str) or placeholder alphabets, in
    order; ``space`` is how many distinct codes it can make."""

    text: str
    parts: tuple[str | tuple[str], ...]
    space: int

    @property
    def most(self) -> int:
        """The largest count one generation may ask for (see ``GUESSABLE_SHARE``)."""
        return min(self.space // GUESSABLE_SHARE, MAX_GENERATE)


def parse(text: str) -> Pattern:
    """The pattern, or ``ValidationFailed`` saying what is wrong and where."""
    if not text or len(text) > MAX_CODE_LENGTH:
        raise ValidationFailed(f"pattern: give 1 to {MAX_CODE_LENGTH} characters")
    parts: list[str | tuple[str]] = []
    space = 1
    literal = ""
    for position, char in enumerate(text, start=1):
        if char in ALPHABETS:
            if literal:
                parts.append(literal)
                literal = ""
            parts.append((ALPHABETS[char],))
            space *= len(ALPHABETS[char])
        elif char in _LITERAL:
            literal += char
        else:
            raise ValidationFailed(
                f"pattern: character {position} ({char!r}) is not allowed; use # (digit), "
                "? (letter), * (either), or letters, digits, - and _ as written"
            )
    if literal:
        parts.append(literal)
    if space == 1:
        raise ValidationFailed("pattern: it has no placeholder (#, ? or *), so one code only")
    return Pattern(text, tuple(parts), space)


def check_count(pattern: Pattern, n: int) -> None:
    """Refuse a count below 1, above ``MAX_GENERATE``, or so large a share of the
    pattern's codes that guessing one would pay (``GUESSABLE_SHARE``)."""
    if n < 1 or n > MAX_GENERATE:
        raise ValidationFailed(f"count: give 1 to {MAX_GENERATE:,} codes")
    if n > pattern.space // GUESSABLE_SHARE:
        raise ValidationFailed(
            f"count: {n:,} codes from {pattern.text!r} would be guessable: the pattern makes "
            f"{pattern.space:,} codes, and more than 1 in {GUESSABLE_SHARE} of them would be "
            f"valid. Ask for at most {pattern.most:,}, or lengthen the pattern "
            "(each # multiplies its codes by 8, each ? by 23, each * by 31)"
        )


def _column(alphabet: str, n: int) -> str:
    """``n`` characters drawn uniformly from ``alphabet``: random bytes, each mapped by
    ``bytes.translate`` (C speed), the bytes that would bias the draw deleted."""
    size = len(alphabet)
    limit = 256 - 256 % size
    table = bytes(ord(alphabet[b % size]) if b < limit else 0 for b in range(256))
    rejected = bytes(range(limit, 256))
    out = b""
    while len(out) < n:
        missing = n - len(out)
        out += secrets.token_bytes(missing * 256 // limit + 16).translate(table, rejected)
    return out[:n].decode("ascii")


def draw(pattern: Pattern, n: int) -> list[str]:
    """``n`` random codes of the pattern (they may repeat; the caller's unique index
    tells)."""
    columns = [
        repeat(part, n) if isinstance(part, str) else _column(part[0], n) for part in pattern.parts
    ]
    return list(map("".join, zip(*columns, strict=False)))
