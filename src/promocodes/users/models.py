"""Tables of the users domain: web UI accounts and their server-side login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.models import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Trimmed and lower-cased, so "Ann@X.io" and "ann@x.io " are one account.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # argon2id, in the PHC string format ("$argon2id$v=19$m=…").
    password_hash: Mapped[str] = mapped_column(String(200))
    # admin | marketer | viewer (``users/roles.py``). Accounts from before roles existed
    # are administrators (the server default); new ones are given a role explicitly.
    role: Mapped[str] = mapped_column(String(16), server_default="admin")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A login. The cookie carries a random token; only its SHA-256 is stored (a leaked
    database does not log anyone in), so logging out or expiry ends it for good, and any
    number of stateless web processes share it."""

    __tablename__ = "user_sessions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The per-session CSRF token every form and htmx request must echo.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
