"""Sending one chunk of a mailing: claim it under a lease, render each message lazily with
codes reserved in bulk, and commit issuances, counters, messages and "done" together.

Exactly-once: a chunk's work is one transaction, fenced by its lease — the final UPDATE
to "done" must still find this worker's lease, or everything rolls back. A worker that
dies mid-chunk leaves nothing behind; the chunk is claimed again when its lease expires.
The message key (and the issuances keyed by it) makes a second copy impossible even if
two workers ever raced through the same chunk.
"""

from __future__ import annotations

import json
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from promocodes.codes import claims
from promocodes.codes.models import COUNTER_STRIPES, INITIAL, REPEAT, CodeGroup
from promocodes.codes.repository import bump_counters
from promocodes.db import Driver, RawSQL, rowcount
from promocodes.messaging.models import Mailing, MailingChunk
from promocodes.messaging.rendering import (
    MessageTemplate,
    Rendered,
    RenderSkip,
    group_key,
    render,
)
from promocodes.messaging.templates import client_of, live_groups
from promocodes.models import UTCDateTime, sqlite_timestamp, utcnow

_CLAIM = """
SELECT c.id FROM mailing_chunks c JOIN mailings m ON m.id = c.mailing_id
WHERE m.status = 'sending'
  AND (c.status = 'pending' OR (c.status = 'running' AND c.lease_until < :now))
ORDER BY c.mailing_id, c.id LIMIT 1
"""


class LeaseLost(Exception):
    """Another worker took the chunk over (our lease expired): our work must not commit."""


def claim_chunk(session: Session, owner: str, lease: timedelta) -> MailingChunk | None:
    """Lease the next chunk to send (a short transaction of its own, so others see it)."""
    now = utcnow()
    sql = _CLAIM + (" FOR UPDATE OF c SKIP LOCKED" if _pg(session) else "")
    stmt = text(sql).bindparams(bindparam("now", type_=UTCDateTime))
    chunk_id = session.execute(stmt, {"now": now}).scalar()
    if chunk_id is None:
        return None
    session.execute(
        update(MailingChunk)
        .where(MailingChunk.id == chunk_id)
        .values(
            status="running",
            lease_owner=owner,
            lease_until=now + lease,
            attempts=MailingChunk.attempts + 1,
        )
    )
    return session.get(MailingChunk, chunk_id)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient of a chunk: the customer's fields a message needs."""

    id: int
    external_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any] | None

    @staticmethod
    def of(row: tuple[Any, ...]) -> Recipient:
        customer_id, external_id, email, phone, first_name, last_name, attributes = row
        # JSON text on SQLite; psycopg may already have decoded it.
        if isinstance(attributes, str):
            attributes = json.loads(attributes) if attributes != "{}" else {}
        return Recipient(customer_id, external_id, email, phone, first_name, last_name, attributes)


_RECIPIENTS = RawSQL.of(
    "SELECT c.id, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.attributes "
    "FROM mailing_recipients r JOIN customers c ON c.id = r.customer_id "
    "WHERE r.mailing_id = :mailing_id AND r.seq BETWEEN :first AND :last ORDER BY r.seq"
)


@dataclass
class _Pool:
    """The codes reserved for one group in this chunk, handed out in order."""

    group: CodeGroup
    codes: deque[tuple[int, str]] = field(default_factory=deque)


class _ChunkSource:
    """The CodeSource of one message: takes reserved codes, finds earlier ones."""

    def __init__(self, chunk: _Chunk, customer: Recipient) -> None:
        self.chunk = chunk
        self.customer = customer
        self.initial: list[tuple[CodeGroup, int]] = []
        self.repeat: list[tuple[CodeGroup, int]] = []

    def _group(self, name: str) -> CodeGroup:
        found = self.chunk.usable(name)
        if isinstance(found, tuple):
            raise RenderSkip(*found)
        return found

    def promocode(self, group_name: str) -> str:
        group = self._group(group_name)
        pool = self.chunk.pool(group)
        if not pool.codes:
            raise RenderSkip("group-exhausted", f"group {group.name!r} has no codes left")
        code_id, code = pool.codes.popleft()
        self.initial.append((group, code_id))
        return code

    def last_promocode(self, group_name: str) -> str | None:
        group = self._group(group_name)
        found = self.chunk.last_initial(group).get(self.customer.id)
        if found is None:
            return None
        self.repeat.append((group, found[0]))
        return found[1]

    def give_back(self) -> None:
        """The message was not sent: its codes return to the front of their pools."""
        for group, code_id in reversed(self.initial):
            pool = self.chunk.pools[group.id]
            code = self.chunk.code_text[code_id]
            pool.codes.appendleft((code_id, code))


