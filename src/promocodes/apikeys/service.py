"""API keys: created once (the secret is shown once), stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from promocodes.apikeys import repository as repo
from promocodes.apikeys.models import ApiKey
from promocodes.apikeys.scopes import SCOPES, needed, parse, unknown
from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.db import Driver
from promocodes.errors import DomainError, Forbidden, NotFound, ValidationFailed
from promocodes.models import utcnow

PREFIX = "pc"
# last_used_at is bumped at most this often, so authenticating stays a read.
TOUCH_EVERY = timedelta(minutes=1)


class Unauthorized(DomainError):
    slug = "unauthorized"
    status = 401
    title = "Missing or invalid API key"


class ScopeMissing(Forbidden):
    slug = "scope-missing"
    title = "The API key lacks the scope this call needs"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    session: Session,
    name: str,
    *,
    scopes: Sequence[str] = SCOPES,
    actor: Actor = SYSTEM,
) -> tuple[ApiKey, str]:
    """Returns the key row and the full token, which is never stored and never shown
    again. The key may do what its ``scopes`` allow, nothing else."""
    name = name.strip()
    if not name:
        raise DomainError("an API key needs a name")
    if bad := unknown(list(scopes)):
        raise ValidationFailed(
            f"unknown scope {', '.join(map(repr, bad))}: the scopes are {', '.join(SCOPES)}"
        )
    given = parse(",".join(scopes))
    if not given:
        raise ValidationFailed("an API key needs at least one scope")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = repo.add(
        session,
        ApiKey(name=name[:200], prefix=prefix, secret_hash=_hash(secret), scopes=",".join(given)),
    )
    # The audit names the key and its public prefix, never the secret.
    record(
        session,
        actor,
        "apikey.created",
        Target("api_key", key.id, key.name),
        {"prefix": prefix, "scopes": list(given)},
    )
    return key, f"{PREFIX}_{prefix}_{secret}"


def require_scope(key: ApiKey, method: str, path: str) -> None:
    """Refuse a call outside the key's scopes, naming the scope it needs."""
    wanted = needed(method, path)
    if wanted not in parse(key.scopes):
        raise ScopeMissing(
            f"this API key may {', '.join(parse(key.scopes))}; {method} {path} needs the "
            f"scope {wanted!r}. Create a key with it in Settings → API keys.",
            scope=wanted,
        )


def authenticate(session: Session, token: str | None) -> ApiKey:
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthorized("the API key is malformed")
    key = repo.by_prefix(session, parts[1])
    # Compare digests in constant time so timing says nothing about the secret.
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        raise Unauthorized("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthorized("the API key was revoked")
    return key


def needs_touch(key: ApiKey) -> bool:
    return key.last_used_at is None or utcnow() - key.last_used_at > TOUCH_EVERY


def touch(session: Session, key_id: int) -> None:
    key = repo.get(session, key_id)
    if key is not None:
        key.last_used_at = utcnow()


def list_keys(session: Session) -> list[ApiKey]:
    return repo.all_keys(session)


def revoke(session: Session, key_id: int, *, actor: Actor = SYSTEM) -> ApiKey:
    key = repo.get(session, key_id)
    if key is None:
        raise ApiKeyNotFound(f"API key {key_id} does not exist")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(session, actor, "apikey.revoked", Target("api_key", key.id, key.name))
    session.flush()
    return key


# --- idempotent calls --------------------------------------------------------------------


def stored_answer(tx: Driver, api_key_id: int, key: str) -> tuple[str, str] | None:
    """(request fingerprint, response JSON) an earlier call with this key stored."""
    return repo.stored(tx, api_key_id, key)


def store_answer(tx: Driver, api_key_id: int, key: str, fingerprint: str, response: str) -> bool:
    """Keep the first answer to the key for its retries; False when one was stored
    meanwhile (that one stands)."""
    return repo.store(tx, api_key_id, key, fingerprint, response, utcnow())


def prune_answers(session: Session, before: datetime, batch: int) -> int:
    """Forget up to ``batch`` answers stored before ``before`` (retries after that are
    new calls)."""
    return repo.prune_records(session, before, batch)
