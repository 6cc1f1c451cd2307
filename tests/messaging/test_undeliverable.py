"""A code reaches its customer or goes back: mailings against real receivers that refuse,
defer, drop the line mid-DATA, answer garbage, time out, or are not there at all. After
delivery settles, every code is held by exactly one customer whose message was delivered
(or may have been: then it is kept, never risked twice) or is back in stock."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.worker import Worker, run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, counts, group_with_codes, issue
from tests.invariants import delivery_problems
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


def settle(db: Database, settings: Settings, mailing_id: int, timeout: float = 60) -> None:
    """Render the mailing, then deliver until none of its messages is queued."""
    run_until(db, settings, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        Worker(db, settings).deliver()
        with db.read() as s:
            statuses = s.scalars(select(Message.status).where(Message.mailing_id == mailing_id))
            if "queued" not in set(statuses):
                return
        assert time.monotonic() < deadline, "delivery did not settle"
        time.sleep(0.02)


def outcomes(db: Database, mailing_id: int) -> dict[str, tuple[str, bool, str | None]]:
    """recipient -> (status, maybe delivered, error)."""
    with db.read() as s:
        rows = s.execute(
            select(Message.recipient, Message.status, Message.maybe_delivered, Message.error).where(
                Message.mailing_id == mailing_id
            )
        ).all()
    return {r or "": (st, maybe, err) for r, st, maybe, err in rows}


def start(db: Database, channel: str, recipients: int = 4) -> tuple[int, int]:
    gid = group_with_codes(db, "G", [f"G{i:02d}" for i in range(10)])
    people(db, recipients)
    mid = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", channel=channel)
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    return gid, mid


def smtp_settings(db: Database, port: int, **kw: Any) -> Settings:
    return Settings(
        database_url=db.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=3,
        delivery_backoff_seconds=0.01,
        **{"delivery_max_attempts": 3, **kw},
    )


# --- SMTP -------------------------------------------------------------------------------


class Picky:
    """Refuses p1 for good (550), defers p2 for ever (451), takes the rest."""

    def __init__(self) -> None:
        self.to: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("p1@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("p2@"):
            return "451 4.2.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.to.extend(envelope.rcpt_tos)
        return "250 Message accepted"


class HangsUpInData:
    """Reads the whole message, then drops the line before answering: it may have it."""

    def __init__(self) -> None:
        self.seen = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.seen += 1
        server.transport.close()
        return "250 never heard"


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def test_refused_and_forever_deferred_recipients_give_their_codes_back(db: Database) -> None:
    gid, mid = start(db, "smtp")
    handler = Picky()
    with smtp_server(handler) as port:
        settle(db, smtp_settings(db, port), mid)
    result = outcomes(db, mid)
    assert sorted(handler.to) == ["p0@example.com", "p3@example.com"]
    status, maybe, error = result["p1@example.com"]
    assert (status, maybe) == ("failed", False) and "went back to stock" in (error or "")
    status, maybe, error = result["p2@example.com"]
    assert (status, maybe) == ("failed", False) and "451" in (error or "")
    c = counts(db, gid)
    assert (c.issued, c.active) == (2, 8)
    assert delivery_problems(db, gid) == []


def test_a_line_dropped_during_data_keeps_the_code(db: Database) -> None:
    gid, mid = start(db, "smtp", recipients=2)
    handler = HangsUpInData()
    with smtp_server(handler) as port:
        settle(db, smtp_settings(db, port, delivery_max_attempts=2), mid)
    assert handler.seen == 4  # two attempts each: the server had the message every time
    for status, maybe, error in outcomes(db, mid).values():
        assert (status, maybe) == ("failed", True) and "codes kept" in (error or "")
    assert counts(db, gid).issued == 2  # they may have arrived: never handed to another
    assert delivery_problems(db, gid) == []


def test_smtp_down_for_good_gives_every_code_back(db: Database) -> None:
    gid, mid = start(db, "smtp")
    settle(db, smtp_settings(db, free_port(), delivery_max_attempts=2), mid)  # nobody listens
    for status, maybe, error in outcomes(db, mid).values():
        assert (status, maybe) == ("failed", False)
        assert "Connection refused" in (error or "") and "went back" in (error or "")
    c = counts(db, gid)
    assert (c.issued, c.active) == (0, 10)
    assert delivery_problems(db, gid) == []
    # The voided code is never shown again: a repeat has nothing to show.
    assert issue(db, "p0", gid, key="after", kind="repeat") is None


# --- webhook ----------------------------------------------------------------------------


class Script:
    """A webhook receiver that answers the n-th request as ``answers[n]`` (the last one
    for ever after): an HTTP status, ``garbage``, or ``timeout`` (no answer in time)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls = 0

    def next(self) -> str:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