class _Chunk:
    def __init__(
        self,
        session: Session,
        mailing: Mailing,
        recipients: Sequence[Recipient],
    ) -> None:
        self.session = session
        self.mailing = mailing
        self.recipients = recipients
        self.now = utcnow()
        self.groups = live_groups(session)
        self._usable: dict[str, CodeGroup | tuple[str, str]] = {}
        self.pools: dict[int, _Pool] = {}
        self.code_text: dict[int, str] = {}
        self._last: dict[int, dict[int, tuple[int, str]]] = {}

    def usable(self, name: str) -> CodeGroup | tuple[str, str]:
        """The group a macro names, or why no code can come from it (a skip reason and
        its detail). Decided once per chunk and name: every message of the chunk is
        rendered at the chunk's ``now`` against the same live groups."""
        if name not in self._usable:
            self._usable[name] = self._judge(name)
        return self._usable[name]

    def _judge(self, name: str) -> CodeGroup | tuple[str, str]:
        group = self.groups.get(group_key(name))
        if group is None:
            return "group-not-found", f"no group named {name!r}"
        if group.valid_until is not None and self.now >= group.valid_until:
            return "group-expired", f"group {group.name!r} has expired"
        if group.valid_from is not None and self.now < group.valid_from:
            return "group-not-yet-valid", f"group {group.name!r} is not valid yet"
        return group

    def pool(self, group: CodeGroup) -> _Pool:
        """Reserve, on first use, as many codes as the chunk may need: one per recipient."""
        if group.id not in self.pools:
            taken = claims.reserve(
                self.session,
                group.id,
                len(self.recipients),
                expiring=group.has_code_expiry,
                now=self.now,
            )
            self.pools[group.id] = _Pool(group, deque(taken))
            self.code_text.update(taken)
        return self.pools[group.id]

    def last_initial(self, group: CodeGroup) -> dict[int, tuple[int, str]]:
        """customer id -> (code id, code) of their latest standing initial issuance."""
        if group.id not in self._last:
            ids = [c.id for c in self.recipients]
            rows = self.session.execute(
                text(
                    "SELECT i.customer_id, i.code_id, c.code FROM issuances i "
                    "JOIN codes c ON c.id = i.code_id WHERE i.group_id = :g "
                    "AND i.kind = 'initial' AND i.voided_at IS NULL "
                    "AND i.customer_id IN :ids ORDER BY i.id"
                ).bindparams(bindparam("ids", expanding=True)),
                {"g": group.id, "ids": ids},
            ).all()
            self._last[group.id] = {cid: (code_id, code) for cid, code_id, code in rows}
        return self._last[group.id]


@dataclass
class ChunkResult:
    rendered: int
    skipped: Counter[str]


def process_chunk(session: Session, chunk: MailingChunk, owner: str) -> ChunkResult:
    """Render and record every message of a leased chunk, in the caller's transaction."""
    mailing = session.get(Mailing, chunk.mailing_id)
    assert mailing is not None
    template = MessageTemplate(mailing.subject, mailing.body_text, mailing.body_html)
    # Plain tuples from the driver: a chunk only reads its recipients, and ORM objects
    # (or even SQLAlchemy rows) cost about as much to load as rendering a message.
    found = Driver.of(session).all(
        _RECIPIENTS,
        {"mailing_id": mailing.id, "first": chunk.first_seq, "last": chunk.last_seq},
    )
    recipients = [Recipient.of(row) for row in found]
    state = _Chunk(session, mailing, recipients)
    rows = _Rows(session, mailing, state.now)
    skipped: Counter[str] = Counter()
    used: Counter[int] = Counter()
    # Read once: ORM attribute access costs as much as a short render's bookkeeping.
    prefix, smtp, cancelled = f"m{mailing.id}.", mailing.channel == "smtp", mailing.cancel_requested
    for customer in recipients:
        key = f"{prefix}{customer.id}"
        source = _ChunkSource(state, customer)
        reason: str | None = None
        if smtp and not customer.email:
            reason = "no-email"
        elif cancelled:
            reason = "cancelled"
        else:
            try:
                rendered = render(template, client_of(customer), source)
            except RenderSkip as skip:
                source.give_back()
                reason = skip.reason
        if reason is not None:
            skipped[reason] += 1
            rows.skipped(key, customer, reason)
            continue
        for group, code_id in source.initial:
            rows.issuance(key, group.id, INITIAL, customer.id, code_id)
            used[group.id] += 1
        for group, code_id in source.repeat:
            rows.issuance(key, group.id, REPEAT, customer.id, code_id)
        rows.rendered(key, customer, rendered)
    rows.insert()
    for group_id, pool in state.pools.items():
        if pool.codes:
            claims.release(session, [code_id for code_id, _ in pool.codes])
        if used[group_id]:
            bump_counters(
                session,
                group_id,
                slot=random.randrange(COUNTER_STRIPES),
                available=-used[group_id],
                issued=used[group_id],
            )
    rendered_count = len(recipients) - sum(skipped.values())
    done = session.execute(
        update(MailingChunk)
        .where(
            MailingChunk.id == chunk.id,
            MailingChunk.lease_owner == owner,
            MailingChunk.status == "running",
        )
        .values(
            status="done",
            rendered=rendered_count,
            skipped=sum(skipped.values()),
            skipped_reasons=json.dumps(dict(skipped)),
            finished_at=utcnow(),
        )
    )
    if rowcount(done) != 1:
        raise LeaseLost(f"chunk {chunk.id} was taken over by another worker")
    return ChunkResult(rendered_count, skipped)


