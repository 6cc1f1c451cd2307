"""``/metrics`` after real actions: issue rate, stock, mailing progress, delivery failures
(SMTP unreachable: retried, then failed with a clear reason) and chunk leases."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings, service
from promocodes.messaging.models import MailingChunk, Message
from promocodes.worker import Worker, run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, group_with_codes
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


def scrape(api: TestClient) -> dict[str, float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    # Every sample belongs to a declared metric family.
    declared = set(re.findall(r"^# TYPE (\S+) ", response.text, re.M))
    for name in samples:
        family = re.sub(r"(_bucket|_count|_sum)$", "", name.split("{")[0])
        assert family in declared, name
    return samples


def test_issue_rate_and_stock_per_group(db: Database) -> None:
    with client_for(db) as api:
        gid = group_with_codes(db, "Spring", [f"S{i}" for i in range(10)])
        api.put("/api/v1/customers/ann", json={})
        before = scrape(api)
        assert before[f'promocodes_codes_issued_total{{group_id="{gid}",group="Spring"}}'] == 0
        for _ in range(3):
            assert api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"}).is_success
        after = scrape(api)
    assert after[f'promocodes_codes_issued_total{{group_id="{gid}",group="Spring"}}'] == 3
    labels = f'group_id="{gid}",group="Spring"'
    assert after[f'promocodes_group_codes{{{labels},state="active"}}'] == 7
    assert after[f'promocodes_group_codes{{{labels},state="issued"}}'] == 3
    assert after[f'promocodes_group_codes{{{labels},state="total"}}'] == 10


def test_mailing_progress_and_chunk_leases(db: Database) -> None:
    people(db, 4)
    group_with_codes(db, "G", [f"G{i}" for i in range(10)])
    mid = mailing(
        db, segment(db, "all", EVERYONE), "{{ client.promocode('G') }}", name="Spring", chunk_size=1
    )
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    with db.write() as s:  # one chunk sent by a worker
        chunk = service.lease_chunk(s, "w1", timedelta(minutes=2), timedelta(seconds=15))
        assert chunk is not None
        service.process_chunk(s, chunk, "w1")
    with db.write() as s:  # one held by a live worker
        assert service.lease_chunk(s, "w2", timedelta(minutes=2), timedelta(seconds=15)) is not None
    with db.write() as s:  # one whose worker stopped renewing its lease
        assert (
            service.lease_chunk(s, "w3", timedelta(seconds=-1), timedelta(seconds=15)) is not None
        )
    with client_for(db) as api:
        m = scrape(api)
    progress = f'mailing_id="{mid}",mailing="Spring"'
    assert m[f'promocodes_mailing_recipients{{{progress},state="total"}}'] == 4
    assert m[f'promocodes_mailing_recipients{{{progress},state="rendered"}}'] == 1
    assert m[f'promocodes_mailing_recipients{{{progress},state="sent"}}'] == 1
    assert m[f'promocodes_mailing_recipients{{{progress},state="skipped"}}'] == 0
    assert m[f'promocodes_mailing_recipients{{{progress},state="failed"}}'] == 0
    assert m['promocodes_mailing_chunks{state="pending"}'] == 1
    assert m['promocodes_mailing_chunks{state="leased"}'] == 1
    assert m['promocodes_mailing_chunks{state="expired"}'] == 1

    # A worker takes the pending and the expired chunk; w2's lease still stands.
    run_until(db, Settings(database_url=db.url))
    with client_for(db) as api:
        m = scrape(api)
    assert m[f'promocodes_mailing_recipients{{{progress},state="rendered"}}'] == 3
    assert m['promocodes_mailing_chunks{state="pending"}'] == 0
    assert m['promocodes_mailing_chunks{state="expired"}'] == 0
    assert m['promocodes_mailing_chunks{state="leased"}'] == 1


def test_smtp_unreachable_is_retried_then_failed_and_counted(db: Database) -> None:
    people(db, 3)
    group_with_codes(db, "G", [f"G{i}" for i in range(10)])
    mid = mailing(db, segment(db, "all", EVERYONE), "{{ client.promocode('G') }}", channel="smtp")
    settings = Settings(
        database_url=db.url,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # nothing listens there
        smtp_timeout=2,
        delivery_backoff_seconds=0.5,  # the first retry waits out run_until on a slow machine
        delivery_max_attempts=3,
    )
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    run_until(db, settings)
    with client_for(db) as api:
        m = scrape(api)
        assert m['promocodes_messages_queued{channel="smtp"}'] == 3
        deadline = time.monotonic() + 30
        while m['promocodes_messages_queued{channel="smtp"}'] > 0:
            assert time.monotonic() < deadline, "delivery never gave up"
            time.sleep(0.1)
            Worker(db, settings).deliver()
            m = scrape(api)
    assert m['promocodes_messages_failed{channel="smtp"}'] == 3
    assert m['promocodes_messages_failed{channel="webhook"}'] == 0
    with db.read() as s:
        failed = s.scalars(select(Message).where(Message.mailing_id == mid)).all()
    assert {(f.status, f.attempts) for f in failed} == {("failed", 3)}
    assert all("Connection refused" in (f.error or "") for f in failed)
    with db.read() as s:
        assert {c.status for c in s.scalars(select(MailingChunk))} == {"done"}