@contextmanager
def webhook_receiver(script: Script) -> Iterator[str]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            answer = script.next()
            if answer == "timeout":
                time.sleep(1.0)  # longer than the webhook timeout
            elif answer == "garbage":
                conn.sendall(b"\x00\xffnot http at all\r\n\r\n")
            else:
                head = f"HTTP/1.1 {answer} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                conn.sendall(head.encode())

    port = free_port()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answers", "status", "maybe", "issued"),
    [
        (["500", "garbage", "timeout", "200"], "sent", True, 1),  # arrived in the end
        (["500"], "failed", False, 0),  # never taken: the code goes back
        (["garbage"], "failed", True, 1),  # may have been taken: the code stays
        (["timeout"], "failed", True, 1),
        (["404"], "failed", False, 0),  # refused at once
    ],
)
def test_webhook_receivers_that_fail(
    db: Database, answers: list[str], status: str, maybe: bool, issued: int
) -> None:
    gid, mid = start(db, "webhook", recipients=1)
    script = Script(answers)
    with webhook_receiver(script) as url:
        settings = Settings(
            database_url=db.url,
            webhook_url=url,
            webhook_timeout=0.3,
            delivery_backoff_seconds=0.01,
            delivery_max_attempts=4,
        )
        settle(db, settings, mid)
    [(got_status, got_maybe, _)] = outcomes(db, mid).values()
    assert (got_status, got_maybe) == (status, maybe)
    assert script.calls == (1 if answers == ["404"] else 4)
    assert counts(db, gid).issued == issued
    assert delivery_problems(db, gid) == []


# --- a channel that is not configured ---------------------------------------------------


def test_a_mailing_on_an_unconfigured_channel_is_refused_before_issuing(db: Database) -> None:
    gid = group_with_codes(db, "G", ["U1", "U2"])
    people(db, 2)
    mid = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", channel="smtp")
    with client_for(db) as api:
        answer = api.post(f"/api/v1/mailings/{mid}/send", json={})
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert problem["type"].endswith("channel-not-configured")
        assert "no SMTP server is configured" in problem["detail"]
        assert api.get(f"/api/v1/mailings/{mid}").json()["status"] == "draft"
    assert counts(db, gid).issued == 0


def test_a_queued_message_whose_channel_went_away_gives_its_codes_back(db: Database) -> None:
    gid, mid = start(db, "webhook", recipients=2)
    settle(db, Settings(database_url=db.url, webhook_url=None), mid)
    for status, _, error in outcomes(db, mid).values():
        assert status == "failed" and "no webhook URL is configured" in (error or "")
    assert counts(db, gid).issued == 0
    assert delivery_problems(db, gid) == []


# --- recipients whose data is too much ---------------------------------------------------


def test_a_five_megabyte_attribute_fails_its_own_message_only(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"G{i:02d}" for i in range(10)])
    people(db, 4)
    with db.write() as s:  # stored before any size check, as old rows may be
        s.execute(
            text("UPDATE customers SET attributes = :a WHERE external_id = 'p1'"),
            {"a": json.dumps({"note": "x" * 5_000_000})},
        )
    body = "{{ client.attributes.note }} {{ client.promocode('G') }}"
    mid = mailing(db, segment(db, "All", EVERYONE), body, channel="smtp")
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    handler = Picky()
    with smtp_server(handler) as port:
        settle(db, smtp_settings(db, port), mid)
    result = outcomes(db, mid)
    assert sorted(handler.to) == ["p0@example.com", "p3@example.com"]
    status, _, error = result["p1@example.com"]
    assert status in ("failed", "skipped") and "1,000,000" in (error or ""), error
    assert delivery_problems(db, gid) == []
    assert counts(db, gid).issued == 2
