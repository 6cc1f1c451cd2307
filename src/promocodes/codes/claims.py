"""The claim: taking one available code for an initial issuance, and recording it.

This is the hottest write path (API issues, campaigns), so it is written as few,
prebuilt statements — building SQLAlchemy expressions per call cost more than the
database work, and on PostgreSQL every round trip costs more than the statement.

Order: codes with their own expiry first (earliest first, never an expired one), then
codes without expiry in upload order. These are two index range scans rather than one
``NULLS LAST`` sort, because SQLite orders NULLs first in the index; the first scan only
runs for groups that ever received codes with an expiry.

Claims never read-then-write:
- SQLite: the write transaction (BEGIN IMMEDIATE) excludes other claimers, and the
  UPDATE repeats ``status = 'available'``.
- PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent claimers take different rows
  instead of queueing on one; the pick, the UPDATE, the issuance INSERT and the counter
  stripe UPDATE are one statement (data-modifying CTEs), so a claim is one round trip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

from promocodes.codes.models import COUNTER_STRIPES
from promocodes.codes.repository import bump_counters
from promocodes.models import UTCDateTime

_EXPIRING = "valid_until > :now"
# "ORDER BY valid_until, id" even where valid_until IS NULL: PostgreSQL does not treat
# IS NULL as an equality, so "ORDER BY id" alone would sort every available code of the
# group instead of reading the index in order.
_ORDER = "valid_until, id"
_NO_EXPIRY = "valid_until IS NULL"


def _typed(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime))


def _pick(condition: str, lock: str = "") -> str:
    # Interpolates only this module's constant fragments; values are bound parameters.
    return (
        "SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
        f"AND {condition} ORDER BY {_ORDER} LIMIT 1{lock}"
    )


# --- SQLite: several statements, no round trips to speak of --------------------------

_SQLITE_CLAIM = {
    cond: _typed(
        "UPDATE codes SET status = 'issued', issued_at = :now "
        f"WHERE status = 'available' AND id = ({_pick(cond)}) RETURNING id, code"
    )
    for cond in (_EXPIRING, _NO_EXPIRY)
}
_INSERT_ISSUANCE = _typed(
    "INSERT INTO issuances (key, group_id, kind, customer_id, code_id, source, source_ref, "
    "issued_at) VALUES (:key, :group_id, :kind, :customer_id, :code_id, :source, "
    ":source_ref, :now) RETURNING id"
)

# --- PostgreSQL: one statement per claim -------------------------------------------

_PG_CLAIM = {
    cond: _typed(
        f"WITH picked AS ({_pick(cond, ' FOR UPDATE SKIP LOCKED')}), "
        "claimed AS (UPDATE codes SET status = 'issued', issued_at = :now FROM picked "
        "  WHERE codes.id = picked.id RETURNING codes.id, codes.code), "
        "ins AS (INSERT INTO issuances (key, group_id, kind, customer_id, code_id, source, "
        "  source_ref, issued_at) SELECT :key, :group_id, 'initial', :customer_id, id, "
        "  :source, :source_ref, :now FROM claimed "
        "  ON CONFLICT (key, group_id, kind) DO NOTHING RETURNING id), "
        "bump AS (UPDATE group_counters SET available = available - 1, issued = issued + 1 "
        "  WHERE group_id = :group_id AND slot = :slot AND EXISTS (SELECT 1 FROM ins)) "
        "SELECT claimed.id, claimed.code, (SELECT id FROM ins) FROM claimed"
    )
    for cond in (_EXPIRING, _NO_EXPIRY)
}
# A claim whose issuance lost the race for its key: the code goes back. We still hold the
# row lock from the claim, so nobody else can have touched it.
_UNCLAIM = text("UPDATE codes SET status = 'available', issued_at = NULL WHERE id = :id")


@dataclass(frozen=True, slots=True)
class Claimed:
    code_id: int
    code: str
    issuance_id: int


class KeyTaken:
    """A concurrent claim with the same business key committed first."""


def claim_initial(
    session: Session,
    *,
    group_id: int,
    expiring: bool,
    key: str,
    customer_id: int,
    source: str,
    source_ref: str | None,
    now: datetime,
) -> Claimed | KeyTaken | None:
    """Claim a code and record the initial issuance; None when the group has no code left.
    ``expiring``: the group has codes with their own expiry (try those first)."""
    slot = random.randrange(COUNTER_STRIPES)
    params = {
        "slot": slot,
        "group_id": group_id,
        "key": key,
        "customer_id": customer_id,
        "source": source,
        "source_ref": source_ref,
        "now": now,
        "kind": "initial",
    }
    conditions = (_EXPIRING, _NO_EXPIRY) if expiring else (_NO_EXPIRY,)
    if session.get_bind().dialect.name == "postgresql":
        for cond in conditions:
            row = session.execute(_PG_CLAIM[cond], params).first()
            if row is None:
                continue
            if row[2] is None:
                session.execute(_UNCLAIM, {"id": row[0]})
                return KeyTaken()
            return Claimed(int(row[0]), str(row[1]), int(row[2]))
        return None
    for cond in conditions:
        row = session.execute(_SQLITE_CLAIM[cond], params).first()
        if row is None:
            continue
        issuance_id = session.execute(_INSERT_ISSUANCE, {**params, "code_id": row[0]}).scalar_one()
        bump_counters(session, group_id, slot=slot, available=-1, issued=1)
        return Claimed(int(row[0]), str(row[1]), int(issuance_id))
    return None


def record_repeat(
    session: Session,
    *,
    group_id: int,
    key: str,
    customer_id: int,
    code_id: int,
    source: str,
    source_ref: str | None,
    now: datetime,
) -> int | None:
    """Record a repeat issuance; None when one with this key exists already."""
    row = session.execute(
        _INSERT_REPEAT,
        {
            "group_id": group_id,
            "key": key,
            "customer_id": customer_id,
            "code_id": code_id,
            "source": source,
            "source_ref": source_ref,
            "now": now,
        },
    ).first()
    return None if row is None else int(row[0])


_INSERT_REPEAT = _typed(
    "INSERT INTO issuances (key, group_id, kind, customer_id, code_id, source, source_ref, "
    "issued_at) VALUES (:key, :group_id, 'repeat', :customer_id, :code_id, :source, "
    ":source_ref, :now) ON CONFLICT (key, group_id, kind) DO NOTHING RETURNING id"
)


# --- bulk claims for a mailing chunk -------------------------------------------------

_SQLITE_RESERVE = {
    cond: _typed(
        "UPDATE codes SET status = 'issued', issued_at = :now WHERE id IN ("
        f"SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
        f"AND {cond} ORDER BY {_ORDER} LIMIT :n) RETURNING id, code, valid_until"
    )
    for cond in (_EXPIRING, _NO_EXPIRY)
}
_PG_RESERVE = {
    cond: _typed(
        "WITH picked AS (SELECT id FROM codes WHERE group_id = :group_id "
        f"AND status = 'available' AND {cond} ORDER BY {_ORDER} LIMIT :n "
        "FOR UPDATE SKIP LOCKED) UPDATE codes SET status = 'issued', issued_at = :now "
        "FROM picked WHERE codes.id = picked.id "
        "RETURNING codes.id, codes.code, codes.valid_until"
    )
    for cond in (_EXPIRING, _NO_EXPIRY)
}
_RELEASE = text(
    "UPDATE codes SET status = 'available', issued_at = NULL WHERE id IN :ids AND status = 'issued'"
).bindparams(bindparam("ids", expanding=True))


def reserve(
    session: Session, group_id: int, n: int, *, expiring: bool, now: datetime
) -> list[tuple[int, str]]:
    """Take up to ``n`` available codes of the group in one statement (per expiry class),
    in issue order. They are marked issued inside the caller's transaction; whatever the
    caller does not use goes back with ``release`` before it commits, so no one else ever
    sees a reservation."""
    taken: list[tuple[int, str, datetime | None]] = []
    stmts = _PG_RESERVE if session.get_bind().dialect.name == "postgresql" else _SQLITE_RESERVE
    for cond in (_EXPIRING, _NO_EXPIRY) if expiring else (_NO_EXPIRY,):
        if len(taken) >= n:
            break
        rows = list(
            session.execute(stmts[cond], {"group_id": group_id, "n": n - len(taken), "now": now})
        )
        # RETURNING has no order: restore expiry-then-upload order for fair assignment.
        rows.sort(key=lambda r: (r[2] is None, r[2] or now, r[0]))
        taken += [(int(r[0]), str(r[1]), r[2]) for r in rows]
    return [(code_id, code) for code_id, code, _ in taken]


def release(session: Session, code_ids: list[int]) -> None:
    for start in range(0, len(code_ids), 5_000):
        session.execute(_RELEASE, {"ids": code_ids[start : start + 5_000]})
