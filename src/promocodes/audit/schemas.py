"""API shapes of the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditActorOut(BaseModel):
    kind: str
    id: str | None
    name: str


class AuditTargetOut(BaseModel):
    type: str
    id: str | None
    name: str | None


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    action: str
    actor: AuditActorOut
    target: AuditTargetOut
    details: dict[str, Any]
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Filters:
    """What to show of the log (every field optional): see ``service.entries``."""

    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
