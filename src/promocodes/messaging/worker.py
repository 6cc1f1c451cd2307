"""The worker loop: send mailing chunks, start scheduled mailings, finish completed ones,
deliver queued messages, scan stock for alerts and prune old records. Any number of
workers may run against one PostgreSQL database (chunks and messages are claimed with
leases and SKIP LOCKED); ``serve`` runs one in a thread for the embedded SQLite default.
Log records about a chunk carry ``chunk_id`` and ``mailing_id``."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from promocodes import pruning
from promocodes.codes import alerts
from promocodes.config import Settings
from promocodes.db import Database, DatabaseBusy
from promocodes.messaging import chunks, delivery, mailings
from promocodes.messaging.models import MailingChunk
from promocodes.models import utcnow

log = logging.getLogger("promocodes.worker")


class Worker:
    def __init__(self, db: Database, settings: Settings, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease = timedelta(seconds=settings.chunk_lease_seconds)
        self._next_scan = 0.0
        self._next_prune = 0.0

    def run_once(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        with self.db.write() as session:
            chunk = chunks.claim_chunk(session, self.owner, self.lease)
            chunk_id, mailing_id = (chunk.id, chunk.mailing_id) if chunk else (None, None)
        if chunk_id is not None:
            ids = {"chunk_id": chunk_id, "mailing_id": mailing_id, "worker": self.owner}
            started = time.perf_counter()
            try:
                with self.db.write() as session:
                    claimed = session.get(MailingChunk, chunk_id)
                    assert claimed is not None
                    result = chunks.process_chunk(session, claimed, self.owner)
            except (chunks.LeaseLost, IntegrityError) as exc:
                # Someone else finished (or is finishing) this chunk: our work rolled back.
                log.warning(
                    "chunk %s of mailing %s abandoned: %s", chunk_id, mailing_id, exc, extra=ids
                )
            else:
                log.info(
                    "chunk %s of mailing %s done: %s rendered, %s skipped",
                    chunk_id,
                    mailing_id,
                    result.rendered,
                    sum(result.skipped.values()),
                    extra={
                        **ids,
                        "rendered": result.rendered,
                        "skipped": sum(result.skipped.values()),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            return True
        if delivery.deliver_batch(self.db, self.settings):
            return True
        with self.db.write() as session:
            started = mailings.start_due(session, utcnow())
            finished = mailings.finalize(session)
        if time.monotonic() >= self._next_scan:
            self._next_scan = time.monotonic() + self.settings.alerts_scan_seconds
            with self.db.write() as session:
                alerts.scan(session)
            alerts.deliver(self.db, self.settings)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.settings.prune_interval_seconds
            pruned = pruning.prune(self.db, self.settings)
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
        if started or finished:
            log.info(
                "mailings: %s started, %s finished",
                started,
                finished,
                extra={"started": started, "finished": finished},
            )
        return bool(started or finished)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the current unit always completes first (SIGTERM
        lets the chunk in hand commit instead of waiting for its lease to expire)."""
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
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)


def run_until(db: Database, settings: Settings, timeout: float = 3600) -> None:
    """Run a worker until no work is left (tests, ``mailings send --wait`` with no
    worker running)."""
    worker = Worker(db, settings)
    deadline = time.monotonic() + timeout
    while worker.run_once() and time.monotonic() < deadline:
        pass
