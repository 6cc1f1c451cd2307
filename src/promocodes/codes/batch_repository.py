"""The SQL of a batch of messages' codes (a mailing chunk): reserve a group's codes in
bulk, put back the ones not taken, record the batch's issuances in one statement, read the
recipients' last initial codes; and void a message's issuances. Built from
``claim_repository``'s fragments, so a code moves the same way whichever door it takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from promocodes.codes.claim_repository import (
    BACK_TO_STOCK,
    EXPIRING,
    HIDDEN,
    ISSUANCES,
    LAST_INITIAL,
    LOCK_CUSTOMERS,
    NO_EXPIRY,
    ORDER,
    STANDING_INITIALS,
    typed,
)
from promocodes.db import rowcount
from promocodes.models import UTCDateTime, sqlite_timestamp

_LAST_INITIALS = text(
    f"SELECT i.customer_id, {LAST_INITIAL} AND i.customer_id IN :ids ORDER BY i.id"
).bindparams(bindparam("ids", expanding=True))

# --- a mailing chunk's codes ---------------------------------------------------------

_SQLITE_RESERVE = {
    cond: typed(
        "UPDATE codes SET status = 'issued', issued_at = :now WHERE id IN ("
        f"SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
        f"AND {cond} ORDER BY {ORDER} LIMIT :n) RETURNING id, code, valid_until"
    )
    for cond in (EXPIRING, NO_EXPIRY)
}
_PG_RESERVE = {
    cond: typed(
        "WITH picked AS (SELECT id FROM codes WHERE group_id = :group_id "
        f"AND status = 'available' AND {cond} ORDER BY {ORDER} LIMIT :n "
        "FOR UPDATE SKIP LOCKED) UPDATE codes SET status = 'issued', issued_at = :now "
        "FROM picked WHERE codes.id = picked.id "
        "RETURNING codes.id, codes.code, codes.valid_until"
    )
    for cond in (EXPIRING, NO_EXPIRY)
}
_RELEASE = text(f"{BACK_TO_STOCK} IN :ids").bindparams(bindparam("ids", expanding=True))


def reserve(
    session: Session, group_id: int, n: int, *, expiring: bool, now: datetime
) -> list[tuple[int, str]]:
    """Take up to ``n`` available codes of the group in one statement (per expiry class),
    in issue order. They are marked issued inside the caller's transaction; whatever the
    caller does not use goes back with ``release`` before it commits, so no one else ever
    sees a reservation."""
    taken: list[tuple[int, str, datetime | None]] = []
    stmts = _PG_RESERVE if session.get_bind().dialect.name == "postgresql" else _SQLITE_RESERVE
    for cond in (EXPIRING, NO_EXPIRY) if expiring else (NO_EXPIRY,):
        if len(taken) >= n:
            break
        rows = list(
            session.execute(stmts[cond], {"group_id": group_id, "n": n - len(taken), "now": now})
        )
        # RETURNING has no order: restore expiry-then-upload order for fair assignment.
        rows.sort(key=lambda r: (r[2] is None, r[2] or now, r[0]))
        taken += [(int(r[0]), str(r[1]), r[2]) for r in rows]
    return [(code_id, code) for code_id, code, _ in taken]


def release(session: Session, code_ids: list[int]) -> int:
    """Put issued codes back in stock; how many went back."""
    back = 0
    for start in range(0, len(code_ids), 5_000):
        back += rowcount(session.execute(_RELEASE, {"ids": code_ids[start : start + 5_000]}))
    return back


def last_initials(
    session: Session, group_id: int, customer_ids: Sequence[int]
) -> dict[int, tuple[int, str]]:
    """customer id -> (code id, code) of each customer's latest standing initial issuance
    from the group; a customer whose latest one was voided, or its code blocked since,
    has none."""
    rows = session.execute(_LAST_INITIALS, {"group_id": group_id, "ids": list(customer_ids)})
    # Rows come in issuance order: a customer's latest one is written last.
    latest = {customer_id: (code_id, code, status) for customer_id, code_id, code, status in rows}
    return {
        cid: (code_id, code)
        for cid, (code_id, code, status) in latest.items()
        if status not in HIDDEN
    }


_LOCK_CUSTOMERS = text(LOCK_CUSTOMERS.format(ids=":ids")).bindparams(
    bindparam("ids", expanding=True)
)
_STANDING_INITIALS = text(STANDING_INITIALS.format(ids=":ids")).bindparams(
    bindparam("ids", expanding=True)
)


def standing_initials(
    session: Session, group_id: int, customer_ids: Sequence[int]
) -> dict[int, int]:
    """customer id -> the initial codes each holds from the group (standing ones), as a
    per-customer limit counts them; on PostgreSQL the customers' rows are locked first
    (in id order, as every claim for a limited group locks its customer's), so the count
    stays true until the caller commits."""
    ids = sorted(set(customer_ids))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_CUSTOMERS, {"ids": ids})
    rows = session.execute(_STANDING_INITIALS, {"group_id": group_id, "ids": ids})
    return {int(customer_id): int(n) for customer_id, n in rows}


# ``{0}`` stands for the driver's parameter mark (``?`` sqlite3, ``%s`` psycopg).
_INSERT_ISSUANCES = f"INSERT INTO {ISSUANCES} VALUES ({', '.join(['{0}'] * 8)})"

IssuanceRow = tuple[str, int, str, int, int, str, str | None, Any]


def insert_issuances(session: Session, rows: Sequence[IssuanceRow]) -> None:
    """A batch's issuances (key, group, kind, customer, code, source, source_ref, time) in
    one ``executemany`` on the driver: the ORM's bulk insert cost more per row than
    rendering the message did. The time is the driver's (``bind_time``)."""
    if rows:
        conn = session.connection()
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        conn.exec_driver_sql(_INSERT_ISSUANCES.format(mark), list(rows))


def bind_time(session: Session, now: datetime) -> Any:
    """``now`` as ``insert_issuances`` binds it (SQLite keeps naive UTC text)."""
    return now if session.get_bind().dialect.name == "postgresql" else sqlite_timestamp(now)


# --- voiding a message's issuances ------------------------------------------------------

_STANDING_OF_KEY = text(
    "SELECT id, group_id, kind, code_id FROM issuances WHERE key = :key AND voided_at IS NULL"
)
_VOID = text("UPDATE issuances SET voided_at = :now WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime)
)


@dataclass(frozen=True, slots=True)
class Standing:
    """An issuance that still stands (not voided)."""

    id: int
    group_id: int
    kind: str
    code_id: int


def standing_of_key(session: Session, key: str) -> list[Standing]:
    rows = session.execute(_STANDING_OF_KEY, {"key": key})
    return [Standing(int(i), int(g), str(k), int(c)) for i, g, k, c in rows]


def void(session: Session, issuance_ids: list[int], now: datetime) -> None:
    session.execute(_VOID, {"ids": issuance_ids, "now": now})
