"""SQL of the codes domain. Services call these inside their transaction; nothing here
commits. Hot bulk paths use the driver directly (see ``insert_codes``)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Row, delete, func, select, text, update
from sqlalchemy.orm import Session

from promocodes.codes.importer import invalid_reason
from promocodes.codes.models import (
    AVAILABLE,
    BLOCKED,
    COUNTER_STRIPES,
    Code,
    CodeGroup,
    GroupCounter,
    Upload,
)
from promocodes.codes.schemas import Counts
from promocodes.db import rowcount
from promocodes.models import sqlite_timestamp

COUNTER_FIELDS = ("total", "available", "issued", "redeemed", "blocked")


# --- groups -----------------------------------------------------------------------------


def add_group(session: Session, group: CodeGroup) -> CodeGroup:
    session.add(group)
    session.flush()
    # All stripes exist from the start, so counter changes are plain UPDATEs (no upsert
    # race between two first claimers).
    session.add_all(GroupCounter(group_id=group.id, slot=s) for s in range(COUNTER_STRIPES))
    session.flush()
    return group


def get_group(session: Session, group_id: int, *, live: bool = True) -> CodeGroup | None:
    group = session.get(CodeGroup, group_id)
    if group is None or (live and group.archived_at is not None):
        return None
    return group


def lock_group(session: Session, group_id: int, *, key_share: bool = False) -> CodeGroup | None:
    """The live group, locked until the transaction ends (on PostgreSQL; SQLite has one
    writer at a time).

    Codes carry no foreign key to their group (codes/models.py), so locks keep the
    promise: an upload takes ``key_share`` (FOR KEY SHARE: blocks only the group's
    deletion, not other uploads, claims or edits), and a delete takes FOR UPDATE, which
    waits for those uploads and keeps new ones out.
    """
    group = session.scalar(
        select(CodeGroup)
        .where(CodeGroup.id == group_id)
        .with_for_update(key_share=key_share)
        .execution_options(populate_existing=True)
    )
    if group is None or group.archived_at is not None:
        return None
    return group


def find_live_group(session: Session, key: str) -> CodeGroup | None:
    return session.scalar(
        select(CodeGroup).where(CodeGroup.name_key == key, CodeGroup.archived_at.is_(None))
    )


def list_live_groups(
    session: Session, *, after_id: int | None, limit: int, search: str | None = None
) -> list[CodeGroup]:
    stmt = select(CodeGroup).where(CodeGroup.archived_at.is_(None))
    if after_id is not None:
        stmt = stmt.where(CodeGroup.id > after_id)
    if search:
        pattern = (
            "%"
            + search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        stmt = stmt.where(CodeGroup.name_key.like(pattern, escape="\\"))
    return list(session.scalars(stmt.order_by(CodeGroup.id).limit(limit)))


def has_issuances(session: Session, group_id: int) -> bool:
    """Whether any code of the group was ever issued, voided issuances included. Walks
    the group's codes (ix_codes_group_status) and probes issuances by code."""
    return bool(
        session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM codes c JOIN issuances i ON i.code_id = c.id "
                "WHERE c.group_id = :group_id)"
            ),
            {"group_id": group_id},
        )
    )


def delete_group_with_codes(session: Session, group_id: int) -> None:
    # Waits for uploads in flight into this group (they hold it FOR KEY SHARE) and keeps
    # new ones out, so the DELETE of codes below sees every code the group will ever get.
    session.execute(select(CodeGroup.id).where(CodeGroup.id == group_id).with_for_update())
    session.execute(delete(Code).where(Code.group_id == group_id))
    session.execute(delete(Upload).where(Upload.group_id == group_id))
    session.execute(delete(GroupCounter).where(GroupCounter.group_id == group_id))
    session.execute(delete(CodeGroup).where(CodeGroup.id == group_id))


# --- counters ---------------------------------------------------------------------------


def counts(session: Session, group_ids: Sequence[int]) -> dict[int, Counts]:
    """Sum each group's stripes: a handful of rows per group, never the codes."""
    if not group_ids:
        return {}
    rows = session.execute(
        select(
            GroupCounter.group_id,
            *(func.sum(getattr(GroupCounter, f)) for f in COUNTER_FIELDS),
        )
        .where(GroupCounter.group_id.in_(group_ids))
        .group_by(GroupCounter.group_id)
    )
    out = {gid: Counts() for gid in group_ids}
    for gid, total, available, issued, redeemed, blocked in rows:
        out[gid] = Counts(
            total=total, active=available, issued=issued, redeemed=redeemed, blocked=blocked
        )
    return out


