"""API keys and idempotency records of the REST API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.models import Base, UTCDateTime, utcnow


class ApiKey(Base):
    """Only a SHA-256 of the secret is stored: keys are 256-bit random, so a fast hash is
    as strong as a slow one here (argon2 is for human passwords)."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The public part of the key ("pc_<prefix>_…"), to find the row without a scan.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Comma-separated (``apikeys/scopes.py``); keys from before scopes had every one.
    scopes: Mapped[str] = mapped_column(String(100), server_default="read,issue,redeem,manage")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The first response to a request with an ``Idempotency-Key``, replayed to retries.
    ``request_hash`` tells a retry (same body) from a misuse (same key, other body)."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
