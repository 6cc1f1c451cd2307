"""The SQL of redemption analytics: set-based, read-only, one pass per figure.

What is counted (docs/marketers.md, "Did it work?"): the initial issuances that were not
voided (``SENT_SQL``, the WHERE of the partial indexes that find them), of a mailing or
campaign (``source``, ``source_ref``) or of a group; a sent code is redeemed when its
code has a redemption. Two statements: the sent codes by day of redemption (the row
without a day is the unredeemed rest, so one scan gives sent, redeemed and the days),
then the median time to redeem — ``percentile_cont`` on PostgreSQL, the middle one or two
rows by ``ORDER BY … LIMIT … OFFSET`` on SQLite. No row reaches Python but the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from promocodes.codes.models import SENT_SQL

Of = Literal["mailing", "campaign", "group"]

_SENT = SENT_SQL.replace("kind", "i.kind").replace("voided_at", "i.voided_at")
# Each scope's condition on ``issuances i``; each is served by one partial index.
_SCOPES: dict[Of, str] = {
    "mailing": "i.source = 'mailing' AND i.source_ref = :ref",
    "campaign": "i.source = 'campaign' AND i.source_ref = :ref",
    "group": "i.group_id = :id",
}
_FROM = "FROM issuances i {join} redemptions r ON r.code_id = i.code_id WHERE {scope} AND {sent}"

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
class Counts:
    sent: int
    redeemed: int
    by_day: list[tuple[date, int]]  # days with redemptions, in order


def _dialect(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _params(of: Of, id_: int) -> dict[str, object]:
    return {"id": id_} if of == "group" else {"ref": str(id_)}


def counts(session: Session, of: Of, id_: int) -> Counts:
    """Sent, redeemed and redemptions by day (UTC) in one scan of the sent codes."""
    dialect = _dialect(session)
    where = _FROM.format(join="LEFT JOIN", scope=_SCOPES[of], sent=_SENT)
    sql = f"SELECT {_DAY[dialect]} AS day, count(*) {where} GROUP BY 1 ORDER BY 1"
    sent = redeemed = 0
    by_day: list[tuple[date, int]] = []
    for day, n in session.execute(text(sql), _params(of, id_)):
        sent += n
        if day is None:
            continue
        redeemed += n
        by_day.append((day if isinstance(day, date) else date.fromisoformat(day), n))
    return Counts(sent, redeemed, by_day)


def median_seconds(session: Session, of: Of, id_: int, redeemed: int) -> float | None:
    """The median of redeemed_at - issued_at over the ``redeemed`` sent codes that were
    redeemed (the caller counted them): None when there are none."""
    if redeemed == 0:
        return None
    dialect = _dialect(session)
    where = _FROM.format(join="JOIN", scope=_SCOPES[of], sent=_SENT)
    seconds = _SECONDS[dialect]
    params = _params(of, id_)
    if dialect == "postgresql":
        sql = f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) {where}"
    else:
        # The middle row (odd count) or the two middle rows (even), averaged. Only our
        # constants are formatted in; the ids travel as parameters.
        middle = "ORDER BY s LIMIT :take OFFSET :skip"
        sql = f"SELECT avg(s) FROM (SELECT {seconds} AS s {where} {middle})"  # noqa: S608
        params |= {"take": 2 - redeemed % 2, "skip": (redeemed - 1) // 2}
    value = session.execute(text(sql), params).scalar()
    return None if value is None else float(value)
