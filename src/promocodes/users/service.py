"""Users and login sessions of the web UI.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed on login when the
defaults change). A session is a random token in an HttpOnly cookie; the database keeps
only its SHA-256, the user and a per-session CSRF token. Sessions slide: each use within
``IDLE`` extends them, but never beyond ``ABSOLUTE`` after the login.

Services take a session from the caller's transaction and only ``flush()``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from promocodes.models import utcnow
from promocodes.users import repository as repo
from promocodes.users import roles
from promocodes.users.models import User, UserSession
from promocodes.users.roles import ROLES, Role

MIN_PASSWORD = 8
# Hashing cost grows with the input; nobody types more than this.
MAX_PASSWORD = 1_024
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# last_seen_at/expires_at are written at most this often, so most requests only read.
TOUCH_EVERY = timedelta(minutes=5)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs the same time
    as a wrong password and response times do not tell which accounts exist. Made on the
    first login, not at import: hashing takes argon2's memory (64 MiB), and the worker,
    which imports this module to prune sessions, never logs anyone in."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserExists(Conflict):
    slug = "user-exists"
    title = "User already exists"


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "User not found"


class LastUser(Conflict):
    slug = "last-user"
    title = "The last user cannot be removed"


class LastAdmin(Conflict):
    slug = "last-admin"
    title = "The last administrator must stay one"


class RoleMissing(Forbidden):
    slug = "role-missing"
    title = "Not allowed for your role"


def _role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise ValidationFailed(f"the role must be one of {', '.join(ROLES)} (not {value!r})")


class InvalidCredentials(DomainError):
    slug = "invalid-credentials"
    status = 401
    title = "Invalid email or password"


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() for ch in value):
        raise ValidationFailed(f"{email.strip()!r} is not an email address")
    if len(value) > 320:
        raise ValidationFailed("the email address is longer than 320 characters")
    return value


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(f"the password is longer than {MAX_PASSWORD} characters")


def create_user(
    session: Session, email: str, password: str, *, role: str, actor: Actor = SYSTEM
) -> User:
    address = normalize_email(email)
    _check_password(password)
    checked = _role(role)
    if repo.by_email(session, address) is not None:
        raise UserExists(f"a user {address!r} already exists")
    user = User(email=address, password_hash=_hasher.hash(password), role=checked)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # created concurrently between the check and the insert
        raise UserExists(f"a user {address!r} already exists") from exc
    record(session, actor, "user.created", Target("user", user.id, address), {"role": checked})
    return user


def set_role(session: Session, user_id: int, role: str, *, actor: Actor = SYSTEM) -> User:
    """Give a user another role. The last administrator stays one: someone must always
    be able to manage users and keys."""
    checked = _role(role)
    roles = repo.lock_all_roles(session)  # as delete_user: racing changes queue here
    user = get(session, user_id)
    if user.role == checked:
        return user
    admins = [uid for uid, r in roles.items() if r == "admin"]
    if user.role == "admin" and admins == [user.id]:
        raise LastAdmin(f"{user.email} is the only administrator; make someone else one first")
    previous, user.role, user.updated_at = user.role, checked, utcnow()
    session.flush()
    record(
        session,
        actor,
        "user.role_changed",
        Target("user", user.id, user.email),
        {"from": previous, "to": checked},
    )
    return user


def generate_password() -> str:
    """A password for someone else to receive once (a new user, a reset): 16 URL-safe
    characters, 96 random bits."""
    return secrets.token_urlsafe(12)


def get(session: Session, user_id: int) -> User:
    user = repo.get(session, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} does not exist")
    return user


def change_own_password(
    session: Session, user_id: int, current: str, new: str, *, actor: Actor = SYSTEM
) -> User:
    """A logged-in user changes their password, proving the current one first (a session
    left open on a shared screen must not be enough). Every session ends, this one too."""
    user = get(session, user_id)
    try:
        _hasher.verify(user.password_hash, current[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("the current password is not right") from None
    return set_password(session, user.email, new, actor=actor)


def get_by_email(session: Session, email: str) -> User:
    address = normalize_email(email)
    user = repo.by_email(session, address)
    if user is None:
        raise UserNotFound(f"no user {address!r}")
    return user


def list_users(session: Session) -> list[User]:
    return repo.by_address_order(session)


def set_password(session: Session, email: str, password: str, *, actor: Actor = SYSTEM) -> User:
    """Change a password; every session of the user ends (a reset is often a lockout)."""
    user = get_by_email(session, email)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.updated_at = utcnow()
    repo.end_sessions_of(session, user.id)
    session.flush()
    record(session, actor, "user.password_changed", Target("user", user.id, user.email))
    return user


def delete_user(session: Session, email: str, *, actor: Actor = SYSTEM) -> None:
    """Remove a user (someone who left): their sessions end at once and they can no
    longer log in. The audit log keeps what they did; it names actors by email, not by
    row. The last user is kept, so the web UI always has someone who can log in."""
    user = get_by_email(session, email)
    # Every user row locked, in id order (there are few): two removals racing on
    # PostgreSQL queue here instead of each seeing the other's user still there and
    # leaving none (or deadlocking, had each locked only the other's row).
    standing = repo.lock_all_roles(session)
    if user.id not in standing:
        raise UserNotFound(f"no user {user.email!r}")
    if len(standing) == 1:
        raise LastUser(f"{user.email} is the only user; create another one before removing it")
    if [uid for uid, role in standing.items() if role == "admin"] == [user.id]:
        raise LastAdmin(f"{user.email} is the only administrator; make someone else one first")
    target = Target("user", user.id, user.email)
    repo.end_sessions_of(session, user.id)
    repo.remove(session, user)
    record(session, actor, "user.deleted", target)


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with this email and password; InvalidCredentials (never saying which of
    the two was wrong) otherwise."""
    try:
        address = normalize_email(email)
    except ValidationFailed:
        address = ""
    user = repo.by_email(session, address) if address else None
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("the email or the password is not right") from None
    if user is None:  # pragma: no cover - the dummy hash's password is never guessed
        raise InvalidCredentials("the email or the password is not right")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User) -> str:
    """Log ``user`` in: returns the token for the cookie (never stored as such)."""
    now = utcnow()
    # Housekeeping on login: expired sessions of anyone are of no use.
    repo.end_expired(session, now)
    token = secrets.token_urlsafe(32)
    repo.add_session(
        session,
        UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + IDLE,
        ),
    )
    return token


