"""SQL of bulk redemption: a batch of a redemption file read, marked and recorded with a
statement or two, whatever the batch's size (never a statement per line).

These are the hottest statements of a file of a hundred thousand lines, so they run on
the driver connection (``db.Driver``) and pass whole columns, not rows of objects: on
SQLite a batch travels as one JSON parameter unpacked by ``json_each`` (no limit on bound
variables to mind) and the redemptions go in with ``executemany``; on PostgreSQL as
arrays unpacked by ``unnest``, and the UPDATE and the INSERT of the redemptions are one
statement (a data-modifying CTE: one round trip, the batch sent once). Nothing here
commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from promocodes.db import Driver, RawSQL
from promocodes.models import sqlite_timestamp


class CodeState(NamedTuple):
    """A code as a redemption line needs it: where it is, and who redeemed it. A named
    tuple over the driver's own row: a batch of thousands costs no object per field."""

    id: int
    code: str
    group_id: int
    status: str
    order_id: str | None  # of its redemption, when redeemed
    redeem_unissued: bool  # its group's rule (SQLite gives 0 or 1)


class Batch:
    """The redemptions a batch asks for, as columns in code id order (each statement
    walks its B-trees forward). ``redeemed_at`` None is the run's own time."""

    __slots__ = ("code_ids", "customer_ids", "expected", "group_ids", "order_ids", "redeemed_at")

    def __init__(self) -> None:
        self.code_ids: list[int] = []
        self.expected: list[str] = []  # status as read: the UPDATE changes it only if so
        self.group_ids: list[int] = []
        self.customer_ids: list[int | None] = []
        self.order_ids: list[str | None] = []
        self.redeemed_at: list[datetime | None] = []

    def add(
        self,
        state: CodeState,
        customer_id: int | None,
        order_id: str | None,
        redeemed_at: datetime | None,
    ) -> None:
        self.code_ids.append(state.id)
        self.expected.append(state.status)
        self.group_ids.append(state.group_id)
        self.customer_ids.append(customer_id)
        self.order_ids.append(order_id)
        self.redeemed_at.append(redeemed_at)


# The redemption and the group are probed by primary key for each code found (never a
# join the planner could turn into a scan of the whole table each batch). Rows come in
# code id order, the order the UPDATE and the INSERT then follow.
_STATES_SQLITE = RawSQL.of(
    "SELECT c.id, c.code, c.group_id, c.status, "
    "(SELECT r.order_id FROM redemptions r WHERE r.code_id = c.id), "
    "(SELECT g.redeem_unissued FROM code_groups g WHERE g.id = c.group_id) FROM codes c "
    "WHERE c.code IN (SELECT value FROM json_each(:codes)) ORDER BY c.id"
)
_STATES_POSTGRES = RawSQL.of(
    "SELECT c.id, c.code, c.group_id, c.status, "
    "(SELECT r.order_id FROM redemptions r WHERE r.code_id = c.id), "
    "(SELECT g.redeem_unissued FROM code_groups g WHERE g.id = c.group_id) FROM codes c "
    "WHERE c.code = ANY(:codes) ORDER BY c.id"
)


def states(session: Session, codes: Sequence[str]) -> list[CodeState]:
    """The batch's codes that exist, in code id order: one SELECT."""
    if not codes:
        return []
    db = Driver.of(session)
    if db.postgres:
        rows = db.all(_STATES_POSTGRES, {"codes": list(codes)})
    else:
        rows = db.all(_STATES_SQLITE, {"codes": json.dumps(list(codes))})
    return list(map(CodeState._make, rows))


_HOLDERS_SQLITE = RawSQL.of(
    "SELECT i.code_id, cu.external_id, cu.id FROM issuances i "
    "JOIN customers cu ON cu.id = i.customer_id "
    "WHERE i.voided_at IS NULL AND i.code_id IN (SELECT value FROM json_each(:ids))"
)
_HOLDERS_POSTGRES = RawSQL.of(
    "SELECT i.code_id, cu.external_id, cu.id FROM issuances i "
    "JOIN customers cu ON cu.id = i.customer_id "
    "WHERE i.voided_at IS NULL AND i.code_id = ANY(:ids)"
)


