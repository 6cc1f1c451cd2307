"""API shapes of the audit log."""

from __future__ import annotations

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