@dataclass(frozen=True, slots=True)
class Active:
    """A live session, as a request sees it."""

    session_id: int
    user_id: int
    email: str
    role: str
    csrf_token: str
    needs_touch: bool

    def require(self, method: str, path: str) -> None:
        """Refuse what this user's role may not do (``users/roles.py``)."""
        wanted = roles.needed(method, path)
        if not roles.allows(self.role, wanted):
            doing = "read this page" if method in ("GET", "HEAD") else "make this change"
            raise RoleMissing(
                f"your role ({self.role}) may not {doing}: it needs {wanted}. "
                "Ask an administrator if you need it."
            )


def resolve(session: Session, token: str | None, now: datetime | None = None) -> Active | None:
    """The live session of a cookie token, or None (no token, unknown, expired)."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = repo.session_by_token(session, _digest(token))
    if row is None:
        return None
    found, email, role = row
    if found.expires_at <= now or found.created_at + ABSOLUTE <= now:
        return None
    return Active(
        session_id=found.id,
        user_id=found.user_id,
        email=email,
        role=role,
        csrf_token=found.csrf_token,
        needs_touch=now - found.last_seen_at > TOUCH_EVERY,
    )


def touch(session: Session, session_id: int) -> None:
    """Slide the session's expiry (capped at ABSOLUTE after the login)."""
    found = repo.get_session(session, session_id)
    if found is None:
        return
    now = utcnow()
    found.last_seen_at = now
    found.expires_at = min(now + IDLE, found.created_at + ABSOLUTE)
    session.flush()


def end_session(session: Session, token: str | None) -> None:
    """Log out: the session row goes, so the cookie is worthless even if kept."""
    if token:
        repo.end_session_by_token(session, _digest(token))


def prune_sessions(session: Session, now: datetime, batch: int) -> int:
    """End up to ``batch`` sessions past their expiry (logins clear them too, but a quiet
    instance has none)."""
    return repo.end_expired(session, now, batch)
