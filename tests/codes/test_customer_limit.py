"""A group's per-customer limit on both backends: the API issue at the limit (repeat or
409 ``customer-limit``), a race of two issues for one customer at N-1 that gives exactly
one new code, a mailing that repeats or skips, and the segment of those at the limit."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from promocodes.codes import issuance, service
from promocodes.codes.models import Issuance
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from promocodes.errors import CustomerLimitReached
from promocodes.segments import service as segments
from promocodes.segments.tree import parse_filter
from tests.factories import assert_counters_exact, counts, customers, group_with_codes, issue
from tests.invariants import issuance_problems
from tests.messaging.test_mailings import EVERYONE, bodies, mailing, people, segment, send_and_work


def limited(db: Database, name: str, n_codes: int, limit: int, action: str) -> int:
    gid = group_with_codes(db, name, [f"{name}{i:03d}" for i in range(n_codes)])
    with db.write() as s:
        service.update_group(s, gid, GroupUpdate(customer_limit=limit, limit_action=action))
    return gid


def initials(db: Database, gid: int, kind: str = "initial") -> int:
    with db.read() as s:
        stmt = select(func.count()).where(Issuance.group_id == gid, Issuance.kind == kind)
        return s.scalar(stmt) or 0


def test_repeat_at_the_limit_shows_the_last_code_as_a_repeat(db: Database) -> None:
    gid = limited(db, "R", 10, 2, "repeat")
    customers(db, 1, "ann")
    first = issue(db, "ann0", gid, "k1")
    second = issue(db, "ann0", gid, "k2")
    assert first != second
    with db.write() as s:
        third = issuance.issue_initial(s, "ann0", gid, key="k3", source="api")
    assert (third.code, third.kind) == (second, "repeat")
    assert issue(db, "ann0", gid, "k3") == second  # a retry of the key: the same answer
    assert (initials(db, gid), initials(db, gid, "repeat")) == (2, 1)
    assert counts(db, gid).active == 8
    assert_counters_exact(db, gid)


def test_skip_at_the_limit_is_a_409_customer_limit(db: Database) -> None:
    from tests.api.conftest import client_for
    from tests.api.test_groups_api import _problem

    gid = limited(db, "S", 10, 1, "skip")
    with client_for(db) as api:
        api.put("/api/v1/customers/bo", json={})
        ok = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "bo"})
        assert ok.status_code == 200 and ok.json()["kind"] == "initial"
        refused = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "bo"})
        problem = _problem(refused, 409, "customer-limit")
        assert "'bo' already holds 1 code from group 'S'" in problem["detail"]
        # Raising the limit lets the customer have another one.
        api.patch(f"/api/v1/groups/{gid}", json={"customer_limit": 2})
        assert (
            api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "bo"}).status_code == 200
        )
        # A voided issuance does not count: its message never arrived.
        assert initials(db, gid) == 2
    assert counts(db, gid).active == 8


def race(db: Database, gid: int, attempt: int, same_key: bool = False) -> list[str]:
    """Two threads issue to one customer at once (after a barrier); what each got (the
    kind and the code)."""
    barrier = threading.Barrier(2)
    results: list[str] = []

    def claim(n: int) -> None:
        barrier.wait()
        try:
            with db.write() as s:
                key = f"race-{attempt}" + ("" if same_key else f"-{n}")
                got = issuance.issue_initial(s, "cat0", gid, key=key, source="api")
            results.append(f"{got.kind} {got.code}")
        except CustomerLimitReached:
            results.append("limit")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("action", ["repeat", "skip"])
def test_two_simultaneous_issues_at_n_minus_1_give_one_new_code(db: Database, action: str) -> None:
    gid = limited(db, "C", 50, 3, action)
    customers(db, 1, "cat")
    issue(db, "cat0", gid, "pre-1")
    issue(db, "cat0", gid, "pre-2")
    for attempt in range(5):
        results = race(db, gid, attempt)
        expected_new = 1 if attempt == 0 else 0
        assert [r.split()[0] for r in results].count("initial") == expected_new, results
        assert initials(db, gid) == 3
    assert issuance_problems(db, gid) == []
    assert counts(db, gid).active == 47


def test_a_mailing_repeats_or_skips_at_the_limit(db: Database) -> None:
    rep = limited(db, "Rep", 20, 1, "repeat")
    skip = limited(db, "Skip", 20, 1, "skip")
    people(db, 4)
    for gid in (rep, skip):
        issue(db, "p0", gid, f"before-{gid}")
    everyone = segment(db, "All", EVERYONE)
    m = mailing(db, everyone, "{{ client.promocode('Rep') }}/{{ client.promocode('Skip') }}")
    send_and_work(db, m)
    sent = bodies(db, m)
    assert (sent["p0"].status, sent["p0"].skip_reason) == ("skipped", "customer-limit")
    assert {sent[f"p{i}"].status for i in (1, 2, 3)} == {"sent"}
    # The skipped message gave its codes back; the others each took one from both.
    assert counts(db, rep).active == 20 - 1 - 3
    assert counts(db, skip).active == 20 - 1 - 3
    assert initials(db, rep, "repeat") == 0
    # Now with repeat only: p0 gets their earlier code again, recorded as a repeat.
    m2 = mailing(db, everyone, "{{ client.promocode('Rep') }}", name="M2")
    send_and_work(db, m2)
    again = bodies(db, m2)
    assert {msg.status for msg in again.values()} == {"sent"}
    assert again["p0"].body_text == "Rep000"
    assert initials(db, rep, "repeat") == 4 and counts(db, rep).active == 16
    assert_counters_exact(db, rep, skip)
    assert issuance_problems(db, rep) == [] and issuance_problems(db, skip) == []


def test_segment_of_customers_at_the_limit(db: Database) -> None:
    gid = limited(db, "Seg", 20, 2, "skip")
    customers(db, 3, "s")
    issue(db, "s0", gid, "a")
    issue(db, "s0", gid, "b")
    issue(db, "s1", gid, "c")
    tree = parse_filter({"type": "reached_limit", "group_id": gid})
    with db.read() as s:
        assert segments.count(s, tree) == 1
        assert segments.count(s, parse_filter({"type": "not", "filter": tree.model_dump()})) == 2
    with db.write() as s:
        service.update_group(s, gid, GroupUpdate(customer_limit=1))
    with db.read() as s:
        assert segments.count(s, tree) == 2
    with db.write() as s:
        service.update_group(s, gid, GroupUpdate(customer_limit=None))
    with db.read() as s:
        assert segments.count(s, tree) == 0


@pytest.mark.parametrize("limit", [2, 5])
def test_a_retry_racing_its_first_call_gets_the_same_code(db: Database, limit: int) -> None:
    # At N-1 the retry finds the limit reached by its own first call; below it, the
    # claim finds the first call's issuance: either way the answer is the same code.
    gid = limited(db, "K", 10, limit, "skip")
    customers(db, 1, "cat")
    issue(db, "cat0", gid, "pre-1")
    for attempt in range(limit - 1):  # the last one reaches the limit
        results = race(db, gid, attempt, same_key=True)
        assert len(set(results)) == 1 and results[0].startswith("initial"), results
    assert initials(db, gid) == limit
    assert issuance_problems(db, gid) == []


@pytest.mark.parametrize(
    ("node", "words"),
    [
        ({"type": "reached_limit"}, "group_id"),
        ({"type": "reached_limit", "group_id": "seven"}, "group_id"),
        ({"type": "reached_limit", "group_id": 999}, "group 999 does not exist or is archived"),
        ({"type": "reached_limit", "group_id": 1, "kind": "initial"}, "kind"),
    ],
)
def test_the_limit_filter_refuses_bad_input(
    db: Database, node: dict[str, object], words: str
) -> None:
    from tests.api.conftest import client_for

    limited(db, "F", 1, 1, "skip")
    with client_for(db) as api:
        r = api.post("/api/v1/segments/preview", json={"filter": node})
    assert r.status_code == 422, r.text
    assert words in r.text
