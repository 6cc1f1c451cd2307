"""The worker loop: every domain's background work — send mailing chunks, deliver queued
messages, start scheduled mailings and finish completed ones, scan stock for alerts and
deliver them, prune old records, and mark uploads that a stopped process left running.

Any number of workers may run against one PostgreSQL database (chunks and messages are
leased, with SKIP LOCKED); ``serve`` runs one in a thread for the embedded SQLite default.
The worker owns its transactions, as the faces do: each unit of work is one short
transaction, or a few. Log records about a chunk carry ``chunk_id`` and ``mailing_id``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from promocodes import pruning
from promocodes.codes import alerts, generation, uploads
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import DatabaseBusy
from promocodes.messaging import delivery, mailings, service
from promocodes.models import utcnow

log = logging.getLogger("promocodes.worker")


class Worker:
    def __init__(self, db: Database, settings: Settings, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease = timedelta(seconds=settings.chunk_lease_seconds)
        self.stale_after = timedelta(seconds=settings.worker_stale_seconds)
        self._next_scan = 0.0
        self._next_prune = 0.0

    def run_once(self) -> bool:
        """Do one unit of work; False when there was nothing to do. Chunks come first,
        then deliveries; the schedule, alerts and housekeeping run when both are idle."""
        if self.send_chunk() or self.deliver():
            return True
        busy = self.schedule()
        if time.monotonic() >= self._next_scan:
            self._next_scan = time.monotonic() + self.settings.alerts_scan_seconds
            self.scan_stock()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.settings.prune_interval_seconds
            self.housekeeping()
        return busy

    def send_chunk(self) -> bool:
        """Lease the next chunk (a short transaction of its own, so other workers see the
        lease) and send it in one transaction."""
        with self.db.write() as session:
            chunk = service.lease_chunk(session, self.owner, self.lease, self.stale_after)
            chunk_id, mailing_id = (chunk.id, chunk.mailing_id) if chunk else (None, None)
        if chunk_id is None:
            return False
        ids = {"chunk_id": chunk_id, "mailing_id": mailing_id, "worker": self.owner}
        started = time.perf_counter()
        try:
            with self.db.write() as session:
                result = service.process_chunk(
                    session, service.get_chunk(session, chunk_id), self.owner
                )
        except (service.LeaseLost, IntegrityError) as exc:
            # Someone else finished (or is finishing) this chunk: our work rolled back.
            log.warning(
                "chunk %s of mailing %s abandoned: %s", chunk_id, mailing_id, exc, extra=ids
            )
            return True
        skipped = sum(result.skipped.values())
        log.info(
            "chunk %s of mailing %s done: %s rendered, %s skipped",
            chunk_id,
            mailing_id,
            result.rendered,
            skipped,
            extra={
                **ids,
                "rendered": result.rendered,
                "skipped": skipped,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return True

    def deliver(self, limit: int = 50) -> int:
        """Send up to ``limit`` due messages (SMTP, webhook), each outcome recorded in a
        short transaction of its own; the sending itself holds no transaction."""
        with self.db.write() as session:
            batch = delivery.lease(session, self.owner, self.stale_after, limit)
        for item in batch:
            outcome = delivery.send(item, self.settings)
            with self.db.write() as session:
                delivery.record(session, item.message.id, outcome, self.settings)
        return len(batch)

    def schedule(self) -> bool:
        """Start the scheduled mailings that are due; mark sent those whose chunks are
        all done."""
        with self.db.write() as session:
            started = mailings.start_due(session, utcnow(), self.settings)
            finished = mailings.finalize(session)
        if started or finished:
            log.info(
                "mailings: %s started, %s finished",
                started,
                finished,
                extra={"started": started, "finished": finished},
            )
        return bool(started or finished)

    def scan_stock(self) -> None:
        """Record the stock alerts that began to hold, and post the undelivered ones to
        the alerts webhook (stopping at the first failure: it is tried again next scan).
        Groups with a refill setting that ran low get their codes first, in a transaction
        of their own (a refill's generation must not hold back the alerts)."""
        with self.db.write() as session:
            refilled = generation.refill(session)
        for done in refilled:
            log.info(
                "refilled group %s with %s codes",
                done.group_id,
                done.added,
                extra={"group_id": done.group_id, "added": done.added},
            )
        with self.db.write() as session:
            alerts.scan(session)
        if not self.settings.alerts_webhook_url:
            return
        with self.db.read() as session:
            pending = alerts.pending(session)
        for alert in pending:
            if not alerts.post(alert, self.settings):
                break
            with self.db.write() as session:
                alerts.delivered(session, alert.id)

    def housekeeping(self) -> None:
        pruned = prune(self.db, self.settings)
        if pruned.idempotency_records or pruned.user_sessions or pruned.chunk_leases:
            log.info(
                "pruned %s idempotency records, %s expired sessions, %s chunk leases",
                pruned.idempotency_records,
                pruned.user_sessions,
                pruned.chunk_leases,
                extra={
                    "idempotency_records": pruned.idempotency_records,
                    "user_sessions": pruned.user_sessions,
                    "chunk_leases": pruned.chunk_leases,
                },
            )
        with self.db.write() as session:
            uploads.fail_interrupted(session)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the current unit always completes first (SIGTERM
        lets the chunk in hand commit instead of waiting for its lease to expire). A
        thread beats meanwhile, so that if this process dies others take over its
        chunks and messages within seconds (``worker_stale_seconds``)."""
        done = threading.Event()
        beating = threading.Thread(target=self._beat, args=(done,), daemon=True, name="beat")
        beating.start()
        try:
            self._loop(stop)
        finally:
            done.set()
            beating.join(timeout=self.settings.worker_heartbeat_seconds + 5)
            self._leave()

    def _beat(self, done: threading.Event) -> None:
        # A beat of its own: a chunk or an SMTP batch may take longer than the stale
        # limit, and a worker busy with one must not look dead.
        while True:
            try:
                with self.db.write() as session:
                    service.beat(session, self.owner)
            except Exception as exc:
                log.warning("worker heartbeat failed: %s", exc)
            if done.wait(self.settings.worker_heartbeat_seconds):
                return

    def _leave(self) -> None:
        try:
            with self.db.write() as session:
                service.leave(session, self.owner)
        except Exception as exc:
            log.warning("could not sign the worker off: %s", exc)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except DatabaseBusy as exc:
                # SQLite held by another writer past the busy timeout: just try again.
                log.warning("database busy, retrying: %s", exc.detail)
                busy = False
            except (OperationalError, DBAPIError) as exc:
                # The database went away (restart, failover): wait and reconnect.
                log.warning("database unavailable, retrying: %s", exc)
                self.db.engine.dispose()
                busy = False
                stop.wait(min(5.0, self.settings.worker_poll_seconds * 4))
            except Exception:
                # Whatever else went wrong (a bug, bad data no check foresaw) fails only
                # the unit in hand, which rolled back: log it, back off, go on. A worker
                # that stopped would leave every later mailing waiting.
                log.exception("worker unit failed; backing off and going on")
                busy = False
                stop.wait(min(5.0, self.settings.worker_poll_seconds * 4))
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)


class Supervised:
    """The worker ``serve`` runs in a thread of its own process, restarted whenever it
    stops on something its loop could not absorb; ``alive`` is what ``/readyz`` tells."""

    def __init__(self, db: Database, settings: Settings, stop: threading.Event) -> None:
        self._db = db
        self._settings = settings
        self._stop = stop
        self._thread = threading.Thread(target=self._supervise, daemon=True, name="worker")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                Worker(self._db, self._settings).run(self._stop)
            except BaseException:
                log.exception("the worker stopped; starting it again")
                self._stop.wait(1.0)


def prune(db: Database, settings: Settings, now: datetime | None = None) -> pruning.Pruned:
    """Run every pruning step in batches of short transactions until it changes fewer
    rows than a batch."""
    now = now or utcnow()
    done: dict[str, int] = {}
    for name, step in pruning.STEPS.items():
        total = 0
        while True:
            with db.write() as session:
                n = step(session, now, settings)
            total += n
            if n < settings.prune_batch_size:
                break
        done[name] = total
    return pruning.Pruned(**done)


def run_until(db: Database, settings: Settings, timeout: float = 3600) -> None:
    """Run a worker until no work is left (tests, ``mailings send --wait`` with no
    worker running)."""
    worker = Worker(db, settings)
    deadline = time.monotonic() + timeout
    while worker.run_once() and time.monotonic() < deadline:
        pass
