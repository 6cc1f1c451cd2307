"""SQL of code rows: the upload's bulk insert, look-ups, withdrawal, (un)blocking, pages.
Hot bulk paths use the driver directly (see ``insert_codes``); nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from promocodes.codes.code_text import invalid_reason
from promocodes.codes.models import AVAILABLE, BLOCKED, INITIAL, Code, Issuance
from promocodes.customers.models import Customer
from promocodes.db import rowcount
from promocodes.models import sqlite_timestamp


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


def set_blocked(session: Session, code_id: int, expected_status: str, now: datetime) -> bool:
    result = session.execute(
        update(Code)
        .where(Code.id == code_id, Code.status == expected_status)
        .values(status=BLOCKED, blocked_at=now)
    )
    return rowcount(result) == 1


def set_unblocked(session: Session, code_id: int, to_status: str) -> bool:
    """Blocked → ``to_status``, only if the code is still blocked. A code going back to
    stock loses its ``issued_at``: its issuance was voided, and a new claim sets it again."""
    values: dict[str, object] = {"status": to_status, "blocked_at": None}
    if to_status == AVAILABLE:
        values["issued_at"] = None
    result = session.execute(
        update(Code).where(Code.id == code_id, Code.status == BLOCKED).values(**values)
    )
    return rowcount(result) == 1


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A code as its group's pages and exports show it, with the customer it stands
    issued to (initially, not voided)."""

    id: int
    code: str
    status: str
    customer_id: str | None
    issued_at: datetime | None
    redeemed_at: datetime | None
    valid_until: datetime | None


def code_page(
    session: Session, group_id: int, *, status: str | None, after_id: int | None, limit: int
) -> list[CodeRow]:
    """A page of a group's codes in id order, after ``after_id``."""
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
    return [CodeRow(*row) for row in session.execute(stmt.order_by(Code.id).limit(limit))]
