"""Group commit (``groupcommit.py``): writes in flight together share one SQLite
transaction and its commit; each still succeeds or fails alone, and none is answered
before its commit. On PostgreSQL each write is a transaction of its own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from promocodes.apikeys import service as apikeys
from promocodes.codes.api import issue_work
from promocodes.codes.models import Issuance
from promocodes.codes.schemas import IssueIn, IssueOut
from promocodes.db import Database, Driver
from promocodes.groupcommit import GroupCommit
from tests.factories import assert_counters_exact, customers, group_with_codes

PATH = "/api/v1/groups/{}/issue"


@pytest.fixture(autouse=True)
def _api_key(request: pytest.FixtureRequest) -> None:
    """The API key the issues are made under (id 1: the tables start empty)."""
    name = "db" if "db" in request.fixturenames else "sqlite_db"
    db: Database = request.getfixturevalue(name)
    with db.write() as s:
        key, _ = apikeys.create(s, "shop")
    assert key.id == 1


def _issue(group_id: int, customer: str, key: str | None = None) -> Callable[[Driver], IssueOut]:
    return issue_work(1, group_id, IssueIn(customer_id=customer), PATH.format(group_id), key)


def _issued(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Issuance)) or 0)


Answer = IssueOut | BaseException


def _gather(writes: GroupCommit, works: list[Callable[[Driver], IssueOut]]) -> list[Answer]:
    async def all_of() -> list[Answer]:
        every = asyncio.gather(*(writes.run(w) for w in works), return_exceptions=True)
        return await asyncio.wait_for(every, 60)  # a write never answered fails the test

    return asyncio.run(all_of())


def test_writes_in_flight_together_share_a_transaction(db: Database) -> None:
    group_id = group_with_codes(db, "G", [f"C{i}" for i in range(40)])
    people = customers(db, 30)
    writes = GroupCommit(db)
    answers = _gather(writes, [_issue(group_id, c, f"k{c}") for c in people])
    assert all(isinstance(a, IssueOut) for a in answers), answers
    codes = [a.code for a in answers if isinstance(a, IssueOut)]
    assert len(set(codes)) == 30 and None not in codes
    assert _issued(db) == 30
    assert_counters_exact(db, group_id)
    assert writes.writes == 30
    # SQLite: one transaction (two if the first BEGIN won before all had arrived);
    # PostgreSQL runs each alone.
    assert writes.transactions <= 2 if db.dialect == "sqlite" else writes.transactions == 30


def test_a_failing_write_is_undone_alone(sqlite_db: Database) -> None:
    db = sqlite_db
    group_id = group_with_codes(db, "G", ["A1", "A2", "A3"])
    customers(db, 3)

    def issue_then_fail(tx: Driver) -> IssueOut:
        _issue(group_id, "c1", "k1")(tx)  # claims a code, records an issue...
        raise RuntimeError("the template broke")  # ...then fails: none of it may stand

    answers = _gather(
        GroupCommit(db), [_issue(group_id, "c0", "k0"), issue_then_fail, _issue(group_id, "c2")]
    )
    assert isinstance(answers[0], IssueOut) and isinstance(answers[2], IssueOut)
    assert isinstance(answers[1], RuntimeError)
    assert _issued(db) == 2
    assert_counters_exact(db, group_id)
    with db.read() as s:
        holders = s.scalars(select(Issuance.customer_id)).all()
    assert len(holders) == 2


def test_a_write_that_ends_the_transaction_fails_alone(sqlite_db: Database) -> None:
    """SQLite rolls a whole transaction back on a full disk or an I/O error: the writes
    before the one that failed are written again in a fresh transaction."""
    db = sqlite_db
    group_id = group_with_codes(db, "G", ["A1", "A2", "A3"])
    customers(db, 3)

    def issue_then_lose_all(tx: Driver) -> IssueOut:
        _issue(group_id, "c1", "k1")(tx)
        tx.conn.execute("ROLLBACK")  # what SQLite itself does on SQLITE_FULL
        raise OSError("disk full")

    writes = GroupCommit(db)
    answers = _gather(
        writes, [_issue(group_id, "c0", "k0"), issue_then_lose_all, _issue(group_id, "c2", "k2")]
    )
    assert isinstance(answers[1], OSError)
    assert [type(a) for a in (answers[0], answers[2])] == [IssueOut, IssueOut]
    assert _issued(db) == 2
    assert_counters_exact(db, group_id)
    assert writes.writes == 2


def test_a_failed_commit_answers_no_one(sqlite_db: Database) -> None:
    """A COMMIT that fails (here: a foreign key checked at commit) leaves nothing of the
    transaction, tells every caller, and the next write goes through."""
    db = sqlite_db
    group_id = group_with_codes(db, "G", ["A1", "A2", "A3"])
    customers(db, 3)

    def break_the_commit(tx: Driver) -> IssueOut:
        answer = _issue(group_id, "c1", "k1")(tx)
        tx.conn.execute("PRAGMA defer_foreign_keys = ON")
        tx.conn.execute(
            "UPDATE issuances SET customer_id = 999999 WHERE customer_id IN "
            "(SELECT id FROM customers WHERE external_id = 'c1')"
        )
        return answer

    writes = GroupCommit(db)
    answers = _gather(writes, [_issue(group_id, "c0", "k0"), break_the_commit])
    assert all(isinstance(a, Exception) for a in answers), answers
    assert "FOREIGN KEY" in str(answers[0])
    assert _issued(db) == 0
    [after] = _gather(writes, [_issue(group_id, "c2", "k2")])
    assert isinstance(after, IssueOut)
    assert_counters_exact(db, group_id)


@pytest.mark.parametrize("holder", ["thread", "process"])
def test_a_write_waits_for_another_writer_without_stopping_the_loop(
    sqlite_db: Database, sqlite_url: str, holder: str
) -> None:
    """Another writer holds the lock (a thread of this process, or another connection,
    as another process would): the write waits for it in the thread pool while the event
    loop goes on answering."""
    db = sqlite_db
    group_id = group_with_codes(db, "G", ["A1"])
    customers(db, 1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        if holder == "thread":
            with db.write():
                holding.set()
                release.wait(10)
            return
        conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        release.wait(10)
        conn.execute("ROLLBACK")
        conn.close()

    async def scenario() -> tuple[int, object, float]:
        writes = GroupCommit(db)
        ticks = 0
        write = asyncio.ensure_future(writes.run(_issue(group_id, "c0", "k0")))
        started = time.monotonic()
        while time.monotonic() - started < 0.5:  # the loop keeps turning meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        release.set()
        answer = await asyncio.wait_for(write, 30)
        return ticks, answer, time.monotonic() - started

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    try:
        ticks, answer, _ = asyncio.run(scenario())
    finally:
        release.set()
        thread.join()
    assert ticks >= 20
    assert isinstance(answer, IssueOut) and answer.code == "A1"
    assert_counters_exact(db, group_id)
