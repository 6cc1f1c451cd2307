"""SQL of API keys and of the stored answers of idempotent calls. Nothing here commits.

The idempotency statements are prebuilt for the driver connection: the issue route runs
on ``Database.driver_write()``, without a Session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from promocodes.apikeys.models import ApiKey, IdempotencyRecord
from promocodes.db import Driver, RawSQL, rowcount


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


def by_prefix(session: Session, prefix: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))


def get(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def all_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# --- idempotency records ---------------------------------------------------------------

_RECORD = RawSQL.of(
    "SELECT request_hash, response FROM idempotency_records "
    "WHERE api_key_id = :api_key_id AND key = :key"
)
_SAVE = RawSQL.of(
    "INSERT INTO idempotency_records (api_key_id, key, request_hash, status_code, response, "
    "created_at) VALUES (:api_key_id, :key, :request_hash, 200, :response, :now) "
    "ON CONFLICT (api_key_id, key) DO NOTHING"
)


def stored(tx: Driver, api_key_id: int, key: str) -> tuple[str, str] | None:
    """(request hash, response) stored for the key, if any."""
    row: Any = tx.first(_RECORD, {"api_key_id": api_key_id, "key": key})
    return None if row is None else (str(row[0]), str(row[1]))


def store(
    tx: Driver, api_key_id: int, key: str, request_hash: str, response: str, now: datetime
) -> bool:
    """Store the answer, unless one was stored meanwhile (then it stands: False)."""
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "request_hash": request_hash,
        "response": response,
        "now": tx.bind_time(now),
    }
    return tx.execute(_SAVE, params) == 1


def prune_records(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` records created before ``before``, oldest first."""
    r = IdempotencyRecord
    old = select(r.api_key_id, r.key).where(r.created_at < before).order_by(r.created_at)
    stmt = delete(r).where(tuple_(r.api_key_id, r.key).in_(old.limit(batch)))
    return rowcount(session.execute(stmt))