_BUMP = text(
    "UPDATE group_counters SET total = total + :total, available = available + :available, "
    "issued = issued + :issued, redeemed = redeemed + :redeemed, blocked = blocked + :blocked "
    "WHERE group_id = :group_id AND slot = :slot"
)


def bump_counters(
    session: Session,
    group_id: int,
    *,
    slot: int | None = None,
    total: int = 0,
    available: int = 0,
    issued: int = 0,
    redeemed: int = 0,
    blocked: int = 0,
) -> None:
    """Apply counter deltas to one stripe (random unless given), in the caller's
    transaction. A prebuilt statement: this runs once per claim."""
    if not (total or available or issued or redeemed or blocked):
        return
    session.execute(
        _BUMP,
        {
            "group_id": group_id,
            "slot": random.randrange(COUNTER_STRIPES) if slot is None else slot,
            "total": total,
            "available": available,
            "issued": issued,
            "redeemed": redeemed,
            "blocked": blocked,
        },
    )


def recount(session: Session, group_id: int) -> Counts:
    """Counts derived from the code rows themselves: the truth the counters must equal.
    A full scan; for checks and tests, never for a request path."""
    c = Code
    row = session.execute(
        select(
            func.count(),
            func.count().filter(c.status == AVAILABLE),
            func.count(c.issued_at),
            func.count(c.redeemed_at),
            func.count().filter(c.status == BLOCKED),
        ).where(c.group_id == group_id)
    ).one()
    return Counts(total=row[0], active=row[1], issued=row[2], redeemed=row[3], blocked=row[4])


# --- codes ------------------------------------------------------------------------------


def max_code_id(session: Session) -> int:
    return session.scalar(select(func.max(Code.id))) or 0


