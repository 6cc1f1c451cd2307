"""SQL of bulk redemption: a batch of a redemption file read, marked and recorded with a
statement each, whatever the batch's size (never a statement per line).

Like the upload's hot path this goes to the driver: on SQLite a batch travels as one
JSON parameter unpacked by ``json_each`` (no limit on bound variables to mind), on
PostgreSQL as arrays unpacked by ``unnest``. Nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from promocodes.models import sqlite_timestamp


@dataclass(frozen=True, slots=True)
class CodeState:
    """A code as a redemption line needs it: where it is, and who redeemed it."""

    id: int
    code: str
    group_id: int
    status: str
    order_id: str | None  # of its redemption, when redeemed
    redeem_unissued: bool  # its group's rule


@dataclass(frozen=True, slots=True)
class NewRedemption:
    code_id: int
    expected_status: str  # as read: the UPDATE changes the code only if it still is
    customer_id: int | None
    order_id: str | None
    redeemed_at: datetime


# The redemption and the group are probed by primary key for each code found (never a
# join the planner could turn into a scan of the whole table each batch).
_STATES_SQLITE = (
    "SELECT c.id, c.code, c.group_id, c.status, "
    "(SELECT r.order_id FROM redemptions r WHERE r.code_id = c.id), "
    "(SELECT g.redeem_unissued FROM code_groups g WHERE g.id = c.group_id) "
    "FROM codes c "
    "WHERE c.code IN (SELECT value FROM json_each(?))"
)
_STATES_POSTGRES = (
    "SELECT c.id, c.code, c.group_id, c.status, "
    "(SELECT r.order_id FROM redemptions r WHERE r.code_id = c.id), "
    "(SELECT g.redeem_unissued FROM code_groups g WHERE g.id = c.group_id) "
    "FROM codes c "
    "WHERE c.code = ANY(%(codes)s)"
)


def _sqlite(session: Session) -> bool:
    return session.connection().dialect.name == "sqlite"


def _fetch(session: Session, sql: str, params: Any) -> list[Any]:
    """All rows of a statement, through the driver's own cursor: a batch's thousands of
    rows skip SQLAlchemy's per-row work."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def states(session: Session, codes: Sequence[str]) -> dict[str, CodeState]:
    """The batch's codes that exist, by code: one SELECT."""
    if not codes:
        return {}
    if _sqlite(session):
        rows = _fetch(session, _STATES_SQLITE, (json.dumps(list(codes)),))
    else:
        rows = _fetch(session, _STATES_POSTGRES, {"codes": list(codes)})
    return {
        row[1]: CodeState(int(row[0]), row[1], int(row[2]), row[3], row[4], bool(row[5]))
        for row in rows
    }


_HOLDERS_SQLITE = (
    "SELECT i.code_id, cu.external_id, cu.id FROM issuances i "
    "JOIN customers cu ON cu.id = i.customer_id "
    "WHERE i.voided_at IS NULL AND i.code_id IN (SELECT value FROM json_each(?))"
)
_HOLDERS_POSTGRES = (
    "SELECT i.code_id, cu.external_id, cu.id FROM issuances i "
    "JOIN customers cu ON cu.id = i.customer_id "
    "WHERE i.voided_at IS NULL AND i.code_id = ANY(%(ids)s)"
)


def holders(session: Session, code_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Who holds each code (issuances not voided): code id → external id → customer id."""
    if not code_ids:
        return {}
    conn = session.connection()
    if _sqlite(session):
        rows = conn.exec_driver_sql(
            _HOLDERS_SQLITE,
            (json.dumps(list(code_ids)),),
        )
    else:
        rows = conn.exec_driver_sql(_HOLDERS_POSTGRES, {"ids": list(code_ids)})
    out: dict[int, dict[str, int]] = {}
    for code_id, external_id, customer_id in rows:
        out.setdefault(int(code_id), {})[external_id] = int(customer_id)
    return out


def _stamps() -> Callable[[datetime], str]:
    """``sqlite_timestamp``, once per distinct time: most lines of a file share one."""
    seen: dict[datetime, str] = {}

    def stamp(value: datetime) -> str:
        text = seen.get(value)
        if text is None:
            text = seen[value] = sqlite_timestamp(value)
        return text

    return stamp


def mark_redeemed(session: Session, batch: Sequence[NewRedemption]) -> set[int]:
    """Mark the batch's codes redeemed, each only if its status is still the one read
    (a concurrent redeem, block or claim makes that line change nothing). Returns the
    ids of the codes that changed: one UPDATE."""
    if not batch:
        return set()
    if _sqlite(session):
        stamp = _stamps()
        payload = json.dumps([[r.code_id, r.expected_status, stamp(r.redeemed_at)] for r in batch])
        rows = _fetch(
            session,
            "UPDATE codes SET status = 'redeemed', redeemed_at = v.at FROM ("
            "SELECT value ->> 0 AS id, value ->> 1 AS expected, value ->> 2 AS at "
            "FROM json_each(?)) AS v "
            "WHERE codes.id = v.id AND codes.status = v.expected RETURNING codes.id",
            (payload,),
        )
    else:
        rows = _fetch(
            session,
            "UPDATE codes AS c SET status = 'redeemed', redeemed_at = v.at "
            "FROM unnest(%(ids)s::bigint[], %(expected)s::text[], %(at)s::timestamptz[]) "
            # c.id = ANY(…) makes the codes an index look-up whatever the planner thinks
            # of the batch's size (without it, a hash join read every code each batch).
            "AS v(id, expected, at) WHERE c.id = ANY(%(ids)s) AND c.id = v.id "
            "AND c.status = v.expected "
            "RETURNING c.id",
            {
                "ids": [r.code_id for r in batch],
                "expected": [r.expected_status for r in batch],
                "at": [r.redeemed_at for r in batch],
            },
        )
    return {int(row[0]) for row in rows}


def add_redemptions(session: Session, batch: Sequence[NewRedemption]) -> None:
    """Record the batch's redemptions: one INSERT."""
    if not batch:
        return
    conn = session.connection()
    if _sqlite(session):
        stamp = _stamps()
        payload = json.dumps(
            [[r.code_id, r.customer_id, r.order_id, stamp(r.redeemed_at)] for r in batch]
        )
        conn.exec_driver_sql(
            "INSERT INTO redemptions (code_id, customer_id, order_id, redeemed_at) "
            "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
            (payload,),
        )
        return
    conn.exec_driver_sql(
        "INSERT INTO redemptions (code_id, customer_id, order_id, redeemed_at) "
        "SELECT * FROM unnest(%(ids)s::bigint[], %(customers)s::integer[], "
        "%(orders)s::text[], %(at)s::timestamptz[])",
        {
            "ids": [r.code_id for r in batch],
            "customers": [r.customer_id for r in batch],
            "orders": [r.order_id for r in batch],
            "at": [r.redeemed_at for r in batch],
        },
    )
