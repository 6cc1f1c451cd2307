"""SQL of web UI users and their login sessions. Nothing here commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from promocodes.db import rowcount
from promocodes.users.models import User, UserSession


def any_user(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def by_email(session: Session, address: str) -> User | None:
    return session.scalar(select(User).where(User.email == address))


def by_address_order(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def lock_all_roles(session: Session) -> dict[int, str]:
    """Every user's id and role, each row locked (FOR UPDATE on PostgreSQL), in id order."""
    rows = session.execute(select(User.id, User.role).order_by(User.id).with_for_update())
    return {uid: role for uid, role in rows}


def remove(session: Session, user: User) -> None:
    session.delete(user)
    session.flush()


def add_session(session: Session, row: UserSession) -> None:
    session.add(row)
    session.flush()


def get_session(session: Session, session_id: int) -> UserSession | None:
    return session.get(UserSession, session_id)


def session_by_token(session: Session, token_hash: str) -> tuple[UserSession, str, str] | None:
    """The session with this token digest, and its user's email and role."""
    row = session.execute(
        select(UserSession, User.email, User.role)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def end_sessions_of(session: Session, user_id: int) -> None:
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))


def end_session_by_token(session: Session, token_hash: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))


def end_expired(session: Session, now: datetime, batch: int | None = None) -> int:
    """Delete sessions past their expiry (at most ``batch`` of them, when given)."""
    expired = select(UserSession.id).where(UserSession.expires_at < now)
    if batch is not None:
        expired = expired.limit(batch)
    return rowcount(session.execute(delete(UserSession).where(UserSession.id.in_(expired))))
