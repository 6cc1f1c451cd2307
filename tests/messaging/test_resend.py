"""Resending a mailing's failed recipients: a new message each, rendered afresh with a new
code, exactly once per request (idempotency key; a double click meets a mailing already
sending), a resend of a resend, and a report that shows every attempt. API, web, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging.models import Message
from promocodes.worker import run_until
from tests.api.conftest import client_for
from tests.factories import counts
from tests.invariants import delivery_problems
from tests.live import free_port
from tests.messaging.test_undeliverable import Picky, settle, smtp_server, smtp_settings, start


def messages_of(db: Database, mailing_id: int) -> list[tuple[str, int, str]]:
    with db.read() as s:
        rows = s.execute(
            select(Message.recipient, Message.round, Message.status)
            .where(Message.mailing_id == mailing_id)
            .order_by(Message.id)
        ).all()
    return [(r or "", n, st) for r, n, st in rows]


def test_resend_after_smtp_down_for_good_reaches_everyone_once(db: Database) -> None:
    gid, mid = start(db, "smtp")
    settle(db, smtp_settings(db, free_port(), delivery_max_attempts=2), mid)  # nobody there
    assert counts(db, gid).issued == 0  # every code came back
    handler = Picky()
    with smtp_server(handler) as port:
        settings = smtp_settings(db, port)
        with client_for(db, smtp_host="127.0.0.1", smtp_port=port) as api:
            url = f"/api/v1/mailings/{mid}/resend"
            first = api.post(url, headers={"Idempotency-Key": "r-1"})
            assert first.status_code == 202, first.text
            again = api.post(url, headers={"Idempotency-Key": "r-1"})
            assert again.json() == first.json()  # the retry resends nothing
            attempts = first.json()["attempts"]
            assert [(a["round"], a["recipients"]) for a in attempts] == [(0, 4), (1, 4)]
            twice = api.post(url, headers={"Idempotency-Key": "r-2"})
            assert twice.status_code == 409 and "sending" in twice.json()["detail"]
            settle(db, settings, mid)
            report = api.get(f"/api/v1/mailings/{mid}").json()
            # p1 is refused for good and p2 deferred for ever by this server: a resend
            # of the resend reaches them no better, but works.
            third = api.post(url)
            assert third.status_code == 202, third.text
            settle(db, settings, mid)
            final = api.get(f"/api/v1/mailings/{mid}").json()
            nothing = api.post(url)
    assert (report["sent"], report["failed"]) == (2, 2)
    assert [(a["round"], a["sent"], a["failed"]) for a in report["attempts"]] == [
        (0, 0, 4),
        (1, 2, 2),
    ]
    assert (final["status"], final["sent"], final["failed"]) == ("sent", 2, 2)
    assert [(a["round"], a["recipients"], a["failed"]) for a in final["attempts"]] == [
        (0, 4, 4),
        (1, 4, 2),
        (2, 2, 2),
    ]
    assert all(a["started_at"] for a in final["attempts"])
    assert nothing.status_code == 202  # p1 and p2 failed again: they can be tried again
    # Each delivered recipient got exactly one message, with its own code.
    assert sorted(handler.to) == ["p0@example.com", "p3@example.com"]
    sent = [(r, n) for r, n, st in messages_of(db, mid) if st == "sent"]
    assert sorted(sent) == [("p0@example.com", 1), ("p3@example.com", 1)]
    c = counts(db, gid)
    assert (c.issued, c.active) == (2, 8)
    assert delivery_problems(db, gid) == []


def test_nothing_to_resend_and_not_yet_sent_are_clear_conflicts(db: Database) -> None:
    _, mid = start(db, "outbox", recipients=2)
    with client_for(db) as api:
        early = api.post(f"/api/v1/mailings/{mid}/resend")
        assert early.status_code == 409 and "once it has been sent" in early.json()["detail"]
        run_until(db, Settings(database_url=db.url), timeout=60)
        none = api.post(f"/api/v1/mailings/{mid}/resend")
        assert none.status_code == 409
        assert none.json()["type"].endswith("nothing-to-resend")


def poisoned_then_mended(db: Database) -> int:
    """An outbox mailing where p1's render failed (attributes stored as a list before they
    were checked); p1's data is then mended, so a resend can reach them."""
    _, mid = start(db, "outbox", recipients=3)
    with db.write() as s:
        s.execute(text("UPDATE customers SET attributes = '[1]' WHERE external_id = 'p1'"))
    run_until(db, Settings(database_url=db.url), timeout=60)
    with db.write() as s:
        s.execute(text("UPDATE customers SET attributes = '{}' WHERE external_id = 'p1'"))
    return mid


def test_the_cli_resends(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    mid = poisoned_then_mended(db)
    run = CliRunner().invoke
    resent = run(app, ["mailings", "resend", str(mid)])
    assert resent.exit_code == 0 and "resending to 1 recipients" in resent.output, resent.output
    run_until(db, Settings(database_url=db.url), timeout=60)
    status = run(app, ["mailings", "status", str(mid)]).output
    assert "resend 1" in status and "1 sent" in status
    again = run(app, ["mailings", "resend", str(mid)])
    assert again.exit_code == 1 and "no recipient" in again.output
