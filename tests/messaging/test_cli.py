"""The mailing CLI and the worker process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.db import Database
from promocodes.messaging import mailings
from tests.factories import SENDING, counts, group_with_codes
from tests.messaging.test_mailings import EVERYONE, people, segment


def test_mailing_commands(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    gid = group_with_codes(db, "G", [f"C{i}" for i in range(10)])
    people(db, 4)
    seg = segment(db, "All", EVERYONE)
    body = tmp_path / "body.txt"
    body.write_text("Hello {{ client.first_name }}: {{ client.promocode('G') }}")
    run = CliRunner().invoke
    made = run(
        app,
        [
            "mailings",
            "create",
            "Spring",
            "--segment",
            str(seg),
            "--subject",
            "Hi",
            "--text",
            str(body),
        ],
    )
    assert made.exit_code == 0, made.output
    assert "G" in run(app, ["mailings", "check", "1"]).output
    shown = run(app, ["mailings", "preview", "1", "--customer", "p1"]).output
    assert "Hello P1: PREVIEW" in shown
    bad = tmp_path / "bad.txt"
    bad.write_text("{{ client.promocode('Nope') }}")
    refused = run(
        app,
        ["mailings", "create", "X", "--segment", str(seg), "--subject", "s", "--text", str(bad)],
    )
    assert refused.exit_code == 1 and "Nope" in refused.output
    sent = run(app, ["mailings", "send", "1"])
    assert sent.exit_code == 0 and "sending, 4 recipients" in sent.output
    from promocodes.config import Settings
    from promocodes.worker import run_until

    run_until(db, Settings(database_url=db.url), timeout=60)
    status = run(app, ["mailings", "status", "1"]).output
    assert "sent" in status and "4" in status
    report = json.loads(run(app, ["mailings", "status", "1", "--json"]).output)
    assert (report["id"], report["status"], report["total"], report["sent"]) == (1, "sent", 4, 4)
    assert counts(db, gid).issued == 4
    assert run(app, ["mailings", "cancel", "1"]).exit_code == 1  # already sent


def test_worker_stops_gracefully_on_sigterm(db: Database) -> None:
    group_with_codes(db, "G", [f"C{i}" for i in range(600)])
    people(db, 500)
    from tests.messaging.test_mailings import mailing

    m = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", chunk_size=50)
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
    env = {**os.environ, "PROMOCODES_DATABASE_URL": db.url}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "promocodes"), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        with db.read() as s:
            out = mailings.to_out(s, mailings.get(s, m))
        if out.rendered:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert b"Worker stopped" in (proc.stdout.read() if proc.stdout else b"")
    with db.read() as s:
        from sqlalchemy import select

        from promocodes.messaging.models import MailingChunk

        running = s.scalars(select(MailingChunk).where(MailingChunk.status == "running")).all()
    assert running == []  # the chunk in hand was finished, not abandoned to its lease
