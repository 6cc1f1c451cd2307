"""A single issue runs on the driver connection under the session (``db.Driver``): it
must see the session's pending changes, share its transaction, raise SQLAlchemy's errors,
and settle a key raced by another transaction exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from promocodes.codes import issuance
from promocodes.codes.models import Code, Issuance
from promocodes.customers.models import Customer
from promocodes.customers.service import CustomerNotFound
from promocodes.db import Database, Driver, RawSQL
from tests.factories import assert_counters_exact, counts, group_with_codes, make_customer


def test_named_parameters_become_psycopg_style() -> None:
    stmt = RawSQL.of("SELECT 1 FROM t WHERE a = :a AND b_2 = :b_2 AND c = :a")
    assert stmt.sqlite == "SELECT 1 FROM t WHERE a = :a AND b_2 = :b_2 AND c = :a"
    assert stmt.postgresql == "SELECT 1 FROM t WHERE a = %(a)s AND b_2 = %(b_2)s AND c = %(a)s"
    with pytest.raises(ValueError):
        RawSQL.of("SELECT '100%' WHERE a = :a")
    with pytest.raises(ValueError):
        RawSQL.of("SELECT :a::text")


def test_pending_changes_are_seen_and_a_rollback_undoes_the_issue(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2"])
    with pytest.raises(RuntimeError), db.write() as s:
        s.add(Customer(external_id="fresh", attributes={}))  # not flushed yet
        got = issuance.issue_initial(s, "fresh", gid, key="k", source="api")
        assert got.code == "A1"
        raise RuntimeError("roll back")
    with db.read() as s:
        assert s.scalar(select(Customer).where(Customer.external_id == "fresh")) is None
        assert s.scalar(select(Issuance)) is None
        assert s.scalar(select(Code.status).where(Code.code == "A1")) == "available"
    assert counts(db, gid).active == 2
    assert_counters_exact(db, gid)


def test_an_unknown_customer_is_found_out_before_any_code_is_taken(db: Database) -> None:
    """The customer is looked up in the issue's own first statement: an unknown one
    is reported before the group (as when it had a statement of its own) and takes
    no code, so the group's one code is still there for a known customer after it."""
    gid = group_with_codes(db, "G", ["A1"])
    with db.write() as s:
        make_customer(s, "alice")
    with db.driver_write() as tx:
        for group_id, issue in (
            (gid, issuance.issue_initial),
            (gid, issuance.issue_repeat),
            (999_999, issuance.issue_initial),
        ):
            with pytest.raises(CustomerNotFound, match="'zed'"):
                issue(tx, "zed", group_id, key="k", source="api")
        got = issuance.issue_initial(tx, "alice", gid, key="k", source="api")
    assert got.code == "A1" and got.customer_id == "alice"
    with db.read() as s:
        assert s.scalars(select(Issuance.key)).all() == ["k"]
    assert_counters_exact(db, gid)


def _wait_for_lock_wait(db: Database, timeout: float = 20.0) -> None:
    """Until another session of this database waits on a lock (PostgreSQL)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second issue never waited for the first")


def test_a_key_raced_by_another_transaction_gives_the_winners_code(db: Database) -> None:
    """The second call claims a code of its own, waits on the key until the first
    commits, then gives its code back and answers with the first call's code."""
    gid = group_with_codes(db, "G", ["A1", "A2", "A3"])
    with db.write() as s:
        make_customer(s, "alice")
    second: list[str | None] = []
    errors: list[BaseException] = []

    def race() -> None:
        try:
            with db.write() as s:
                second.append(issuance.issue_initial(s, "alice", gid, key="k", source="api").code)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with db.write() as s:
        first = issuance.issue_initial(s, "alice", gid, key="k", source="api")
        thread = threading.Thread(target=race)
        thread.start()
        if db.dialect == "postgresql":
            _wait_for_lock_wait(db)  # the second INSERT waits on the key: the race is real
        else:
            time.sleep(0.2)  # SQLite: the second writer queues for the write lock
    thread.join(timeout=60)
    assert not errors, errors
    assert first.code == "A1" and second == ["A1"]
    with db.read() as s:
        assert s.scalars(select(Issuance.code_id)).all() == [
            s.scalar(select(Code.id).where(Code.code == "A1"))
        ]
        statuses = {code: status for code, status in s.execute(select(Code.code, Code.status))}
    assert statuses == {"A1": "issued", "A2": "available", "A3": "available"}
    c = counts(db, gid)
    assert (c.total, c.active, c.issued) == (3, 2, 1)
    assert_counters_exact(db, gid)


def test_a_driver_transaction_commits_at_the_end_and_rolls_back_on_an_error(
    db: Database,
) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2"])
    with db.write() as s:
        make_customer(s, "alice")
    with pytest.raises(RuntimeError), db.driver_write() as tx:
        got = issuance.issue_initial(tx, "alice", gid, key="k", source="api")
        assert got.code == "A1"
        raise RuntimeError("roll back")
    assert counts(db, gid).active == 2
    with db.driver_write() as tx:
        got = issuance.issue_initial(tx, "alice", gid, key="k", source="api")
        again = issuance.issue_repeat(tx, "alice", gid, key="r", source="api")
    assert (got.code, again.code, again.kind) == ("A1", "A1", "repeat")
    with db.read() as s:
        kinds = s.scalars(select(Issuance.kind).order_by(Issuance.id)).all()
    assert kinds == ["initial", "repeat"]
    assert counts(db, gid).active == 1
    assert_counters_exact(db, gid)


@contextmanager
def _under_session(db: Database) -> Iterator[Driver]:
    with db.write() as s:
        yield Driver.of(s)


@pytest.mark.parametrize("transaction", ["session", "driver_write"])
def test_driver_errors_are_sqlalchemy_errors_and_undo_the_transaction(
    db: Database, transaction: str
) -> None:
    with db.write() as s:
        make_customer(s, "a")
        make_customer(s, "b")
    rename = RawSQL.of("UPDATE customers SET external_id = :to WHERE external_id = :frm")
    begin = _under_session if transaction == "session" else Database.driver_write
    with pytest.raises(IntegrityError), begin(db) as tx:
        assert tx.execute(rename, {"to": "c", "frm": "a"}) == 1
        tx.execute(rename, {"to": "c", "frm": "b"})
    with db.read() as s:
        assert sorted(s.scalars(select(Customer.external_id))) == ["a", "b"]


def test_a_driver_transaction_holds_the_sqlite_write_lock_from_its_start(
    sqlite_db: Database,
) -> None:
    """BEGIN IMMEDIATE, as ``write()``: another writer cannot slip in between its reads
    and its writes."""
    path = sqlite_db.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with sqlite_db.driver_write() as tx:
            assert tx.conn.in_transaction
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
