"""Recording sensitive actions: who did what to what, and when.

``record`` only adds and flushes in the caller's transaction, so an entry commits with
the action it describes or not at all: a failed action leaves no entry, and an action is
recorded exactly once however often its transaction is retried. Services that perform a
sensitive action call it themselves, with the ``Actor`` their caller passed down: the
API's key, the web UI's user, the CLI's OS user, or the system.

Details carry counts and names, never secrets (API key tokens, passwords).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from promocodes import logs
from promocodes.audit import repository as repo
from promocodes.audit.models import AuditEntry
from promocodes.audit.schemas import Filters

ActorKind = Literal["api_key", "user", "cli", "system"]
TargetType = Literal[
    "group",
    "upload",
    "code",
    "redemptions",
    "api_key",
    "user",
    "mailing",
    "campaign",
    "customer",
    "alert",
    "segment",
]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an action, as the interface that received it knows them."""

    kind: ActorKind
    name: str
    id: str | None = None
    request_id: str | None = None

    @classmethod
    def api_key(cls, key_id: int, name: str, *, request_id: str | None = None) -> Actor:
        return cls("api_key", name, str(key_id), request_id)

    @classmethod
    def user(cls, user_id: int, email: str, *, request_id: str | None = None) -> Actor:
        return cls("user", email, str(user_id), request_id)

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system user running a CLI command."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
            name = "unknown"
        return cls("cli", name)


# Work no person asked for directly (workers, direct service calls such as scripts).
SYSTEM = Actor("system", "system")


@dataclass(frozen=True, slots=True)
class Target:
    type: TargetType
    id: str | int | None
    name: str | None = None


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: Target,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the caller's transaction (flushed, not committed)."""
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name[:320],
        action=action,
        target_type=target.type,
        target_id=None if target.id is None else str(target.id)[:200],
        target_name=None if target.name is None else target.name[:320],
        details=details or {},
        # The HTTP request's id (logs.RequestLog), so an entry leads to its log lines.
        request_id=(actor.request_id or logs.request_id.get() or "")[:64] or None,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, filters: Filters, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Entries matching ``filters``, newest first, older than ``before_id`` when given.
    ``action`` matches exactly or, ending in ``.`` (``upload.``), by prefix; ``actor``
    matches the actor's name (key name, email, OS user) or ``kind:id`` (``api_key:3``)."""
    return repo.page(session, filters, before_id=before_id, limit=limit)
