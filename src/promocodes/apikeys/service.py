"""API keys: created once (the secret is shown once), stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from promocodes.apikeys.models import ApiKey
from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.errors import DomainError, NotFound
from promocodes.models import utcnow

PREFIX = "pc"
# last_used_at is bumped at most this often, so authenticating stays a read.
TOUCH_EVERY = timedelta(minutes=1)


class Unauthorized(DomainError):
    slug = "unauthorized"
    status = 401
    title = "Missing or invalid API key"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(session: Session, name: str, *, actor: Actor = SYSTEM) -> tuple[ApiKey, str]:
    """Returns the key row and the full token, which is never stored and never shown again."""
    name = name.strip()
    if not name:
        raise DomainError("an API key needs a name")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(name=name[:200], prefix=prefix, secret_hash=_hash(secret))
    session.add(key)
    session.flush()
    # The audit names the key and its public prefix, never the secret.
    record(
        session, actor, "apikey.created", Target("api_key", key.id, key.name), {"prefix": prefix}
    )
    return key, f"{PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, token: str | None) -> ApiKey:
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthorized("the API key is malformed")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    # Compare digests in constant time so timing says nothing about the secret.
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        raise Unauthorized("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthorized("the API key was revoked")
    return key


def needs_touch(key: ApiKey) -> bool:
    return key.last_used_at is None or utcnow() - key.last_used_at > TOUCH_EVERY


def touch(session: Session, key_id: int) -> None:
    key = session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = utcnow()


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key_id: int, *, actor: Actor = SYSTEM) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ApiKeyNotFound(f"API key {key_id} does not exist")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(session, actor, "apikey.revoked", Target("api_key", key.id, key.name))
    session.flush()
    return key
