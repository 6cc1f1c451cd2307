"""Which column of an uploaded table holds the codes and which their own end date, from
its first row: a header (known names in many spellings, or unknown names) or already a
row of codes. Pure.

A header is never taken for a code and a date column is never dropped in silence: a
header whose code column cannot be found refuses the upload up front, and a column that
is not read is named in a warning of the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promocodes.codes.code_text import normalize, safe_display
from promocodes.errors import ValidationFailed

# Names compared lower-case, with runs of spaces, hyphens and underscores as one space.
CODE_NAMES = frozenset(
    {"code", "promo", "promo code", "promocode", "coupon", "coupon code", "voucher",
     "voucher code"}
)  # fmt: skip
UNTIL_NAMES = frozenset(
    {"valid until", "expires", "expiry", "expiry date", "expiration", "expiration date",
     "expires at", "valid till", "valid to", "end date"}
)  # fmt: skip
_GAPS = re.compile(r"[\s_-]+")
_DATEISH = re.compile(r"[0-9][0-9 ./:TZ+-]*")


class UnknownColumns(ValidationFailed):
    """A header row none of whose columns can be told to hold the codes."""

    slug = "no-code-column"
    title = "No code column"


@dataclass(frozen=True, slots=True)
class Columns:
    """How rows are read: ``header`` when the first row names the columns (and is not
    a code); ``until`` is None when no column holds dates."""

    header: bool
    code: int = 0
    until: int | None = None
    warnings: list[str] = field(default_factory=list)


def name_of(cell: str) -> str:
    """A header cell as it is compared: ``Valid-Until`` and ``valid_until`` alike."""
    return _GAPS.sub(" ", normalize(normalize(cell).strip('"')).lower()).strip()


def is_code_name(cell: str) -> bool:
    """Whether a cell alone names the code column (a first line ``Code`` is a header)."""
    return name_of(cell) in CODE_NAMES


def looks_like_header(cells: list[str]) -> bool:
    """Whether a first row names columns rather than giving a code: a lone code-column
    name, any known column name, or a second cell that is neither empty nor a date."""
    if len(cells) == 1:
        return is_code_name(cells[0])
    if names_a_column(cells):
        return True
    # A date, even one written wrongly (reported on its line), makes the row data.
    second = normalize(cells[1])
    return bool(normalize(cells[0])) and bool(second) and not _DATEISH.fullmatch(second)


def names_a_column(cells: list[str]) -> bool:
    """Whether a row names a known column (plain text is read as a table only then)."""
    return any(name_of(cell) in CODE_NAMES or name_of(cell) in UNTIL_NAMES for cell in cells)


def of_first_row(cells: list[str]) -> Columns:
    """The columns of a table from its first non-blank row. Raises ``UnknownColumns``
    when that row is a header without a code column."""
    if not looks_like_header(cells):
        # Rows of codes: the first column the code, the second (if any) its date.
        extra = [f"column {n + 1} is not read" for n in range(2, len(cells)) if normalize(cells[n])]
        return Columns(False, 0, 1 if len(cells) > 1 else None, extra)
    names = [name_of(cell) for cell in cells]
    code = next((i for i, name in enumerate(names) if name in CODE_NAMES), None)
    if code is None:
        found = ", ".join(f"'{safe_display(normalize(cell), 40)}'" for cell in cells)
        raise UnknownColumns(
            f"No column of this file holds the codes: its first line names the columns "
            f"{found}; name the column of codes 'code' (and the column of dates 'valid_until')."
        )
    until = next((i for i, name in enumerate(names) if name in UNTIL_NAMES), None)
    warnings = [
        f"column '{safe_display(normalize(cell), 40)}' is not read"
        for n, cell in enumerate(cells)
        if n not in (code, until) and normalize(cell)
    ]
    return Columns(True, code, until, warnings)
