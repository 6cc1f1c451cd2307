"""Fault test: the PostgreSQL server restarts in the middle of a mailing.

Two `promocodes worker` processes send a mailing of several thousand recipients on a
private PostgreSQL cluster (restarting the shared test server would break everyone else's
run). Once some chunks are done the server is stopped, left down for a moment, and
started again. The workers must survive, reconnect and finish: every recipient exactly one
message, no code twice, counters equal to the rows, the mailing sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from promocodes import migrate
from promocodes.codes import issuance
from promocodes.codes import service as groups
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import MailingChunk, Message
from tests.factories import SENDING, counts, group_with_codes
from tests.invariants import issuance_problems, mailing_problems
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment
from tests.pgcluster import Cluster, cluster
from tests.processes import outputs, start_worker, stop_all, wait_started

RECIPIENTS = 4_000
CHUNK = 50


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    with cluster() as c:
        yield c


def _chunks_done(db: Database, mailing_id: int) -> int:
    with db.read() as s:
        done = s.scalar(
            select(func.count()).where(
                MailingChunk.mailing_id == mailing_id, MailingChunk.status == "done"
            )
        )
    return int(done or 0)


def test_workers_survive_a_postgresql_restart_mid_mailing(
    private_cluster: Cluster, tmp_path: Path
) -> None:
    db = Database(private_cluster.create_database("promocodes"))
    migrate.upgrade(db.engine)
    gid = group_with_codes(db, "G", [f"R{i:06d}" for i in range(RECIPIENTS + 500)])
    people(db, RECIPIENTS)
    m = mailing(
        db, segment(db, "All", EVERYONE), "Code {{ client.promocode('G') }}", chunk_size=CHUNK
    )
    chunks_total = RECIPIENTS // CHUNK

    env = {
        "PROMOCODES_WORKER_POLL_SECONDS": "0.05",
        # A chunk whose transaction the restart cut off is retried once its lease ends.
        "PROMOCODES_CHUNK_LEASE_SECONDS": "3",
    }
    workers = [start_worker(f"worker-{i}", db.url, tmp_path, **env) for i in range(2)]
    try:
        # Both running before the mailing starts, so the restart meets two working
        # workers (one still starting up would stop at its start-up check instead).
        wait_started(workers)
        with db.write() as s:
            mailings.send(s, m, settings=SENDING)
        deadline = time.monotonic() + 60
        while (done := _chunks_done(db, m)) < 3:
            assert time.monotonic() < deadline, "workers never got going\n" + outputs(workers)
            assert all(w.alive() for w in workers), outputs(workers)
            time.sleep(0.05)
        assert done < chunks_total, "the mailing finished before the restart"

        private_cluster.stop("fast")  # every connection of every worker is cut
        time.sleep(2)  # workers meet a server that refuses connections
        private_cluster.start()

        deadline = time.monotonic() + 120
        while True:
            with db.read() as s:
                status = mailings.get(s, m).status
            if status == "sent":
                break
            assert all(w.alive() for w in workers), "a worker died\n" + outputs(workers)
            assert time.monotonic() < deadline, f"mailing stuck in {status}\n" + outputs(workers)
            time.sleep(0.2)
        assert all(w.alive() for w in workers), outputs(workers)
    finally:
        exits = stop_all(workers)
    assert exits == {"worker-0": 0, "worker-1": 0}, outputs(workers)

    assert "database unavailable" in outputs(workers), "no worker noticed the restart"
    assert mailing_problems(db, m) == []
    assert issuance_problems(db, gid) == []
    with db.read() as s:
        statuses = dict(
            s.execute(
                select(Message.status, func.count())
                .where(Message.mailing_id == m)
                .group_by(Message.status)
            ).all()
        )
        out = mailings.to_out(s, mailings.get(s, m))
    assert statuses == {"sent": RECIPIENTS}
    assert (out.status, out.total, out.sent) == ("sent", RECIPIENTS, RECIPIENTS)
    c = counts(db, gid)
    assert (c.issued, c.active) == (RECIPIENTS, 500)
    db.dispose()


def test_a_worker_started_while_postgresql_is_down_waits_for_it(
    private_cluster: Cluster, tmp_path: Path
) -> None:
    db = Database(private_cluster.create_database("promocodes"))
    migrate.upgrade(db.engine)
    gid = group_with_codes(db, "G", [f"W{i:04d}" for i in range(60)])
    people(db, 40)
    m = mailing(db, segment(db, "All", EVERYONE), "Code {{ client.promocode('G') }}")
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
    db.dispose()
    private_cluster.stop("fast")
    worker = start_worker("worker", db.url, tmp_path, PROMOCODES_WORKER_POLL_SECONDS="0.05")
    try:
        deadline = time.monotonic() + 30
        while "Database unreachable" not in worker.output():
            assert worker.alive(), "the worker gave up\n" + worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
        private_cluster.start()
        deadline = time.monotonic() + 60
        while True:
            with db.read() as s:
                if mailings.get(s, m).status == "sent":
                    break
            assert worker.alive(), worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.2)
    finally:
        exits = stop_all([worker])
    assert exits == {"worker": 0}, worker.output()
    assert mailing_problems(db, m) == []
    assert issuance_problems(db, gid) == []
    db.dispose()


def test_pooled_connections_the_server_closed_are_replaced_at_checkout(
    private_cluster: Cluster,
) -> None:
    """After a restart every pooled connection is dead. The pool's checkout check (a
    readable idle socket) replaces them, so the first transactions after the restart,
    through a Session and on the driver alone, succeed instead of failing once each."""
    db = Database(private_cluster.create_database("promocodes"))
    migrate.upgrade(db.engine)
    gid = group_with_codes(db, "G", ["P1", "P2", "P3"])
    people(db, 2)

    def issue(n: int) -> str | None:
        with db.driver_write() as tx:
            return issuance.issue_initial(tx, f"p{n}", gid, key=f"k{n}", source="api").code

    # Three connections in the pool: a Session's, a driver transaction's and a driver
    # read's, held at once.
    with db.read() as s, db.driver_write() as tx, db.driver_read() as rx:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
        tx.conn.execute("SELECT 1")
        assert groups.shown(rx, gid).total == 3
    pool = db.engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedin() == 3
    private_cluster.stop("fast")
    private_cluster.start()

    with db.driver_read() as rx:
        assert groups.shown(rx, gid).total == 3
    assert issue(0) == "P1"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
    assert issue(1) == "P2"
    assert counts(db, gid).issued == 2
    db.dispose()
