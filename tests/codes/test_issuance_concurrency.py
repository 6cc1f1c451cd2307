"""Concurrent claims (SQLite: 8 threads on one file; PostgreSQL: 8 processes): no code to
two customers, one code per idempotency key, counters exact — and the checker used here
does catch a deliberately broken read-then-write claim."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text

from promocodes.codes import issuance
from promocodes.codes.importer import read_text
from promocodes.codes.models import Issuance
from promocodes.codes.uploads import upload_codes
from promocodes.customers import service as customers
from promocodes.customers.schemas import CustomerIn
from promocodes.db import Database
from promocodes.models import utcnow
from tests.factories import counts, make_group
from tests.invariants import issuance_problems

WORKERS = 8
PER_WORKER = 2_000
CODES = 20_000

Claim = Callable[[Database, str, int, str], None]


def proper_claim(db: Database, customer_id: str, group_id: int, key: str) -> None:
    with db.write() as s:
        customer = customers.get(s, customer_id)
        issuance.issue_initial(s, customer, group_id, key=key, source="api")


def broken_claim(db: Database, customer_id: str, group_id: int, key: str) -> None:
    """Read-then-write: picks a code in one step and takes it unconditionally in another.
    Exists only to prove the invariant checker catches the race it allows."""
    with db.read() as s:
        code_id = s.execute(
            text(
                "SELECT id FROM codes WHERE group_id = :g AND status = 'available' "
                "ORDER BY id LIMIT 1"
            ),
            {"g": group_id},
        ).scalar_one()
    time.sleep(0.001)  # the gap every read-then-write has, made visible
    with db.write() as s:
        customer = customers.get(s, customer_id)
        s.execute(
            text(
                "UPDATE codes SET status = 'issued', issued_at = CURRENT_TIMESTAMP WHERE id = :id"
            ),
            {"id": code_id},
        )
        s.add(
            Issuance(
                key=key,
                group_id=group_id,
                kind="initial",
                customer_id=customer.id,
                code_id=code_id,
                source="api",
                issued_at=utcnow(),
            )
        )
        from promocodes.codes.repository import bump_counters

        bump_counters(s, group_id, available=-1, issued=1)


def _worker(url: str, claim_name: str, group_id: int, jobs: list[tuple[str, str]]) -> None:
    db = Database(url)
    claim: Claim = {"proper": proper_claim, "broken": broken_claim}[claim_name]
    for customer_id, key in jobs:
        claim(db, customer_id, group_id, key)
    db.dispose()


def _run(db: Database, claim: str, group_id: int, jobs: list[list[tuple[str, str]]]) -> None:
    """Threads on SQLite (one file, many connections); processes on PostgreSQL."""
    if db.dialect == "sqlite":
        threads = [
            threading.Thread(target=_worker, args=(db.url, claim, group_id, j)) for j in jobs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(db.url, claim, group_id, j)) for j in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0, f"worker exited with {p.exitcode}"


def _setup(db: Database, codes: int, people: int) -> int:
    with db.write() as s:
        gid = make_group(s, "Concurrent").id
        upload_codes(s, gid, read_text("\n".join(f"K{i:06d}" for i in range(codes))), source="cli")
        customers.import_customers(s, ((i, CustomerIn(customer_id=f"c{i}")) for i in range(people)))
    return gid


def _issuance_count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Issuance)) or 0)


@pytest.mark.slow
def test_concurrent_initial_issues_never_share_a_code(db: Database) -> None:
    gid = _setup(db, CODES, WORKERS * PER_WORKER)
    jobs = [
        [(f"c{w * PER_WORKER + i}", f"msg-{w}-{i}") for i in range(PER_WORKER)]
        for w in range(WORKERS)
    ]
    _run(db, "proper", gid, jobs)
    assert issuance_problems(db, gid) == []
    assert _issuance_count(db) == WORKERS * PER_WORKER
    c = counts(db, gid)
    assert (c.issued, c.active) == (16_000, 4_000)


@pytest.mark.slow
def test_shared_idempotency_keys_give_one_code_per_key(db: Database) -> None:
    keys = 1_000
    gid = _setup(db, 2_000, keys)
    # Every worker issues for the same keys (in a different order), as retries would.
    jobs = [
        [(f"c{i}", f"msg-{i}") for i in (range(keys) if w % 2 else reversed(range(keys)))]
        for w in range(WORKERS)
    ]
    _run(db, "proper", gid, jobs)
    assert issuance_problems(db, gid) == []
    assert _issuance_count(db) == keys
    assert counts(db, gid).issued == keys


@pytest.mark.slow
def test_the_checker_catches_a_read_then_write_claim(db: Database) -> None:
    gid = _setup(db, 2_000, WORKERS * 100)
    jobs = [[(f"c{w * 100 + i}", f"msg-{w}-{i}") for i in range(100)] for w in range(WORKERS)]
    _run(db, "broken", gid, jobs)
    problems = issuance_problems(db, gid)
    assert any("issued initially" in p for p in problems), problems
