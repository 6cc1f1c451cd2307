"""Crash test: a mailing of 50,000 sent by 3 worker processes while one of them is killed
with SIGKILL again and again (and restarted). Afterwards every recipient has exactly one
message and at most one code, no code went to two customers, the counters equal the rows
and every code not sent is available again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import MailingChunk, Message
from tests.factories import SENDING, counts, group_with_codes
from tests.invariants import issuance_problems
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment

RECIPIENTS = 50_000


def _worker(db: Database) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PROMOCODES_DATABASE_URL": db.url,
        "PROMOCODES_CHUNK_LEASE_SECONDS": "2",
        "PROMOCODES_WORKER_POLL_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "promocodes"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _busy(db: Database, workers: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes] | None:
    """A worker process that holds a running chunk right now (lease owner host:pid:thread)."""
    with db.read() as s:
        owners = s.scalars(select(MailingChunk.lease_owner).where(MailingChunk.status == "running"))
        pids = {int(o.split(":")[1]) for o in owners if o}
    return next((w for w in workers if w.pid in pids), None)


@pytest.mark.slow
def test_killed_workers_lose_nothing_and_duplicate_nothing(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"K{i:06d}" for i in range(RECIPIENTS + 10_000)])
    people(db, RECIPIENTS)
    everyone = segment(db, "All", EVERYONE)
    m = mailing(
        db, everyone, "Hi {{ client.first_name }}, {{ client.promocode('G') }}", chunk_size=500
    )
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
    workers = [_worker(db) for _ in range(3)]
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 600
    try:
        while True:
            with db.read() as s:
                status = mailings.get(s, m).status
            if status == "sent":
                break
            assert time.monotonic() < deadline, "mailing did not finish in 10 minutes"
            time.sleep(rng.uniform(0.05, 0.3))
            if kills < 5 and (victim := _busy(db, workers)) is not None:
                # Killed while it holds a chunk: mid-chunk, not between chunks.
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                workers.remove(victim)
                kills += 1
                workers.append(_worker(db))
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)

    with db.read() as s:
        per_customer = s.execute(
            select(Message.customer_id, func.count())
            .where(Message.mailing_id == m)
            .group_by(Message.customer_id)
            .having(func.count() > 1)
        ).all()
        messages = s.scalar(select(func.count()).where(Message.mailing_id == m))
        statuses = set(s.scalars(select(Message.status).where(Message.mailing_id == m)))
        retried = s.scalar(select(func.count()).where(MailingChunk.attempts > 1))
    assert kills == 5
    assert per_customer == []
    assert messages == RECIPIENTS and statuses == {"sent"}
    assert issuance_problems(db, gid) == []
    c = counts(db, gid)
    assert (c.issued, c.active) == (RECIPIENTS, 10_000)
    assert retried, "no chunk was ever interrupted: the test did not exercise a crash"
