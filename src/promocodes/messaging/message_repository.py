"""SQL of messages, the transactional outbox: writing a chunk's messages, leasing queued
ones for delivery, reading them back page by page, and counting them by status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, bindparam, func, select, text, union_all, update
from sqlalchemy.orm import Session

from promocodes.customers.models import Customer
from promocodes.db import rowcount
from promocodes.messaging.models import MESSAGE_STATUSES, Message
from promocodes.messaging.worker_repository import STALE_HOLDER
from promocodes.models import UTCDateTime

Owner = Literal["mailing", "campaign"]

# ``{0}`` stands for the driver's parameter mark (``?`` sqlite3, ``%s`` psycopg).
_INSERT_MESSAGES = (
    "INSERT INTO messages (key, mailing_id, customer_id, channel, recipient, status, "
    "skip_reason, error, subject, body_text, body_html, attempts, created_at, sent_at, "
    f"next_attempt_at, round) VALUES ({', '.join(['{0}'] * 16)})"
)

MessageRow = tuple[Any, ...]


def insert_rows(session: Session, rows: Sequence[MessageRow]) -> None:
    """A chunk's messages in one ``executemany`` on the driver (the ORM's bulk insert
    cost more per row than rendering the message did). Columns as ``_INSERT_MESSAGES``
    lists them; times in the driver's form."""
    if rows:
        conn = session.connection()
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        conn.exec_driver_sql(_INSERT_MESSAGES.format(mark), list(rows))


def add(session: Session, message: Message) -> Message:
    session.add(message)
    session.flush()
    return message


def by_key(session: Session, key: str, *, customer_id: int | None = None) -> Message | None:
    stmt = select(Message).where(Message.key == key)
    if customer_id is not None:
        stmt = stmt.where(Message.customer_id == customer_id)
    return session.scalar(stmt)


def get(session: Session, message_id: int) -> Message | None:
    return session.get(Message, message_id)


# --- delivery ---------------------------------------------------------------------------

_DUE = (
    "SELECT id FROM messages WHERE status = 'queued' AND next_attempt_at <= :now "
    "AND (lease_until IS NULL OR lease_until < :now OR "
    f"{STALE_HOLDER}) ORDER BY next_attempt_at, id LIMIT :limit"
)
_TIMES = (bindparam("now", type_=UTCDateTime), bindparam("stale", type_=UTCDateTime))
_DUE_SQLITE = text(_DUE).bindparams(*_TIMES)
_DUE_PG = text(_DUE + " FOR UPDATE OF messages SKIP LOCKED").bindparams(*_TIMES)


def lease_due(
    session: Session, owner: str, now: datetime, lease: timedelta, stale: datetime, limit: int
) -> list[tuple[Message, str]]:
    """Lease up to ``limit`` queued messages whose next attempt is due (not leased, or
    leased by a worker silent since ``stale``), with each customer's external id (what a
    webhook receiver knows them by)."""
    stmt = _DUE_PG if session.get_bind().dialect.name == "postgresql" else _DUE_SQLITE
    params = {"now": now, "stale": stale, "limit": limit}
    ids = list(session.execute(stmt, params).scalars())
    if not ids:
        return []
    session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(lease_until=now + lease, lease_owner=owner)
    )
    rows = session.execute(
        select(Message, Customer.external_id)
        .join(Customer, Customer.id == Message.customer_id)
        .where(Message.id.in_(ids))
        .order_by(Message.next_attempt_at, Message.id)
    )
    return [(m, ext) for m, ext in rows]


# --- reading the outbox -----------------------------------------------------------------


def _column(owner: Owner) -> Any:
    return Message.mailing_id if owner == "mailing" else Message.campaign_id


def _range(
    owner: Owner, owner_id: int, status: str, after_id: int | None, limit: int
) -> Select[Any]:
    stmt = select(Message.id).where(_column(owner) == owner_id, Message.status == status)
    if after_id is not None:
        stmt = stmt.where(Message.id > after_id)
    return stmt.order_by(Message.id).limit(limit)


def page(
    session: Session,
    owner: Owner,
    owner_id: int,
    *,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[Message, str]]:
    """Up to ``limit`` messages of the mailing or campaign after ``after_id``, in id
    (creation) order, with each customer's external id.

    The indexes are (mailing_id, status, id) and (campaign_id, status, id): they count a
    report's statuses and keep a status's messages in id order. Without a status filter
    a page merges the first ``limit`` ids of each status's range (a handful of short
    index scans) instead of sorting every message of a million-recipient mailing.
    """
    statuses = (status,) if status else MESSAGE_STATUSES
    ranges = [_range(owner, owner_id, s, after_id, limit).subquery().select() for s in statuses]
    merged = (ranges[0] if len(ranges) == 1 else union_all(*ranges)).subquery()
    ids = select(merged.c.id).order_by(merged.c.id).limit(limit).subquery()
    rows = session.execute(
        select(Message, Customer.external_id)
        .join(ids, ids.c.id == Message.id)
        .join(Customer, Customer.id == Message.customer_id)
        .order_by(Message.id)
    )
    return [(m, ext) for m, ext in rows]


# --- counting ---------------------------------------------------------------------------


def counts_by_status(
    session: Session, owner: Owner, owner_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """owner id -> status -> messages, for every listed mailing or campaign, in one
    statement (an index range per owner)."""
    out: dict[int, dict[str, int]] = {oid: {} for oid in owner_ids}
    if not owner_ids:
        return out
    column = _column(owner)
    rows = session.execute(
        select(column, Message.status, func.count())
        .where(column.in_(list(owner_ids)))
        .group_by(column, Message.status)
    )
    for owner_id, status, n in rows:
        out[owner_id][status] = int(n)
    return out


def waiting_by_channel(session: Session) -> dict[tuple[str, str], int]:
    """(channel, status) -> messages queued or failed (the delivery index)."""
    rows = session.execute(
        select(Message.channel, Message.status, func.count())
        .where(Message.status.in_(("queued", "failed")))
        .group_by(Message.channel, Message.status)
    )
    return {(channel, status): int(n) for channel, status, n in rows}


def skip_details(
    session: Session, mailing_id: int, limit: int
) -> list[tuple[str, str | None, int]]:
    """(reason, detail, messages) of the mailing's skipped messages, the most frequent
    first (an index range: the mailing's skipped messages)."""
    n = func.count().label("n")
    rows = session.execute(
        select(Message.skip_reason, Message.error, n)
        .where(Message.mailing_id == mailing_id, Message.status == "skipped")
        .group_by(Message.skip_reason, Message.error)
        .order_by(n.desc(), Message.skip_reason)
        .limit(limit)
    )
    return [(str(reason), error, int(count)) for reason, error, count in rows]


def redact_customer(session: Session, customer_id: int) -> int:
    """Empty the personal parts of a customer's stored messages (address, subject, bodies,
    the error that may quote them); returns how many messages had any."""
    personal = (
        Message.recipient.is_not(None)
        | Message.subject.is_not(None)
        | Message.body_text.is_not(None)
        | Message.body_html.is_not(None)
        | Message.error.is_not(None)
    )
    result = session.execute(
        update(Message)
        .where(Message.customer_id == customer_id, personal)
        .values(recipient=None, subject=None, body_text=None, body_html=None, error=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