def holders(session: Session, code_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Who holds each code (issuances not voided): code id → external id → customer id."""
    if not code_ids:
        return {}
    db = Driver.of(session)
    ids = list(code_ids)
    out: dict[int, dict[str, int]] = {}
    if db.postgres:
        rows = db.all(_HOLDERS_POSTGRES, {"ids": ids})
    else:
        rows = db.all(_HOLDERS_SQLITE, {"ids": json.dumps(ids)})
    for code_id, external_id, customer_id in rows:
        out.setdefault(int(code_id), {})[external_id] = int(customer_id)
    return out


_REDEEMERS_SQLITE = RawSQL.of(
    "SELECT r.code_id, cu.external_id FROM redemptions r "
    "LEFT JOIN customers cu ON cu.id = r.customer_id "
    "WHERE r.code_id IN (SELECT value FROM json_each(:ids))"
)
_REDEEMERS_POSTGRES = RawSQL.of(
    "SELECT r.code_id, cu.external_id FROM redemptions r "
    "LEFT JOIN customers cu ON cu.id = r.customer_id WHERE r.code_id = ANY(:ids)"
)


def redeemers(session: Session, code_ids: Sequence[int]) -> dict[int, str | None]:
    """Whom each redeemed code was redeemed for: code id → the customer's external id
    (None: redeemed without a customer). Codes without a redemption are left out."""
    if not code_ids:
        return {}
    db = Driver.of(session)
    if db.postgres:
        rows = db.all(_REDEEMERS_POSTGRES, {"ids": list(code_ids)})
    else:
        rows = db.all(_REDEEMERS_SQLITE, {"ids": json.dumps(list(code_ids))})
    return {int(code_id): external_id for code_id, external_id in rows}


def redeem(session: Session, batch: Batch, now: datetime) -> set[int]:
    """Mark the batch's codes redeemed, each only if its status is still the one read (a
    concurrent redeem, block or claim makes that line change nothing), and record the
    redemptions of those that changed. Returns their code ids."""
    if not batch.code_ids:
        return set()
    db = Driver.of(session)
    if db.postgres:
        return _redeem_postgres(db, batch, now)
    changed = _mark_sqlite(db, batch, now)
    _record_sqlite(db, batch, changed, now)
    return changed


# One statement: the UPDATE's RETURNING feeds the INSERT, so only the codes that changed
# get a redemption. ``c.id = ANY(…)`` makes the codes an index look-up whatever the
# planner thinks of the batch's size (without it, a hash join read every code each
# batch). A line without its own time is sent as NULL: an array of one repeated time
# cost more to send than the statement took.
_REDEEM_POSTGRES = RawSQL.of(
    "WITH v AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:expected AS text[]), "
    "CAST(:customers AS integer[]), CAST(:orders AS text[]), CAST(:at AS timestamptz[])) "
    "AS v(id, expected, customer_id, order_id, at)), "
    "done AS (UPDATE codes AS c SET status = 'redeemed', redeemed_at = COALESCE(v.at, :now) "
    "FROM v WHERE c.id = ANY(:ids) AND c.id = v.id AND c.status = v.expected "
    "RETURNING c.id, v.customer_id, v.order_id, c.redeemed_at) "
    "INSERT INTO redemptions (code_id, customer_id, order_id, redeemed_at) "
    "SELECT * FROM done RETURNING code_id"
)


def _redeem_postgres(db: Driver, batch: Batch, now: datetime) -> set[int]:
    params = {
        "ids": batch.code_ids,
        "expected": batch.expected,
        "customers": batch.customer_ids,
        "orders": batch.order_ids,
        "at": batch.redeemed_at,
        "now": now,
    }
    return {row[0] for row in db.all(_REDEEM_POSTGRES, params)}


_MARK_SQLITE_AT = RawSQL.of(
    "UPDATE codes SET status = 'redeemed', redeemed_at = :at "
    "WHERE id IN (SELECT value FROM json_each(:ids)) AND status = :expected RETURNING id"
)
_MARK_SQLITE_EACH = RawSQL.of(
    "UPDATE codes SET status = 'redeemed', redeemed_at = v.at FROM ("
    "SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(:pairs)) AS v "
    "WHERE codes.id = v.id AND codes.status = :expected RETURNING codes.id"
)


def _mark_sqlite(db: Driver, batch: Batch, now: datetime) -> set[int]:
    """One UPDATE per status read (available, issued): the condition is then a constant
    and, when no line gives its own time, so is the time (no JSON object per line)."""
    changed: set[int] = set()
    stamp = sqlite_timestamp(now)
    statuses = dict.fromkeys(batch.expected)
    for expected in statuses:
        ids, times = batch.code_ids, batch.redeemed_at
        if len(statuses) > 1:
            picked = [i for i, status in enumerate(batch.expected) if status == expected]
            ids, times = [ids[i] for i in picked], [times[i] for i in picked]
        if times.count(None) == len(times):
            params = {"at": stamp, "ids": json.dumps(ids), "expected": expected}
            rows = db.all(_MARK_SQLITE_AT, params)
        else:
            at = [stamp if t is None else sqlite_timestamp(t) for t in times]
            pairs = json.dumps(list(zip(ids, at, strict=True)))
            rows = db.all(_MARK_SQLITE_EACH, {"pairs": pairs, "expected": expected})
        changed.update(row[0] for row in rows)
    return changed


# Positional rows (tuples as zip makes them): sqlite3 binds them without a dict per line.
_RECORD_SQLITE = RawSQL.of(
    "INSERT INTO redemptions (code_id, customer_id, order_id, redeemed_at) VALUES (?, ?, ?, ?)"
)


def _record_sqlite(db: Driver, batch: Batch, changed: set[int], now: datetime) -> None:
    stamp = sqlite_timestamp(now)
    times = [stamp if at is None else sqlite_timestamp(at) for at in batch.redeemed_at]
    rows: Iterable[tuple[int, int | None, str | None, str]] = zip(
        batch.code_ids, batch.customer_ids, batch.order_ids, times, strict=True
    )
    if len(changed) < len(batch.code_ids):  # a line lost a race: no redemption for it
        rows = (row for row in rows if row[0] in changed)
    db.many(_RECORD_SQLITE, rows)
