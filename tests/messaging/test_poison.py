"""One bad recipient fails alone: a header-breaking email stored before addresses were
checked, and attributes no render can read, in the middle of an SMTP mailing. The others
are delivered, the bad messages fail with their reason, their codes go back, the worker
goes on with the next mailing, and every code is either held by exactly one customer
with a delivered message or back in stock. New bad data is refused at the door."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from promocodes.app import create_app
from promocodes.codes.models import Code, Issuance
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.worker import run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, assert_counters_exact, group_with_codes
from tests.invariants import delivery_problems
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


class Inbox:
    def __init__(self) -> None:
        self.to: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.to.extend(envelope.rcpt_tos)
        return "250 Message accepted"


def _poison(db: Database) -> None:
    """p3's address breaks a header; p5's attributes are no mapping (rows from before)."""
    with db.write() as s:
        s.execute(
            text("UPDATE customers SET email = :e WHERE external_id = 'p3'"),
            {"e": "p3@example.com\r\nBcc: thief@example.com"},  # still in the segment
        )
        s.execute(text("UPDATE customers SET attributes = '[1, 2, 3]' WHERE external_id = 'p5'"))


def test_bad_recipients_fail_alone_and_give_their_codes_back(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"G{i:02d}" for i in range(20)])
    people(db, 8)
    _poison(db)
    everyone = segment(db, "All", EVERYONE)
    first = mailing(db, everyone, "Code {{ client.promocode('G') }}", channel="smtp")
    inbox = Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    settings = Settings(database_url=db.url, smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=5)
    try:
        with db.write() as s:
            mailings.send(s, first, settings=SENDING)
        run_until(db, settings, timeout=60)
        second = mailing(db, everyone, "Again {{ client.promocode('G') }}", channel="smtp")
        with db.write() as s:
            mailings.send(s, second, settings=SENDING)
        run_until(db, settings, timeout=60)
    finally:
        server.stop()
    with db.read() as s:
        messages = s.scalars(select(Message).where(Message.mailing_id.in_((first, second))))
        by_status: dict[str, list[Message]] = {}
        for m in messages:
            by_status.setdefault(m.status, []).append(m)
        failed = by_status["failed"]
        assert len(by_status["sent"]) == 12  # 6 good recipients, two mailings
        assert len(failed) == 4 and all(m.error for m in failed)
        assert any("cannot be built" in (m.error or "") for m in failed)
        standing = s.execute(
            select(Issuance.key, Code.code)
            .join(Code, Code.id == Issuance.code_id)
            .where(Issuance.voided_at.is_(None))
        ).all()
        sent_keys = {m.key for m in by_status["sent"]}
        # Every code held by a customer came with a delivered message, once.
        assert {key for key, _ in standing} == sent_keys
        assert len({c for _, c in standing}) == len(standing)
        for mid in (first, second):
            assert mailings.get(s, mid).status == "sent"
    assert sorted(inbox.to) == sorted(
        f"p{i}@example.com" for i in (0, 1, 2, 4, 6, 7) for _ in range(2)
    )
    assert_counters_exact(db, gid)
    assert delivery_problems(db, gid) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "u@example.com\r\nBcc: x@example.org"),
        ("email", "not an address"),
        ("first_name", "Ann\nBcc: x@example.org"),
        ("last_name", "Smith\x00"),
    ],
)
def test_bad_data_is_refused_at_the_door(db: Database, field: str, value: str) -> None:
    with client_for(db) as api:
        answer = api.put("/api/v1/customers/c1", json={field: value})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
        assert api.get("/api/v1/customers/c1").status_code == 404


def test_readyz_tells_a_stopped_worker(db: Database) -> None:
    class Stopped:
        alive = False

    app = create_app(Settings(database_url=db.url), db, worker=Stopped())
    with TestClient(app) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["worker"] == "stopped"


def test_the_supervised_worker_comes_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from promocodes import worker as workers

    calls: list[float] = []
    real = workers.Worker.run

    def crash_once(self: workers.Worker, stop: threading.Event) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise SystemError("a bug the loop did not absorb")
        real(self, stop)

    stop = threading.Event()
    monkeypatch.setattr(workers.Worker, "run", crash_once)
    supervised = workers.Supervised(db, Settings(database_url=db.url), stop)
    try:
        supervised.start()
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) == 2 and supervised.alive
    finally:
        stop.set()
    supervised.join(5)
