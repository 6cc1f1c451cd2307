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
  instead of queueing on one; the customer, group and key lookup, the pick, the UPDATE, the
  issuance INSERT and the counter stripe UPDATE are one statement (data-modifying CTEs),
  so a single issue is one round trip.

A single issue runs on the driver connection (``db.Driver``), in its own transaction or
under a session's: with SQLAlchemy's result wrapping and events around each statement,
the library cost more than the database work.

The bulk movements of a mailing chunk and voiding are in ``batch_repository``, built
from the fragments defined here (``ISSUANCES``, ``BACK_TO_STOCK``, ``LAST_INITIAL``,
the pick order): one spelling of each, for every statement that moves a code.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

from promocodes.codes.issuance_repository import GroupRow
from promocodes.codes.models import BLOCKED, COUNTER_STRIPES, INITIAL, LIVE_SQL, REPEAT
from promocodes.db import Driver, RawSQL
from promocodes.models import UTCDateTime

EXPIRING = "valid_until > :now"
# "ORDER BY valid_until, id" even where valid_until IS NULL: PostgreSQL does not treat
# IS NULL as an equality, so "ORDER BY id" alone would sort every available code of the
# group instead of reading the index in order.
ORDER = "valid_until, id"
NO_EXPIRY = "valid_until IS NULL"


def typed(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime))


def _pick(condition: str, lock: str = "") -> str:
    # Interpolates only this module's constant fragments; values are bound parameters.
    return (
        "SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
        f"AND {condition} ORDER BY {ORDER} LIMIT 1{lock}"
    )


# --- a single issue, on the driver connection -----------------------------------------
#
# One lookup answers "which group, is it live, did this key issue before (its code), who
# is the customer" (last: the id of the external id). The customer is found in the same
# statement: a round trip of its own cost a PostgreSQL issue about a tenth of its time.
# The row exists even when the group or the customer does not (NULLs tell which).

# An erased customer takes no new code (``NoCustomer.erased``, off the hot path, says so).
_CUSTOMER = "SELECT id FROM customers WHERE external_id = :external_id AND erased_at IS NULL"
_ERASED = RawSQL.of(_CUSTOMER.replace("IS NULL", "IS NOT NULL"))
# Every statement that records issuances writes these columns, in this order.
ISSUANCES = "issuances (key, group_id, kind, customer_id, code_id, source, source_ref, issued_at)"
_LOOKUP = RawSQL.of(
    f"SELECT g.name, g.valid_from, g.valid_until, g.has_code_expiry, {LIVE_SQL}, "
    f"i.id, i.customer_id, i.issued_at, c.code, g.customer_limit, g.limit_action, "
    f"({_CUSTOMER}) FROM (SELECT 1) one "
    "LEFT JOIN code_groups g ON g.id = :group_id AND g.archived_at IS NULL "
    "LEFT JOIN issuances i ON i.key = :key AND i.group_id = g.id AND i.kind = :kind "
    "LEFT JOIN codes c ON c.id = i.code_id"
)
_SQLITE_CLAIM = {
    cond: RawSQL.of(
        "UPDATE codes SET status = 'issued', issued_at = :now "
        f"WHERE status = 'available' AND id = ({_pick(cond)}) RETURNING id, code"
    )
    for cond in (EXPIRING, NO_EXPIRY)
}
_SQLITE_INSERT = RawSQL.of(
    f"INSERT INTO {ISSUANCES} VALUES (:key, :group_id, 'initial', :customer_id, :code_id, "
    ":source, :source_ref, :now) RETURNING id"
)
_BUMP = RawSQL.of(
    "UPDATE group_counters SET available = available - 1, issued = issued + 1 "
    "WHERE group_id = :group_id AND slot = :slot"
)

