"""SMTP delivery against a real SMTP server (aiosmtpd on loopback): retries while the
server is down, exactly once per Message-ID after, and a refused recipient's code goes
back to the group (its issuance kept as voided)."""

from __future__ import annotations

import time
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from promocodes.codes.models import Issuance
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.worker import Worker, run_until
from tests.factories import SENDING, assert_counters_exact, counts, group_with_codes
from tests.invariants import delivery_problems
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


class Inbox:
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("p2@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


def test_smtp_retries_then_delivers_once_and_voids_refused(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"S{i}" for i in range(10)])
    people(db, 4)
    m = mailing(
        db, segment(db, "All", EVERYONE), "Code {{ client.promocode('G') }}", channel="smtp"
    )
    port = free_port()
    settings = Settings(
        database_url=db.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=5,
        delivery_backoff_seconds=0.05,
        delivery_max_attempts=20,
    )
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
    run_until(db, settings, timeout=60)  # renders; delivery fails: nothing listens yet
    with db.read() as s:
        queued = s.scalars(select(Message).where(Message.mailing_id == m)).all()
        assert {q.status for q in queued} == {"queued"}
        assert all(q.attempts >= 1 and "Connection refused" in (q.error or "") for q in queued)

    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            time.sleep(0.1)
            Worker(db, settings).deliver()
            with db.read() as s:
                statuses = [
                    x.status for x in s.scalars(select(Message).where(Message.mailing_id == m))
                ]
            if "queued" not in statuses:
                break
            assert time.monotonic() < deadline
        for _ in range(3):  # nothing is sent again once delivered
            Worker(db, settings).deliver()
    finally:
        server.stop()

    ids = [msg["Message-ID"] for msg in inbox.received]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(i.endswith("@promocodes.local>") for i in ids)
    assert {msg["To"] for msg in inbox.received} == {
        "p0@example.com",
        "p1@example.com",
        "p3@example.com",
    }
    with db.read() as s:
        refused = s.scalars(select(Message).where(Message.recipient == "p2@example.com")).one()
        assert refused.status == "failed" and "refused" in (refused.error or "")
        voided = s.scalars(select(Issuance).where(Issuance.key == refused.key)).one()
        assert voided.voided_at is not None
    c = counts(db, gid)
    assert (c.issued, c.active) == (3, 7)  # the refused message's code came back
    assert_counters_exact(db, gid)
    assert delivery_problems(db, gid) == []
