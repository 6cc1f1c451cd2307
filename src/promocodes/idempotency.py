"""``Idempotency-Key`` for API calls that change state.

The first successful response to a key is stored and replayed to every retry with the
same request; the same key with a different request is refused (422). The check, the
state change and the stored response are one transaction: a crash leaves all or none.
The state change is also idempotent on its own (issuance is keyed by
``api:<api key>:<key>``), which settles two identical requests racing through the check.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from promocodes.apikeys import service as apikeys
from promocodes.db import Database, Driver
from promocodes.errors import IdempotencyKeyReused

M = TypeVar("M", bound=BaseModel)


def _fingerprint(path: str, body: BaseModel) -> str:
    return hashlib.sha256(f"{path}\n{body.model_dump_json()}".encode()).hexdigest()


# The issuance key column's size. A client's key may take 200 characters itself.
_OPERATION_KEY_SIZE = 200


def _operation_key(api_key_id: int, key: str) -> str:
    """``api:<api key>:<key>``; when that is longer than the issuance key column holds
    (PostgreSQL refuses the row where SQLite would store it), the key's SHA-256 instead:
    still one operation per (API key, key)."""
    operation = f"api:{api_key_id}:{key}"
    if len(operation) <= _OPERATION_KEY_SIZE:
        return operation
    return f"api:{api_key_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def idempotent(
    api_key_id: int,
    key: str | None,
    path: str,
    body: BaseModel,
    out: type[M],
    run: Callable[[Driver, str], M],
) -> Callable[[Driver], M]:
    """The work of a call with ``key``, for one write transaction (``driver_write()``, or
    a ``GroupCommit``): ``run(transaction, operation_key)`` at most once per (API key,
    idempotency key), with the check and the stored response."""
    if key is None:
        # Made once: a write taken again after a failed transaction reuses it.
        auto = f"api:{api_key_id}:auto:{uuid.uuid4().hex}"
        return lambda tx: run(tx, auto)
    operation = _operation_key(api_key_id, key)
    fingerprint = _fingerprint(path, body)
    return lambda tx: _once(
        lambda: tx, api_key_id, key, fingerprint, out, lambda: run(tx, operation)
    )


def idempotent_session(
    db: Database,
    api_key_id: int,
    key: str | None,
    path: str,
    body: BaseModel,
    out: type[M],
    run: Callable[[Session], M],
) -> M:
    """``idempotent`` for work done through a Session (a mailing's resend, say)."""
    with db.write() as session:
        if key is None:
            return run(session)
        fingerprint = _fingerprint(path, body)
        return _once(
            lambda: Driver.of(session), api_key_id, key, fingerprint, out, lambda: run(session)
        )


def _once(
    tx: Callable[[], Driver],
    api_key_id: int,
    key: str,
    fingerprint: str,
    out: type[M],
    run: Callable[[], M],
) -> M:
    record = apikeys.stored_answer(tx(), api_key_id, key)
    if record is not None:
        return _replay(record, fingerprint, out)
    result = run()
    if apikeys.store_answer(tx(), api_key_id, key, fingerprint, result.model_dump_json()):
        return result
    # Another request with this key committed its record meanwhile (PostgreSQL; SQLite
    # serialises writers): that one stands, and is the answer.
    record = apikeys.stored_answer(tx(), api_key_id, key)
    assert record is not None
    return _replay(record, fingerprint, out)


def _replay(record: tuple[str, str], fingerprint: str, out: type[M]) -> M:
    """The stored response of ``(request_hash, response)``, if the request matches."""
    request_hash, response = record
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; "
            "use a new key for a new request"
        )
    return out.model_validate_json(response)