# PostgreSQL: the lookup, the pick (FOR UPDATE SKIP LOCKED; expiring codes first, and
# only when the group is live and the key new), the claim, the issuance INSERT and the
# counter stripe UPDATE are one statement (data-modifying CTEs): one round trip. Two
# racing calls with one key both claim; the later INSERT waits for the earlier commit
# and does nothing (ON CONFLICT), and its caller gives its code back.
# The counter stripe is the first one no other claim holds (starting at a random one;
# 32 claimers drawing 8 stripes at random queued on each other's row locks), waited for
# only when all are held. It is picked in a CTE of its own and joined: as a subquery in
# the UPDATE's WHERE, a stripe updated meanwhile by another claim was re-checked and
# skipped, and the count was lost (the concurrency tests caught it).
_PG_ISSUE = RawSQL.of(
    "WITH g AS (SELECT name, valid_from, valid_until, has_code_expiry, customer_limit, "
    f"  limit_action, {LIVE_SQL} AS live FROM code_groups g "
    "  WHERE id = :group_id AND archived_at IS NULL), "
    "prior AS (SELECT i.id, i.customer_id, i.issued_at, c.code FROM issuances i "
    "  JOIN codes c ON c.id = i.code_id "
    "  WHERE i.key = :key AND i.group_id = :group_id AND i.kind = 'initial'), "
    f"cust AS ({_CUSTOMER}), "
    "go AS (SELECT has_code_expiry FROM g WHERE live AND NOT EXISTS (SELECT 1 FROM prior) "
    "  AND EXISTS (SELECT 1 FROM cust) AND (customer_limit IS NULL OR :limit_checked)), "
    "early AS (SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
    f"  AND {EXPIRING} AND EXISTS (SELECT 1 FROM go WHERE has_code_expiry) "
    f"  ORDER BY {ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED), "
    "late AS (SELECT id FROM codes WHERE group_id = :group_id AND status = 'available' "
    f"  AND {NO_EXPIRY} AND EXISTS (SELECT 1 FROM go) AND NOT EXISTS (SELECT 1 FROM early) "
    f"  ORDER BY {ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED), "
    "claimed AS (UPDATE codes SET status = 'issued', issued_at = :now "
    "  FROM (SELECT id FROM early UNION ALL SELECT id FROM late) picked "
    "  WHERE codes.id = picked.id RETURNING codes.id, codes.code), "
    f"ins AS (INSERT INTO {ISSUANCES} SELECT :key, :group_id, 'initial', cust.id, claimed.id, "
    "  :source, :source_ref, :now FROM claimed, cust "
    "  ON CONFLICT (key, group_id, kind) DO NOTHING RETURNING id), "
    "stripe AS (SELECT slot FROM group_counters WHERE group_id = :group_id "
    "  AND EXISTS (SELECT 1 FROM ins) ORDER BY slot < :slot, slot "
    "  LIMIT 1 FOR UPDATE SKIP LOCKED), "
    "bump AS (UPDATE group_counters c SET available = available - 1, issued = issued + 1 "
    "  FROM stripe WHERE c.group_id = :group_id AND c.slot = stripe.slot), "
    "bump_busy AS (UPDATE group_counters SET available = available - 1, issued = issued + 1 "
    "  WHERE group_id = :group_id AND slot = :slot AND EXISTS (SELECT 1 FROM ins) "
    "  AND NOT EXISTS (SELECT 1 FROM stripe)) "
    "SELECT g.name, g.valid_from, g.valid_until, g.has_code_expiry, g.live, "
    "  prior.id, prior.customer_id, prior.issued_at, prior.code, "
    "  claimed.id, claimed.code, (SELECT id FROM ins), g.customer_limit, g.limit_action, "
    "  (SELECT id FROM cust) "
    "FROM (SELECT 1) one LEFT JOIN g ON TRUE LEFT JOIN prior ON TRUE "
    "LEFT JOIN claimed ON TRUE"
)
# A group with a per-customer limit: its claims for one customer take turns on the
# customer's row (PostgreSQL; SQLite has one writer at a time), so the count read next
# includes every claim committed before. FOR NO KEY UPDATE leaves the FOR KEY SHARE of
# the issuances' foreign key, and so every other customer's claims, unhindered.
LOCK_CUSTOMERS = "SELECT id FROM customers WHERE id IN {ids} ORDER BY id FOR NO KEY UPDATE"
_LOCK_CUSTOMER = RawSQL.of(LOCK_CUSTOMERS.format(ids="(:customer_id)"))
# The initial codes a customer holds from a group, as a limit counts them: standing
# ones (a voided issuance's message never arrived).
STANDING_INITIALS = (
    "SELECT customer_id, count(*) FROM issuances WHERE group_id = :group_id "
    "AND kind = 'initial' AND voided_at IS NULL AND customer_id IN {ids} GROUP BY customer_id"
)
_STANDING_INITIALS = RawSQL.of(STANDING_INITIALS.format(ids="(:customer_id)"))
# A code goes back to stock only from "issued": a code redeemed or blocked meanwhile is
# history and stays. One statement, for one code (by id) or many (IN :ids).
BACK_TO_STOCK = (
    "UPDATE codes SET status = 'available', issued_at = NULL WHERE status = 'issued' AND id"
)
# A claim whose issuance lost the race for its key: the code goes back. We still hold the
# row lock from the claim, so nobody else can have touched it.
_UNCLAIM = RawSQL.of(f"{BACK_TO_STOCK} = :id")
_PRIOR = RawSQL.of(
    "SELECT i.id, i.customer_id, i.issued_at, c.code FROM issuances i "
    "JOIN codes c ON c.id = i.code_id "
    "WHERE i.key = :key AND i.group_id = :group_id AND i.kind = :kind"
)
# A repeat re-shows the code of the customer's latest initial issuance from the group —
# unless that issuance was voided (its message never arrived) or its code blocked since
# (leaked): then there is nothing to show, never an older code the customer may have
# forgotten. Selected per customer (a single repeat) or for a chunk's recipients (in
# bulk) as the columns below, a voided issuance's status reading ``VOIDED``.
VOIDED = "voided"
LAST_INITIAL = (
    f"i.code_id, c.code, CASE WHEN i.voided_at IS NULL THEN c.status ELSE '{VOIDED}' END "
    "FROM issuances i JOIN codes c ON c.id = i.code_id WHERE i.group_id = :group_id "
    "AND i.kind = 'initial'"
)
# Statuses whose code is never shown again.
HIDDEN = (BLOCKED, VOIDED)
_LAST_INITIAL = RawSQL.of(
    f"SELECT {LAST_INITIAL} AND i.customer_id = :customer_id ORDER BY i.id DESC LIMIT 1"
)
_INSERT_REPEAT = RawSQL.of(
    f"INSERT INTO {ISSUANCES} VALUES (:key, :group_id, 'repeat', :customer_id, :code_id, "
    ":source, :source_ref, :now) ON CONFLICT (key, group_id, kind) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    code_id: int
    code: str
    issuance_id: int


class KeyTaken:
    """A concurrent issue with the same business key committed first."""


@dataclass(frozen=True, slots=True)
class AtLimit:
    """The customer holds the group's limit of initial codes: nothing was claimed."""

    held: int


@dataclass(frozen=True, slots=True)
class Prior:
    """The issuance an earlier call with the same key made."""

    issuance_id: int
    customer_id: int
    issued_at: datetime
    code: str


@dataclass(frozen=True, slots=True)
class Request:
    """One single issue as asked: into which group, under which key, for which customer
    (by external id), through what, and when."""

    group_id: int
    key: str
    external_id: str
    source: str
    source_ref: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one issue found and did. ``result`` is None when nothing was recorded: the
    key issued before (``prior``), the group is not valid now (``live`` false), or it
    has no code to give (no code left; for a repeat, no earlier initial issue)."""

    customer_id: int
    group: GroupRow
    live: bool
    prior: Prior | None
    result: Claimed | KeyTaken | AtLimit | None


class NoCustomer(NamedTuple):
    """No customer has the external id, or (``erased``) an erased one."""

    erased: bool = False


class NoGroup:
    """The group does not exist or is archived."""


def _prior(db: Driver, row: Sequence[Any]) -> Prior | None:
    if row[0] is None:
        return None
    issued_at = db.read_time(row[2])
    assert issued_at is not None
    return Prior(int(row[0]), int(row[1]), issued_at, str(row[3]))


@dataclass(frozen=True, slots=True)
class _Found:
    """An issue's first statement, read: the driver, the parameters every later
    statement takes (``customer_id`` resolved), and the row."""

    db: Driver
    params: dict[str, Any]
    row: Sequence[Any]
    customer_id: int
    group: GroupRow
    live: bool
    prior: Prior | None

    def attempt(
        self, result: Claimed | KeyTaken | AtLimit | None, prior: Prior | None = None
    ) -> Attempt:
        return Attempt(self.customer_id, self.group, self.live, prior, result)


def _look_up(
    tx: Session | Driver, on_postgres: RawSQL, kind: str, request: Request
) -> _Found | NoCustomer | NoGroup:
    """Run an issue's first statement (``on_postgres`` may be PostgreSQL's whole claim);
    tell an unknown customer (first) or group from a found one."""
    db = Driver.of(tx)
    params = {
        "slot": random.randrange(COUNTER_STRIPES),
        "group_id": request.group_id,
        "key": request.key,
        "kind": kind,
        "external_id": request.external_id,
        "source": request.source,
        "source_ref": request.source_ref,
        "now": db.bind_time(request.now),
        "limit_checked": False,
    }
    row = db.first(on_postgres if db.postgres else _LOOKUP, params)
    assert row is not None, "the lookup returns one row, found or not"
    if row[-1] is None:
        return NoCustomer(db.first(_ERASED, {"external_id": request.external_id}) is not None)
    if row[0] is None:
        return NoGroup()
    params["customer_id"] = customer_id = int(row[-1])
    group = GroupRow(
        request.group_id,
        str(row[0]),
        db.read_time(row[1]),
        db.read_time(row[2]),
        bool(row[3]),
        None if row[-3] is None else int(row[-3]),
        str(row[-2]),
    )
    return _Found(db, params, row, customer_id, group, bool(row[4]), _prior(db, row[5:9]))


def attempt_initial(tx: Session | Driver, request: Request) -> Attempt | NoCustomer | NoGroup:
    """Look up the customer, the group and the key and, when the group is live, the key
    new and the customer under the group's limit, claim a code and record the initial
    issuance."""
    found = _look_up(tx, _PG_ISSUE, INITIAL, request)
    if not isinstance(found, _Found):
        return found
    db, row, prior = found.db, found.row, found.prior
    limit = found.group.customer_limit
    if limit is not None and prior is None and found.live:
        # PostgreSQL's first statement claimed nothing for a limited group: count first.
        if db.postgres:
            db.execute(_LOCK_CUSTOMER, found.params)
        counted = db.first(_STANDING_INITIALS, found.params)
        held = 0 if counted is None else int(counted[1])
        if held >= limit:
            # A call with this key may have committed while we waited for the lock:
            # then this is its retry, answered as it was.
            again = prior_issue(db, request.key, request.group_id, INITIAL)
            return found.attempt(None, again) if again else found.attempt(AtLimit(held))
        if db.postgres:
            row = db.first(_PG_ISSUE, {**found.params, "limit_checked": True})
            assert row is not None, "the claim returns one row, found or not"
            prior = _prior(db, row[5:9])  # a call with this key may have won meanwhile
    if db.postgres:
        return found.attempt(_pg_result(db, row), prior)
    # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other claimers.
    if prior is not None or not found.live:
        return found.attempt(None, prior)
    expiring = found.group.has_code_expiry
    for cond in (EXPIRING, NO_EXPIRY) if expiring else (NO_EXPIRY,):
        got = db.first(_SQLITE_CLAIM[cond], found.params)
        if got is None:
            continue
        inserted = db.first(_SQLITE_INSERT, {**found.params, "code_id": got[0]})
        db.execute(_BUMP, found.params)
        return found.attempt(Claimed(int(got[0]), str(got[1]), int(inserted[0])))
    return found.attempt(None)


def _pg_result(db: Driver, row: Sequence[Any]) -> Claimed | KeyTaken | None:
    """What PostgreSQL's claim statement did: claimed and recorded, claimed but the key
    was taken meanwhile (the code goes back at once: we still hold its lock), or
    nothing."""
    if row[9] is not None and row[11] is None:
        db.execute(_UNCLAIM, {"id": row[9]})
        return KeyTaken()
    if row[9] is not None:
        return Claimed(int(row[9]), str(row[10]), int(row[11]))
    return None


def attempt_repeat(tx: Session | Driver, request: Request) -> Attempt | NoCustomer | NoGroup:
    """Look up the customer, the group and the key and, when the group is live and the
    key new, record a repeat of the customer's latest standing initial issue from the
    group. A repeat takes no code, so racing calls with one key only meet at the unique
    key: the loser records nothing."""
    found = _look_up(tx, _LOOKUP, REPEAT, request)
    if not isinstance(found, _Found):
        return found
    if found.prior is not None or not found.live:
        return found.attempt(None, found.prior)
    db = found.db
    last = db.first(_LAST_INITIAL, found.params)
    if last is None or last[2] in HIDDEN:
        return found.attempt(None)
    inserted = db.first(_INSERT_REPEAT, {**found.params, "code_id": last[0]})
    result = (
        KeyTaken() if inserted is None else Claimed(int(last[0]), str(last[1]), int(inserted[0]))
    )
    return found.attempt(result)


def prior_issue(tx: Session | Driver, key: str, group_id: int, kind: str) -> Prior | None:
    """The issuance of this kind made with this key, with its code."""
    db = Driver.of(tx)
    row = db.first(_PRIOR, {"key": key, "group_id": group_id, "kind": kind})
    return None if row is None else _prior(db, row)
