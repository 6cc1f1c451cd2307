"""Dead workers are noticed in seconds: a worker beats while it runs, and the chunks and
messages of one whose beat went stale are taken over at once, not after their lease (two
minutes). The whole server killed mid-mailing and started again finishes the mailing
within 30 s of the restart, with no code lost or doubled."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings, service
from promocodes.messaging.models import MailingChunk, WorkerBeat
from promocodes.models import utcnow
from promocodes.worker import Worker
from tests.factories import SENDING, counts, group_with_codes
from tests.invariants import issuance_problems, mailing_problems
from tests.live import live_server
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment

LEASE = timedelta(minutes=2)
STALE = timedelta(seconds=15)


def _three_chunks(db: Database) -> None:
    group_with_codes(db, "G", ["T1", "T2", "T3"])
    people(db, 3)
    mid = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", chunk_size=1)
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)


def _beat(db: Database, owner: str, seconds_ago: float) -> None:
    with db.write() as s:
        service.beat(s, owner)
        s.query(WorkerBeat).filter_by(owner=owner).update(
            {"beat_at": utcnow() - timedelta(seconds=seconds_ago)}
        )


def test_a_silent_workers_chunk_is_taken_over_a_beating_ones_is_not(db: Database) -> None:
    _three_chunks(db)
    for owner in ("dead", "alive", "never-beat"):
        with db.write() as s:
            assert service.lease_chunk(s, owner, LEASE, STALE) is not None
    _beat(db, "dead", seconds_ago=20)
    _beat(db, "alive", seconds_ago=1)
    with db.write() as s:
        taken = service.lease_chunk(s, "next", LEASE, STALE)
        assert taken is not None and taken.attempts == 2
        first_owner = s.scalar(select(func.min(MailingChunk.id)))
        assert taken.id == first_owner  # the dead one's chunk, the first leased
    with db.write() as s:  # the beating worker's and the never-beating one's stay theirs
        assert service.lease_chunk(s, "next", LEASE, STALE) is None


def test_a_running_worker_beats_and_signs_off(db: Database) -> None:
    settings = Settings(database_url=db.url, worker_heartbeat_seconds=0.05)
    worker = Worker(db, settings, name="w-beat")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        beats = []
        for _ in range(3):
            time.sleep(0.2)
            with db.read() as s:
                beats.append(s.scalars(select(WorkerBeat.beat_at).filter_by(owner="w-beat")).one())
        assert beats[0] < beats[1] < beats[2]
    finally:
        stop.set()
        thread.join(timeout=10)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WorkerBeat)) == 0


RECIPIENTS = 12_000


def _wait_holding(db: Database) -> None:
    """Until some chunks are done and one is being sent: part of the way through."""
    deadline = time.monotonic() + 120
    while True:
        with db.read() as s:
            done = s.scalar(select(func.count()).where(MailingChunk.status == "done"))
            held = s.scalar(select(func.count()).where(MailingChunk.status == "running"))
        if done and held:
            return
        assert time.monotonic() < deadline, "the mailing never got going"
        time.sleep(0.01)


def test_a_killed_server_resumes_its_mailing_within_30_seconds(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"R{i:05d}" for i in range(RECIPIENTS + 100)])
    people(db, RECIPIENTS)
    mid = mailing(
        db, segment(db, "All", EVERYONE), "Hi {{ client.promocode('G') }}", chunk_size=500
    )
    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    env = {"PROMOCODES_WORKER_POLL_SECONDS": "0.05"}  # default lease: 120 s
    orphaned = 0
    for _ in range(5):  # a kill can land just as a chunk commits: then kill again
        with live_server(db, **env) as server:
            _wait_holding(db)
            os.kill(server.pid, signal.SIGKILL)
        with db.read() as s:
            assert mailings.get(s, mid).status == "sending"
            orphaned = s.scalar(select(func.count()).where(MailingChunk.status == "running")) or 0
        if orphaned:
            break
    restarted = time.monotonic()
    with live_server(db, **env):
        while True:
            with db.read() as s:
                if mailings.get(s, mid).status == "sent":
                    break
            assert time.monotonic() - restarted < 60, "the mailing did not finish"
            time.sleep(0.1)
    took = time.monotonic() - restarted
    print(f"\nmailing finished {took:.1f} s after the restart ({orphaned} chunk(s) orphaned)")
    assert orphaned, "the kill did not leave a chunk behind: nothing was taken over"
    assert took < 30
    assert issuance_problems(db, gid) == []
    assert mailing_problems(db, mid) == []
    assert counts(db, gid).issued == RECIPIENTS
