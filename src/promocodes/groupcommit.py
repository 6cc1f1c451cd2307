"""Group commit: an API process's concurrent SQLite writes share one transaction and its
one commit.

Every SQLite commit waits for the disk (``synchronous=FULL``: an fsync), and SQLite admits
one writer at a time, so API issues queued behind each other's fsync. Worse, a write run
in the thread pool handed the GIL back and forth with the busy event loop at each of its
statements, and held SQLite's write lock meanwhile: under load an issue held the lock
2.5 times as long as the same issue alone.

``GroupCommit.run(work)`` runs ``work(transaction)`` with the other writes that arrived
while the previous transaction was busy:
- BEGIN IMMEDIATE in the thread pool (it may wait for a writer of another process);
- then each write on the event loop, in a savepoint of its own. Holding the write lock
  (WAL: readers never block the writer), a statement waits for nothing: it is tens of µs
  of CPU, cheaper run where the request already is than handed to a thread. A write that
  raises is rolled back to its savepoint and its caller gets its error; the others stand;
- then one COMMIT in the thread pool, and only then every caller gets its answer. No
  answer goes out before the commit that makes it durable, so a crash loses only writes
  nobody was told of, as with a transaction each.

PostgreSQL commits concurrent transactions in parallel on its own: there ``run`` is one
``driver_write()`` transaction in the thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from promocodes.db import Database, Driver

T = TypeVar("T")
Work = Callable[[Driver], Any]

# Writes taken into one transaction at most: a bound on how long the event loop runs
# writes in a row (each well under a millisecond) before it answers other requests.
MOST = 64


@dataclass(slots=True)
class _Job:
    work: Work
    done: asyncio.Future[Any]


class GroupCommit:
    """Writes of one process that may share a transaction (one per ``Database``)."""

    def __init__(
        self,
        db: Database,
        *,
        most: int = MOST,
        on_commit: Callable[[int], None] = lambda writes: None,
    ) -> None:
        self._db = db
        self._most = most
        self._on_commit = on_commit
        self._waiting: list[_Job] = []
        self._drain: asyncio.Task[None] | None = None
        # Transactions committed, and the writes that stood in them (also told to
        # ``on_commit``: /metrics).
        self.transactions = 0
        self.writes = 0

    async def run(self, work: Callable[[Driver], T]) -> T:
        """``work(transaction)``'s result once its transaction has committed, or its
        error (then nothing it wrote stands)."""
        if self._db.dialect != "sqlite":
            alone = await run_in_threadpool(self._alone, work)
            self._count(1)
            return alone
        loop = asyncio.get_running_loop()
        job = _Job(work, loop.create_future())
        self._waiting.append(job)
        if self._drain is None:
            # A task of its own: a caller that goes away must not stop the others' writes
            # (nor, shielded, their answers).
            self._drain = loop.create_task(self._drain_all())
        result: T = await asyncio.shield(job.done)
        return result

    def _alone(self, work: Callable[[Driver], T]) -> T:
        with self._db.driver_write() as tx:
            return work(tx)

    async def _drain_all(self) -> None:
        try:
            while self._waiting:
                await self._one_transaction()
        finally:
            self._drain = None
            _fail(self._take(len(self._waiting)), RuntimeError("the write was cut off"))

    async def _one_transaction(self) -> None:
        writer = self._db.driver_write()
        try:
            tx = await run_in_threadpool(writer.__enter__)
        except Exception as exc:  # the write lock not had in time, the database away
            _fail(self._take(self._most), exc)
            return
        # Taken after BEGIN: the writes that arrived while it waited join this transaction.
        jobs = self._take(self._most)
        outcomes: list[tuple[_Job, Any, Exception | None]] = []
        for at, job in enumerate(jobs):
            try:
                outcomes.append((job, *_in_savepoint(tx, job.work)))
            except Exception as exc:
                # The transaction is lost (SQLite ended it, or the connection failed).
                await _leave(writer, exc)
                _fail([job], exc.error if isinstance(exc, _Lost) else exc)
                # The others wrote nothing that stands: they are written again, afresh.
                self._waiting[:0] = jobs[:at] + jobs[at + 1 :]
                return
        try:
            await _leave(writer, None)
        except Exception as exc:  # COMMIT failed: nothing of the transaction stands
            _fail(jobs, exc)
            return
        self._count(sum(1 for _, _, error in outcomes if error is None))
        for job, result, error in outcomes:
            _settle(job, result, error)

    def _count(self, writes: int) -> None:
        self.transactions += 1
        self.writes += writes
        self._on_commit(writes)

    def _take(self, most: int) -> list[_Job]:
        jobs = self._waiting[:most]
        del self._waiting[:most]
        return jobs


def _in_savepoint(tx: Driver, work: Work) -> tuple[Any, Exception | None]:
    """``work(tx)`` in a savepoint: its result, or its error with its writes undone."""
    tx.conn.execute("SAVEPOINT write")
    try:
        result = work(tx)
    except Exception as exc:
        try:
            tx.conn.execute("ROLLBACK TO write")
            tx.conn.execute("RELEASE write")
        except Exception as lost:
            # SQLite rolls a whole transaction back on some errors (a full disk, an I/O
            # error): the savepoint, and the writes before this one, are gone with it.
            raise _Lost(exc) from lost
        return None, exc
    tx.conn.execute("RELEASE write")
    return result, None


class _Lost(Exception):
    """The transaction ended under a write that failed (``error``, its own error)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _leave(writer: AbstractContextManager[Driver], exc: Exception | None) -> None:
    """End the transaction in the thread pool: COMMIT (an fsync) when ``exc`` is None,
    ROLLBACK otherwise (an error of the rollback itself is dropped: the pool discards
    such a connection); either way the write lock and the connection go back."""
    if exc is None:
        await run_in_threadpool(writer.__exit__, None, None, None)
        return
    with suppress(Exception):
        await run_in_threadpool(writer.__exit__, type(exc), exc, exc.__traceback__)


def _settle(job: _Job, result: Any, error: Exception | None) -> None:
    if job.done.done():
        return
    if error is None:
        job.done.set_result(result)
    else:
        job.done.set_exception(error)


def _fail(jobs: list[_Job], error: Exception) -> None:
    for job in jobs:
        _settle(job, None, error)
