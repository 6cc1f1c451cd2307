"""Scale-out on PostgreSQL: 2 `promocodes serve` processes and 3 `promocodes worker`
processes, all real, on one database of the test's own.

While threads issue codes over HTTP through both servers (some calls retried with the
same Idempotency-Key), two mailings to two overlapping segments, created and sent over
HTTP, draw on the same group. Afterwards every invariant holds: no code twice, counters
equal to the rows, each recipient exactly one message per mailing carrying a code issued
to them, every retried call answered with the first call's code; and every process
shuts down cleanly on SIGTERM."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from promocodes import migrate
from promocodes.apikeys import service as apikeys
from promocodes.db import Database
from promocodes.messaging.models import MailingChunk, Message
from tests.factories import counts, group_with_codes
from tests.invariants import issuance_problems, mailing_problems
from tests.messaging.test_mailings import people, segment
from tests.pgcluster import private_database
from tests.processes import Process, outputs, start_server, start_worker, stop_all, wait_ready

CUSTOMERS = 400
SEGMENT_A = {"type": "attribute", "name": "n", "op": "lt", "value": 250}  # p0..p249
SEGMENT_B = {"type": "attribute", "name": "n", "op": "gt", "value": 149}  # p150..p399
ISSUE_KEYS = 120
RETRIES = 40


@pytest.fixture
def database() -> Iterator[Database]:
    with private_database("promocodes_scale") as url:
        db = Database(url)
        migrate.upgrade(db.engine)  # before the servers start, so they do not race to
        yield db
        db.dispose()


def test_two_servers_three_workers_keep_every_invariant(database: Database, tmp_path: Path) -> None:
    db = database
    gid = group_with_codes(db, "Shared", [f"SC{i:05d}" for i in range(2_000)])
    people(db, CUSTOMERS)
    segment_a = segment(db, "First 250", SEGMENT_A)
    segment_b = segment(db, "Last 250", SEGMENT_B)
    with db.write() as s:
        _, token = apikeys.create(s, "scale-out")
    headers = {"Authorization": f"Bearer {token}"}

    env = {"PROMOCODES_WORKER_POLL_SECONDS": "0.1", "PROMOCODES_CHUNK_LEASE_SECONDS": "30"}
    processes: list[Process] = []
    try:
        processes += [start_server(f"server-{i}", db.url, tmp_path, **env) for i in range(2)]
        processes += [start_worker(f"worker-{i}", db.url, tmp_path, **env) for i in range(3)]
        wait_ready(processes[:2])
        servers = [p.url for p in processes if p.url]

        # Every key once, then some of them again (a client retrying), in random order.
        rng = random.Random(8)
        calls = [(f"key-{i}", f"p{rng.randrange(CUSTOMERS)}") for i in range(ISSUE_KEYS)]
        calls += rng.sample(calls, RETRIES)
        rng.shuffle(calls)

        def issue(n: int, key: str, customer: str) -> tuple[str, str]:
            response = httpx.post(
                f"{servers[n % 2]}/api/v1/groups/{gid}/issue",
                json={"customer_id": customer},
                headers={**headers, "Idempotency-Key": key},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            code: str = response.json()["code"]
            return key, code

        def send_mailing(server: str, name: str, segment_id: int) -> int:
            body = {
                "name": name,
                "segment_id": segment_id,
                "subject": "Hi {{ client.first_name }}",
                "body_text": "Your code: {{ client.promocode('Shared') }}",
                "chunk_size": 25,
            }
            created = httpx.post(
                f"{server}/api/v1/mailings", json=body, headers=headers, timeout=60
            )
            assert created.status_code == 201, created.text
            mailing_id: int = created.json()["id"]
            sent = httpx.post(
                f"{server}/api/v1/mailings/{mailing_id}/send", json={}, headers=headers, timeout=60
            )
            assert sent.status_code == 202, sent.text
            return mailing_id

        with ThreadPoolExecutor(max_workers=8) as pool:
            first = pool.submit(send_mailing, servers[0], "A", segment_a)
            second = pool.submit(send_mailing, servers[1], "B", segment_b)
            futures = [pool.submit(issue, n, key, who) for n, (key, who) in enumerate(calls)]
            issued = [f.result() for f in futures]
            mailing_ids = [first.result(), second.result()]

        deadline = time.monotonic() + 90
        for mailing_id in mailing_ids:
            while True:
                got = httpx.get(
                    f"{servers[mailing_id % 2]}/api/v1/mailings/{mailing_id}",
                    headers=headers,
                    timeout=30,
                ).json()
                if got["status"] == "sent":
                    break
                assert all(p.alive() for p in processes), outputs(processes)
                assert time.monotonic() < deadline, f"mailing {got}\n{outputs(processes)}"
                time.sleep(0.2)
    finally:
        exits = stop_all(processes)
    # SIGTERM is a clean stop for servers and workers alike: every process exits 0.
    assert all(code == 0 for code in exits.values()), (exits, outputs(processes))
    assert "Traceback" not in outputs(processes), outputs(processes)

    answers: dict[str, set[str]] = defaultdict(set)
    for key, code in issued:
        answers[key].add(code)
    assert len(answers) == ISSUE_KEYS
    assert all(len(codes) == 1 for codes in answers.values()), "a retry got another code"
    api_codes = {code for codes in answers.values() for code in codes}
    assert len(api_codes) == ISSUE_KEYS

    assert issuance_problems(db, gid) == []
    for mailing_id in mailing_ids:
        assert mailing_problems(db, mailing_id) == []
    with db.read() as s:
        per_mailing = dict(
            s.execute(
                select(Message.mailing_id, func.count())
                .where(Message.status == "sent")
                .group_by(Message.mailing_id)
            ).all()
        )
        owners = set(s.scalars(select(MailingChunk.lease_owner)))
        mailed: set[Any] = set(s.scalars(select(Message.body_text)))
    assert per_mailing == {mailing_ids[0]: 250, mailing_ids[1]: 250}
    mailed_codes = {str(t).removeprefix("Your code: ") for t in mailed}
    assert len(mailed_codes) == 500 and not mailed_codes & api_codes
    c = counts(db, gid)
    assert (c.issued, c.active) == (ISSUE_KEYS + 500, 2_000 - ISSUE_KEYS - 500)
    # The chunks really were shared out among the processes.
    assert len({owner.split(":")[1] for owner in owners if owner}) >= 2
