"""The worker loop: send mailing chunks, start scheduled mailings, finish completed ones,
and deliver queued messages. Any number of workers may run against one PostgreSQL
database (chunks and messages are claimed with leases and SKIP LOCKED); ``serve`` runs
one in a thread for the embedded SQLite default."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from promocodes.codes import alerts
from promocodes.config import Settings
from promocodes.db import Database
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

    def run_once(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        with self.db.write() as session:
            chunk = chunks.claim_chunk(session, self.owner, self.lease)
            chunk_id = chunk.id if chunk else None
        if chunk_id is not None:
            try:
                with self.db.write() as session:
                    claimed = session.get(MailingChunk, chunk_id)
                    assert claimed is not None
                    chunks.process_chunk(session, claimed, self.owner)
            except (chunks.LeaseLost, IntegrityError) as exc:
                # Someone else finished (or is finishing) this chunk: our work rolled back.
                log.warning("chunk %s abandoned: %s", chunk_id, exc)
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
        return bool(started or finished)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the current unit always completes first (SIGTERM
        lets the chunk in hand commit instead of waiting for its lease to expire)."""
        while not stop.is_set():
            try:
                busy = self.run_once()
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
