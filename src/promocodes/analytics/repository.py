"""The SQL of redemption analytics: set-based, read-only; no row reaches Python but the
figures.

What is counted (docs/marketers.md, "Did it work?"): the initial issuances that were not
voided (``SENT_SQL``, the WHERE of the partial indexes that find them) of a mailing or
a campaign (``source``, ``source_ref``) or of a group; a sent code is redeemed when its
code has a redemption. The statements, each measured against the others in
``bench/analytics.py``:

- the codes sent: a count of the index alone, no join;
- the redeemed ones, driven from the sent codes (never a scan of every redemption) and
  joined to their redemption by primary key: on PostgreSQL one statement gives the days
  and, as its grand total row (``GROUPING SETS``), the median by ``percentile_cont``; on
  SQLite, which has no median, the days, then the middle one or two times to redeem by
  ``ORDER BY … LIMIT … OFFSET`` (the count is known from the days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from promocodes.codes.models import SENT_SQL
from promocodes.db import dialect_of

Of = Literal["mailing", "campaign", "group"]

_SENT = SENT_SQL.replace("kind", "i.kind").replace("voided_at", "i.voided_at")
# Each scope's condition on ``issuances i``; each is served by one partial index.
# Statements below are put together from these constant fragments only (hence their
# ``noqa: S608``); every value is a bound parameter.
_SCOPES: dict[Of, str] = {
    "mailing": "i.source = 'mailing' AND i.source_ref = :ref",
    "campaign": "i.source = 'campaign' AND i.source_ref = :ref",
    "group": "i.group_id = :id",
}
# SQLite's CROSS JOIN keeps the sent codes as the outer loop: its planner would otherwise
# rather scan every redemption of the database when a mailing is large.
_JOIN = {
    "postgresql": "FROM issuances i JOIN redemptions r ON r.code_id = i.code_id WHERE ",
    "sqlite": "FROM issuances i CROSS JOIN redemptions r WHERE r.code_id = i.code_id AND ",
}
_DAY = {
    "postgresql": "(r.redeemed_at AT TIME ZONE 'UTC')::date",
    # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff': the day is its first ten.
    "sqlite": "substr(r.redeemed_at, 1, 10)",
}
_SECONDS = {
    "postgresql": "extract(epoch FROM r.redeemed_at - i.issued_at)",
    "sqlite": "(julianday(r.redeemed_at) - julianday(i.issued_at)) * 86400.0",
}


@dataclass(frozen=True, slots=True)
class Redeemed:
    by_day: list[tuple[date, int]]  # UTC days with redemptions, in order
    median_seconds: float | None  # None when nothing was redeemed


def _params(of: Of, id_: int) -> dict[str, object]:
    return {"id": id_} if of == "group" else {"ref": str(id_)}


def sent(session: Session, of: Of, id_: int) -> int:
    """How many codes were sent: the partial index's entries, counted."""
    sql = f"SELECT count(*) FROM issuances i WHERE {_SCOPES[of]} AND {_SENT}"  # noqa: S608
    return int(session.execute(text(sql), _params(of, id_)).scalar_one())


def redeemed(session: Session, of: Of, id_: int) -> Redeemed:
    """The sent codes that were redeemed: by day, and the median time to redeem."""
    dialect = dialect_of(session)
    where = f"{_JOIN[dialect]}{_SCOPES[of]} AND {_SENT}"
    day, seconds = _DAY[dialect], _SECONDS[dialect]
    params = _params(of, id_)
    if dialect == "postgresql":
        sql = (
            f"SELECT {day} AS day, count(*), percentile_cont(0.5) WITHIN GROUP "
            f"(ORDER BY {seconds}) {where} GROUP BY GROUPING SETS ((1), ()) ORDER BY 1"
        )
        rows = session.execute(text(sql), params).all()
        by_day = [(d, n) for d, n, _ in rows if d is not None]
        median = next((m for d, _, m in rows if d is None), None)
        return Redeemed(by_day, None if median is None else float(median))
    sql = f"SELECT {day} AS day, count(*) {where} GROUP BY 1 ORDER BY 1"
    by_day = [(date.fromisoformat(d), n) for d, n in session.execute(text(sql), params)]
    count = sum(n for _, n in by_day)
    if count == 0:
        return Redeemed(by_day, None)
    # The middle row (odd count) or the two middle rows (even), averaged.
    middle = "ORDER BY s LIMIT :take OFFSET :skip"
    sql = f"SELECT avg(s) FROM (SELECT {seconds} AS s {where} {middle})"  # noqa: S608
    params |= {"take": 2 - count % 2, "skip": (count - 1) // 2}
    return Redeemed(by_day, float(session.execute(text(sql), params).scalar_one()))
