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
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from promocodes.codes import claims
from promocodes.codes.models import COUNTER_STRIPES, CodeGroup, Issuance
from promocodes.codes.repository import bump_counters
from promocodes.customers.models import Customer
from promocodes.db import rowcount
from promocodes.messaging.models import Mailing, MailingChunk, MailingRecipient, Message
from promocodes.messaging.rendering import MessageTemplate, RenderSkip, group_key, render
from promocodes.messaging.templates import check, client_of, live_groups
from promocodes.models import UTCDateTime, utcnow

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


@dataclass
class _Pool:
    """The codes reserved for one group in this chunk, handed out in order."""

    group: CodeGroup
    codes: deque[tuple[int, str]] = field(default_factory=deque)


class _ChunkSource:
    """The CodeSource of one message: takes reserved codes, finds earlier ones."""

    def __init__(self, chunk: _Chunk, customer: Customer) -> None:
        self.chunk = chunk
        self.customer = customer
        self.initial: list[tuple[CodeGroup, int]] = []
        self.repeat: list[tuple[CodeGroup, int]] = []

    def _group(self, name: str) -> CodeGroup:
        group = self.chunk.groups.get(group_key(name))
        if group is None:
            raise RenderSkip("group-not-found", f"no group named {name!r}")
        if group.valid_until is not None and self.chunk.now >= group.valid_until:
            raise RenderSkip("group-expired", f"group {group.name!r} has expired")
        if group.valid_from is not None and self.chunk.now < group.valid_from:
            raise RenderSkip("group-not-yet-valid", f"group {group.name!r} is not valid yet")
        return group

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
        recipients: Sequence[Customer],
        initial_groups: Sequence[str],
    ) -> None:
        self.session = session
        self.mailing = mailing
        self.recipients = recipients
        self.now = utcnow()
        self.groups = live_groups(session)
        self.initial_groups = {group_key(n) for n in initial_groups}
        self.pools: dict[int, _Pool] = {}
        self.code_text: dict[int, str] = {}
        self._last: dict[int, dict[int, tuple[int, str]]] = {}

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
    validation = check(session, template)
    recipients = list(
        session.scalars(
            select(Customer)
            .join(MailingRecipient, MailingRecipient.customer_id == Customer.id)
            .where(
                MailingRecipient.mailing_id == mailing.id,
                MailingRecipient.seq.between(chunk.first_seq, chunk.last_seq),
            )
            .order_by(MailingRecipient.seq)
        )
    )
    state = _Chunk(session, mailing, recipients, validation.initial_groups)
    issuances: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    used: Counter[int] = Counter()
    for customer in recipients:
        key = f"m{mailing.id}.{customer.id}"
        source = _ChunkSource(state, customer)
        address = customer.email
        reason: str | None = None
        if mailing.channel == "smtp" and not address:
            reason = "no-email"
        elif mailing.cancel_requested:
            reason = "cancelled"
        else:
            try:
                rendered = render(template, client_of(customer), source)
            except RenderSkip as skip:
                source.give_back()
                reason = skip.reason
        if reason is not None:
            skipped[reason] += 1
            messages.append(
                _message(key, mailing, customer, address, status="skipped", skip_reason=reason)
            )
            continue
        for kind, taken in (("initial", source.initial), ("repeat", source.repeat)):
            for group, code_id in taken:
                issuances.append(
                    {
                        "key": key,
                        "group_id": group.id,
                        "kind": kind,
                        "customer_id": customer.id,
                        "code_id": code_id,
                        "source": "mailing",
                        "source_ref": str(mailing.id),
                        "issued_at": state.now,
                    }
                )
                if kind == "initial":
                    used[group.id] += 1
        messages.append(
            _message(
                key,
                mailing,
                customer,
                address,
                status="sent" if mailing.channel == "outbox" else "queued",
                subject=rendered.subject,
                body_text=rendered.body_text,
                body_html=rendered.body_html,
                sent_at=state.now if mailing.channel == "outbox" else None,
                next_attempt_at=None if mailing.channel == "outbox" else state.now,
            )
        )
    if issuances:
        session.execute(insert(Issuance), issuances)
    if messages:
        session.execute(insert(Message), messages)
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
    rendered_count = len(messages) - sum(skipped.values())
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


def _message(
    key: str, mailing: Mailing, customer: Customer, address: str | None, **fields: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": key,
        "mailing_id": mailing.id,
        "campaign_id": None,
        "customer_id": customer.id,
        "channel": mailing.channel,
        "recipient": address,
        "subject": None,
        "body_text": None,
        "body_html": None,
        "skip_reason": None,
        "error": None,
        "attempts": 0,
        "next_attempt_at": None,
        "lease_until": None,
        "sent_at": None,
        "created_at": utcnow(),
    }
    row.update(fields)
    return row


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
