"""Customers: people in the platform's base, keyed by the integrator's external id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.models import Base, UTCDateTime, utcnow

# JSONB on PostgreSQL (indexable, used by segment filters); JSON1 text on SQLite.
Attributes = JSON().with_variant(JSONB(), "postgresql")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(Attributes, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when the person's data was erased: the row stays (under a pseudonymous external
    # id) so issuances, counts and segments keep adding up.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
