"""The audit log: one row per sensitive action, written in the action's own transaction.

Rows are only ever inserted. The database refuses UPDATE and DELETE on the table (see the
migration ``0007_audit_log``), so no interface, bug or later code path can rewrite history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.models import Base, BigId, UTCDateTime, utcnow

ACTOR_KINDS = ("api_key", "user", "cli", "system")


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        # Filters of the list: by action, by actor, by target; each pages by id.
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_actor_name_id", "actor_name", "id"),
        Index("ix_audit_log_target_type_target_id_id", "target_type", "target_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    # The API key's or user's id (None for the CLI and the system).
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # The API key's name, the user's email, the OS user of a CLI command, or "system".
    actor_name: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(200))
    target_name: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