# ``{0}`` stands for the driver's parameter mark (``?`` sqlite3, ``%s`` psycopg).
_INSERT_ISSUANCES = (
    "INSERT INTO issuances (key, group_id, kind, customer_id, code_id, source, source_ref, "
    "issued_at) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0})"
)
_INSERT_MESSAGES = (
    "INSERT INTO messages (key, mailing_id, customer_id, channel, recipient, status, "
    "skip_reason, subject, body_text, body_html, attempts, created_at, sent_at, "
    "next_attempt_at) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, "
    "{0}, {0})"
)


class _Rows:
    """A chunk's issuance and message rows, written with one ``executemany`` each.

    The hot loop of a mailing: plain tuples on the driver rather than the ORM's bulk
    insert, whose per-row parameter processing cost more than rendering the message.
    Every row of a chunk shares one timestamp, converted once for the driver.
    """

    def __init__(self, session: Session, mailing: Mailing, now: datetime) -> None:
        self.session = session
        self.mailing_id = mailing.id
        self.channel = mailing.channel
        self.source_ref = str(mailing.id)
        self.sqlite = not _pg(session)
        self.now: datetime | str = sqlite_timestamp(now) if self.sqlite else now
        self.issuances: list[tuple[Any, ...]] = []
        self.messages: list[tuple[Any, ...]] = []

    def issuance(self, key: str, group_id: int, kind: str, customer_id: int, code_id: int) -> None:
        row = (key, group_id, kind, customer_id, code_id, "mailing", self.source_ref, self.now)
        self.issuances.append(row)

    def skipped(self, key: str, customer: Recipient, reason: str) -> None:
        self.messages.append(
            (key, self.mailing_id, customer.id, self.channel, customer.email, "skipped", reason,
             None, None, None, 0, self.now, None, None)
        )  # fmt: skip

    def rendered(self, key: str, customer: Recipient, message: Rendered) -> None:
        outbox = self.channel == "outbox"
        self.messages.append(
            (key, self.mailing_id, customer.id, self.channel, customer.email,
             "sent" if outbox else "queued", None, message.subject, message.body_text,
             message.body_html, 0, self.now, self.now if outbox else None,
             None if outbox else self.now)
        )  # fmt: skip

    def insert(self) -> None:
        conn = self.session.connection()
        mark = "?" if self.sqlite else "%s"
        if self.issuances:
            conn.exec_driver_sql(_INSERT_ISSUANCES.format(mark), self.issuances)
        if self.messages:
            conn.exec_driver_sql(_INSERT_MESSAGES.format(mark), self.messages)


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def progress(session: Session, mailing_id: int) -> Mapping[str, Any]:
    """Progress of a mailing from its chunks (a few rows per thousand recipients) and its
    delivered/failed messages."""
    chunks = session.execute(
        select(
            MailingChunk.status,
            MailingChunk.rendered,
            MailingChunk.skipped,
            MailingChunk.skipped_reasons,
        ).where(MailingChunk.mailing_id == mailing_id)
    ).all()
    reasons: Counter[str] = Counter()
    for row in chunks:
        if row.skipped_reasons:
            reasons.update(json.loads(row.skipped_reasons))
    by_status: dict[str, int] = dict(
        session.execute(
            text("SELECT status, count(*) FROM messages WHERE mailing_id = :m GROUP BY status"),
            {"m": mailing_id},
        ).all()
    )
    return {
        "rendered": sum(r.rendered for r in chunks),
        "skipped": sum(r.skipped for r in chunks),
        "skipped_reasons": dict(reasons),
        "sent": int(by_status.get("sent", 0)),
        "failed": int(by_status.get("failed", 0)),
        "chunks": len(chunks),
        "chunks_done": sum(1 for r in chunks if r.status == "done"),
    }