def insert_codes(
    session: Session,
    group_id: int,
    upload_id: int,
    codes: Sequence[str],
    valid_until: Sequence[datetime | None] | None,
    now: datetime,
    *,
    copy: bool = False,
) -> int | None:
    """Insert a sorted batch of codes (with their expiries when given), skipping codes
    that exist anywhere. Returns how many rows were inserted.

    This is the upload hot path, so it bypasses the ORM: one ``executemany`` on SQLite
    (sqlite3 sums its rowcount over the rows), and on PostgreSQL one ``INSERT … SELECT
    unnest(…) ON CONFLICT DO NOTHING``, or with ``copy`` a ``COPY`` (the fastest way in,
    but all or nothing): when any code of the batch exists, ``None`` is returned and
    nothing of the batch is written.
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        ts = sqlite_timestamp(now)
        expiries = valid_until or [None] * len(codes)
        rows = [
            (code, group_id, upload_id, sqlite_timestamp(vu) if vu else None, ts)
            for code, vu in zip(codes, expiries, strict=True)
        ]
        result = conn.exec_driver_sql(
            "INSERT INTO codes (code, group_id, upload_id, valid_until, created_at, status) "
            "VALUES (?, ?, ?, ?, ?, 'available') ON CONFLICT (code) DO NOTHING",
            rows,
        )
        return int(result.rowcount)
    if copy:
        return _copy_codes(session, group_id, upload_id, codes, valid_until, now)
    result = conn.exec_driver_sql(
        "INSERT INTO codes (code, group_id, upload_id, valid_until, created_at, status) "
        "SELECT c, %(group_id)s, %(upload_id)s, v, %(now)s, 'available' "
        "FROM unnest(%(codes)s::text[], %(valid)s::timestamptz[]) AS t(c, v) "
        "ON CONFLICT (code) DO NOTHING",
        {
            "group_id": group_id,
            "upload_id": upload_id,
            "now": now,
            "codes": list(codes),
            "valid": list(valid_until or [None] * len(codes)),
        },
    )
    return int(result.rowcount)


_COPY_NULL = "\\N"


def _copy_codes(
    session: Session,
    group_id: int,
    upload_id: int,
    codes: Sequence[str],
    valid_until: Sequence[datetime | None] | None,
    now: datetime,
) -> int | None:
    # Valid codes are [A-Za-z0-9_-] only, so COPY's text format needs no escaping and the
    # constant columns can be joined on as one suffix.
    created = now.isoformat()
    if valid_until is None:
        tail = f"\t{group_id}\t{upload_id}\t{_COPY_NULL}\t{created}\tavailable\n"
        data = tail.join(codes) + tail
    else:
        data = "".join(
            f"{code}\t{group_id}\t{upload_id}\t{vu.isoformat() if vu else _COPY_NULL}"
            f"\t{created}\tavailable\n"
            for code, vu in zip(codes, valid_until, strict=True)
        )
    savepoint = session.begin_nested()
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(
                "COPY codes (code, group_id, upload_id, valid_until, created_at, status) FROM STDIN"
            ) as stream,
        ):
            stream.write(data)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return None
    savepoint.commit()
    return len(codes)


@dataclass(frozen=True, slots=True)
class ExistingCode:
    code: str
    id: int
    group_id: int
    upload_id: int | None


def existing_codes(session: Session, codes: Iterable[str]) -> list[ExistingCode]:
    rows = session.execute(
        select(Code.code, Code.id, Code.group_id, Code.upload_id).where(Code.code.in_(list(codes)))
    )
    return [ExistingCode(*row) for row in rows]


def group_names(session: Session, group_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(group_ids))
    if not ids:
        return {}
    rows = session.execute(select(CodeGroup.id, CodeGroup.name).where(CodeGroup.id.in_(ids)))
    return {gid: name for gid, name in rows}


def get_code(session: Session, code: str) -> Code | None:
    # A string that cannot be a code is not looked up (nor sent to the database, which
    # may refuse it outright, as PostgreSQL does NUL characters).
    if invalid_reason(code) is not None:
        return None
    return session.scalar(select(Code).where(Code.code == code))


def withdraw_available(session: Session, group_id: int, upload_id: int) -> int:
    result = session.execute(
        delete(Code).where(
            Code.group_id == group_id, Code.status == AVAILABLE, Code.upload_id == upload_id
        )
    )
    return rowcount(result)


def iter_codes(
    session: Session,
    group_id: int,
    *,
    status: str | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    chunk: int = 5_000,
) -> Iterator[Row[Any]]:
    """A group's code rows in id order, fetched in keyset pages so an export of millions
    never holds them all. Rows carry ``Code``'s columns by name."""
    last = after_id
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk if remaining is None else min(chunk, remaining)
        stmt = select(*Code.__table__.columns).where(Code.group_id == group_id)
        if status:
            stmt = stmt.where(Code.status == status)
        if last is not None:
            stmt = stmt.where(Code.id > last)
        page = session.execute(stmt.order_by(Code.id).limit(size)).all()
        yield from page
        if len(page) < size:
            return
        last = page[-1].id
        if remaining is not None:
            remaining -= len(page)


# --- uploads ----------------------------------------------------------------------------


def list_uploads(session: Session, group_id: int | None, limit: int = 100) -> list[Upload]:
    stmt = select(Upload)
    if group_id is not None:
        stmt = stmt.where(Upload.group_id == group_id)
    return list(session.scalars(stmt.order_by(Upload.id.desc()).limit(limit)))


def set_blocked(session: Session, code_id: int, expected_status: str, now: datetime) -> bool:
    result = session.execute(
        update(Code)
        .where(Code.id == code_id, Code.status == expected_status)
        .values(status=BLOCKED, blocked_at=now)
    )
    return rowcount(result) == 1


def code_page(
    session: Session, group_id: int, *, status: str | None, after_id: int | None, limit: int
) -> list[Any]:
    """A page of a group's codes with the customer who received each initially."""
    from promocodes.codes.models import INITIAL, Issuance
    from promocodes.customers.models import Customer

    stmt = (
        select(
            Code.id,
            Code.code,
            Code.status,
            Customer.external_id.label("customer_id"),
            Code.issued_at,
            Code.redeemed_at,
            Code.valid_until,
        )
        .outerjoin(
            Issuance,
            (Issuance.code_id == Code.id)
            & (Issuance.kind == INITIAL)
            & Issuance.voided_at.is_(None),
        )
        .outerjoin(Customer, Customer.id == Issuance.customer_id)
        .where(Code.group_id == group_id)
    )
    if status:
        stmt = stmt.where(Code.status == status)
    if after_id is not None:
        stmt = stmt.where(Code.id > after_id)
    return list(session.execute(stmt.order_by(Code.id).limit(limit)).all())
