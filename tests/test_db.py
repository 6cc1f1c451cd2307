"""The engine's promises: SQLite pragmas, BEGIN IMMEDIATE writers, readers never blocked."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from promocodes.db import Database
from promocodes.models import sqlite_timestamp


def test_sqlite_pragmas_on_every_connection(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
    }


def test_second_sqlite_writer_waits_instead_of_failing(sqlite_db: Database) -> None:
    """With deferred BEGIN two writers can both read, then one fails to upgrade its lock
    with SQLITE_BUSY that no waiting can fix. BEGIN IMMEDIATE makes the second wait."""
    order: list[str] = []
    first_has_lock = threading.Event()

    def first() -> None:
        with sqlite_db.write() as s:
            s.execute(text("SELECT 1"))
            first_has_lock.set()
            time.sleep(0.3)
            order.append("first commits")

    # A second Database is a second "process": it does not share our in-process lock,
    # so only SQLite's own locking stands between the two writers.
    other = Database(sqlite_db.url)

    def second() -> None:
        first_has_lock.wait()
        with other.write() as s:
            s.execute(text("SELECT 1"))
            order.append("second runs")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ["first commits", "second runs"]


def test_sqlite_reader_is_not_blocked_by_a_writer(sqlite_db: Database) -> None:
    with sqlite_db.write() as w:
        w.execute(text("SELECT 1"))
        started = time.monotonic()
        with sqlite_db.read() as r:
            assert r.execute(text("SELECT 1")).scalar() == 1
        assert time.monotonic() - started < 1


def test_transaction_rolls_back_on_error(db: Database) -> None:
    from promocodes.codes.models import CodeGroup

    try:
        with db.write() as s:
            s.add(CodeGroup(name="x", name_key="x"))
            s.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.read() as s:
        assert s.query(CodeGroup).count() == 0


def test_a_writer_of_the_same_process_waits_no_longer_than_the_busy_timeout(
    sqlite_url: str,
) -> None:
    # Writers of one process queue on an in-process lock before SQLite's; that queue must
    # give up like SQLite's busy handler does, not hang behind a long upload forever.
    from promocodes.config import Settings
    from promocodes.errors import DatabaseBusy

    db = Database(sqlite_url, Settings(database_url=sqlite_url, sqlite_busy_timeout_ms=300))
    holding = threading.Event()
    release = threading.Event()

    def long_writer() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=long_writer)
    writer.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(DatabaseBusy, match="busy with another writer"), db.write():
            pass
        assert 0.25 < time.monotonic() - started < 3
    finally:
        release.set()
        writer.join()
    with db.write() as s:  # and the lock is free again afterwards
        assert s.execute(text("SELECT 1")).scalar() == 1
    db.dispose()


def test_postgresql_connections_do_not_compile_queries(pg_url: str) -> None:
    # JIT compiling a segment count over a million customers took longer than the count
    # (docs/performance.md, "The largest legal filter on issued codes").
    database = Database(pg_url)
    try:
        with database.read() as s:
            assert s.execute(text("SHOW jit")).scalar() == "off"
    finally:
        database.dispose()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_time_written_by_a_raw_statement_reads_back_at_any_year(
    db: Database, moment: datetime
) -> None:
    """Raw bulk statements write SQLite times as ``sqlite_timestamp`` text; the year 1
    was written ``1-01-01 …``, which no read could parse again."""
    from promocodes.codes.models import Code
    from tests.factories import group_with_codes

    group_with_codes(db, "Times", ["TIME-1"])
    sqlite = db.url.startswith("sqlite")
    with db.write() as s:
        bound = sqlite_timestamp(moment) if sqlite else moment
        s.execute(text("UPDATE codes SET valid_until = :t WHERE code = 'TIME-1'"), {"t": bound})
    with db.read() as s:
        assert s.scalars(select(Code.valid_until)).one() == moment
